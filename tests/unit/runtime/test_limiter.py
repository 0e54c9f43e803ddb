from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime.limiter import ProcessLimiter


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    with anyio.fail_after(limit):
        while not condition():
            await anyio.sleep(0.005)


class Holders:
    """Tasks that take a slot and keep it until released."""

    def __init__(self, limiter: ProcessLimiter) -> None:
        self.limiter = limiter
        self.release = anyio.Event()
        self.peak = 0
        self.done = 0

    async def hold(self) -> None:
        async with self.limiter.slot():
            self.peak = max(self.peak, self.limiter.active)
            await self.release.wait()
        self.done += 1


async def test_at_most_max_concurrent_at_once() -> None:
    limiter = ProcessLimiter(max_concurrent=2, max_queue=10, queue_timeout_s=10)
    holders = Holders(limiter)
    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(holders.hold)
        await until(lambda: limiter.active == 2 and limiter.waiting == 3)
        holders.release.set()
    assert holders.peak == 2
    assert holders.done == 5
    assert (limiter.active, limiter.waiting) == (0, 0)


async def test_a_free_slot_is_taken_without_queueing() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=0, queue_timeout_s=0)
    async with limiter.slot():
        assert limiter.active == 1
        assert limiter.waiting == 0
    assert limiter.active == 0


async def test_full_queue_is_429_server_busy_with_retry_after() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=1, queue_timeout_s=30)
    holders = Holders(limiter)
    async with anyio.create_task_group() as tg:
        tg.start_soon(holders.hold)
        tg.start_soon(holders.hold)
        await until(lambda: limiter.active == 1 and limiter.waiting == 1)
        with pytest.raises(ProxyError) as caught:
            async with limiter.slot():
                raise AssertionError("must not get a slot")
        holders.release.set()
    error = caught.value
    assert (error.code, error.status) == ("server_busy", 429)
    assert error.retry_after == 5
    assert error.headers()["Retry-After"] == "5"
    assert error.headers()["x-should-retry"] == "true"
    assert "queue is full (1)" in error.message
    assert holders.done == 2


async def test_no_queue_refuses_at_once_when_all_slots_are_busy() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=0, queue_timeout_s=30)
    async with limiter.slot():
        with pytest.raises(ProxyError) as caught:
            async with limiter.slot():
                pass
    assert caught.value.code == "server_busy"
    assert limiter.waiting == 0


@pytest.mark.parametrize(("timeout", "retry_after"), [(0.05, 1), (2.5, 3), (30.0, 5)])
async def test_retry_after_is_the_queue_timeout_capped_at_5_s(
    timeout: float, retry_after: int
) -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=0, queue_timeout_s=timeout)
    async with limiter.slot():
        with pytest.raises(ProxyError) as caught:
            async with limiter.slot():
                pass
    assert caught.value.retry_after == retry_after


async def test_queue_timeout_is_429_server_busy() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=5, queue_timeout_s=0.1)
    async with limiter.slot():
        with pytest.raises(ProxyError) as caught:
            async with limiter.slot():
                raise AssertionError("must not get a slot")
        assert limiter.waiting == 0
        assert limiter.active == 1
    error = caught.value
    assert (error.code, error.status, error.retry_after) == ("server_busy", 429, 1)
    assert "no slot freed within 0.1 s" in error.message
    assert limiter.active == 0


async def test_zero_queue_timeout_gives_up_at_once() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=5, queue_timeout_s=0)
    async with limiter.slot():
        with pytest.raises(ProxyError) as caught:
            async with limiter.slot():
                pass
    assert caught.value.code == "server_busy"


async def test_a_waiter_gets_the_slot_when_it_frees() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=5, queue_timeout_s=10)
    order: list[str] = []
    release = anyio.Event()

    async def first() -> None:
        async with limiter.slot():
            order.append("first in")
            await release.wait()
        order.append("first out")

    async def second() -> None:
        async with limiter.slot():
            order.append("second in")

    async with anyio.create_task_group() as tg:
        tg.start_soon(first)
        await until(lambda: limiter.active == 1)
        tg.start_soon(second)
        await until(lambda: limiter.waiting == 1)
        release.set()
    assert order == ["first in", "first out", "second in"]
    assert (limiter.active, limiter.waiting) == (0, 0)


async def test_the_slot_is_released_when_the_body_raises() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=0, queue_timeout_s=1)
    with pytest.raises(ValueError, match="boom"):
        async with limiter.slot():
            raise ValueError("boom")
    assert limiter.active == 0
    async with limiter.slot():
        assert limiter.active == 1


async def test_a_cancelled_waiter_leaves_the_queue_and_takes_no_slot() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=1, queue_timeout_s=30)
    async with limiter.slot():
        with anyio.move_on_after(0.05) as scope:
            async with limiter.slot():
                raise AssertionError("must not get a slot")
        assert scope.cancelled_caught
        assert limiter.waiting == 0
        assert limiter.active == 1
    assert limiter.active == 0


async def test_a_cancelled_holder_releases_its_slot() -> None:
    limiter = ProcessLimiter(max_concurrent=1, max_queue=0, queue_timeout_s=1)
    with anyio.move_on_after(0.05):
        async with limiter.slot():
            await anyio.sleep(30)
    assert limiter.active == 0
