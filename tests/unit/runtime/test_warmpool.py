from __future__ import annotations

import random

import anyio
import pytest

from copilot_cli_proxy.runtime.warmpool import WarmPool


class Proc:
    """Stands in for a warm process: counts how many are open at once."""

    open_now = 0
    most_open = 0

    def __init__(self) -> None:
        Proc.open_now += 1
        Proc.most_open = max(Proc.most_open, Proc.open_now)
        self.closed = False

    @property
    def alive(self) -> bool:
        return not self.closed

    async def aclose(self) -> None:
        if not self.closed:
            self.closed = True
            Proc.open_now -= 1


@pytest.fixture(autouse=True)
def counts() -> None:
    Proc.open_now = Proc.most_open = 0


async def test_background_start_only_when_there_is_room() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=2, keep=2)
    assert await pool.reserve(evict=False)
    assert await pool.reserve(evict=False)
    assert not await pool.reserve(evict=False)
    assert pool.live == 2


async def test_a_request_evicts_the_oldest_idle_process() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=2, keep=2)
    first, second = Proc(), Proc()
    for key, proc in (("a", first), ("b", second)):
        assert await pool.reserve(evict=False)
        await pool.put(key, proc)
    assert await pool.reserve(evict=True)
    assert first.closed and not second.closed
    assert pool.live == 2 and not pool.has("a") and pool.has("b")


async def test_a_request_waits_for_a_serving_process_to_go() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=1, keep=1)
    assert await pool.reserve(evict=True)
    serving = Proc()
    reserved = anyio.Event()

    async def second_request() -> None:
        await pool.reserve(evict=True)
        reserved.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(second_request)
        await anyio.wait_all_tasks_blocked()
        assert not reserved.is_set()
        await pool.close(serving)
        with anyio.fail_after(5):
            await reserved.wait()
    assert pool.live == 1


async def test_only_the_newest_keys_stay_idle() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=5, keep=2)
    procs = {key: Proc() for key in "abc"}
    for key, proc in procs.items():
        assert await pool.reserve(evict=False)
        await pool.put(key, proc)
    assert procs["a"].closed and pool.idle == 2 and pool.live == 2


async def test_a_failed_start_gives_its_room_back() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=1, keep=1)
    assert await pool.reserve(evict=False)
    await pool.release()
    assert await pool.reserve(evict=False)


async def test_live_processes_never_exceed_the_cap_under_any_interleaving() -> None:
    cap = 3
    pool: WarmPool[str, Proc] = WarmPool(cap=cap, keep=2)
    limiter = anyio.Semaphore(cap)  # the server's request limiter
    rng = random.Random(8)

    async def background(key: str) -> None:
        if await pool.reserve(evict=False):
            await anyio.sleep(0)
            await pool.put(key, Proc())

    async def request(key: str) -> None:
        async with limiter:
            proc = pool.take(key)
            if proc is None:
                await pool.reserve(evict=True)
                await anyio.sleep(0)
                proc = Proc()
            await anyio.sleep(rng.random() / 100)
            await pool.close(proc)

    async with anyio.create_task_group() as tg:
        for i in range(60):
            key = rng.choice("abcdef")
            tg.start_soon(request, key)
            tg.start_soon(background, key if i % 2 else f"unique-{i}")
            await anyio.sleep(0)
    await pool.close_all()
    assert Proc.most_open <= cap
    assert Proc.open_now == 0 and pool.live == 0


async def test_a_process_that_finishes_starting_after_stop_is_closed() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=2, keep=2)
    assert await pool.reserve(evict=False)  # a background start under way
    await pool.close_all()  # the server stops meanwhile
    late = Proc()
    await pool.put("a", late)
    assert late.closed and pool.live == 0 and not pool.has("a")
    assert not await pool.reserve(evict=False), "no new background start"


async def _spawn(key: str) -> Proc:
    await anyio.sleep(0)
    return Proc()


async def test_acquire_takes_the_warm_one_and_starts_a_cold_one_otherwise() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=2, keep=2)
    assert await pool.fill("a", _spawn)
    first, warm = await pool.acquire("a", _spawn)
    assert warm and pool.idle == 0 and pool.live == 1
    second, warm = await pool.acquire("a", _spawn)
    assert not warm and second is not first and pool.live == 2
    await pool.close(first)
    await pool.close(second)
    assert pool.live == 0 and Proc.open_now == 0


async def test_acquire_replaces_a_dead_idle_one() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=1, keep=1)
    assert await pool.fill("a", _spawn)
    dead = pool.take("a")
    assert dead is not None
    await dead.aclose()
    await pool.put("a", dead)
    fresh, warm = await pool.acquire("a", _spawn)
    assert not warm and fresh is not dead and pool.live == 1


async def test_fill_starts_one_per_key_however_often_it_is_asked() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=4, keep=4)
    gate = anyio.Event()

    async def slow(key: str) -> Proc:
        await gate.wait()
        return Proc()

    results: list[bool] = []

    async def ask() -> None:
        results.append(await pool.fill("a", slow))

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(ask)
        await anyio.wait_all_tasks_blocked()
        assert pool.covered("a") and not pool.has("a")
        gate.set()
    assert sorted(results) == [False, False, True]
    assert pool.live == 1 and pool.idle == 1
    assert not await pool.fill("a", slow)  # idle already


async def test_fill_without_room_starts_nothing_and_a_failed_spawn_gives_room_back() -> None:
    pool: WarmPool[str, Proc] = WarmPool(cap=1, keep=1)
    assert await pool.reserve(evict=False)  # the one slot is serving
    assert not await pool.fill("a", _spawn)
    await pool.release()

    async def broken(key: str) -> Proc:
        raise OSError("no such file")

    with pytest.raises(OSError):
        await pool.fill("a", broken)
    assert pool.live == 0 and not pool.covered("a")
    with pytest.raises(OSError):
        await pool.acquire("a", broken)
    assert pool.live == 0
