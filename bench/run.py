"""Benchmarks, reported as figures measured in one run (no timing assertions anywhere).

    .venv/bin/python bench/run.py [--quick] [--only overhead,runners,load,sessions]

1. overhead: time to first byte through the server vs running the (fake, 2.3 s boot)
   CLI directly, one-shot. Goal: the server adds <= 2 %.
2. runners: the REAL copilot and claude from npm (no login): time from request to the
   CLI's not-logged-in error, one-shot vs persistent, against the server's own floor
   (a request answered without the CLI). Goal: persistent <= 50 ms above the floor.
3. load: 50 and 200 concurrent streaming requests over the fake CLIs: completed,
   p50/p95 latency, peak memory of the server and every CLI process it runs.
4. sessions: memory per extra concurrent chat in persistent copilot mode, measured on
   the REAL copilot headless process (sessions open, as a streaming chat holds one).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import FAKES, ProxyServer, fake_env, real_cli, start_server  # noqa: E402

MB = 1024 * 1024
# One kept client: a new httpx client per request costs ~25 ms of its own set-up.
HTTP = httpx.Client(timeout=120)
BOOT_DELAY_S = 2.3  # copilot -p needs about this long before it reaches the model


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class MemorySampler:
    """Peak RSS of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def total(self) -> int:
        total = 0
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.total())
            time.sleep(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def server(env: dict[str, str]) -> ProxyServer:
    return start_server(Path(tempfile.mkdtemp(prefix="bench-")), env, ready_timeout=120)


def time_to_first_content(proxy: ProxyServer, model: str, prompt: str) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": True}
    started = time.perf_counter()
    with HTTP.stream("POST", proxy.url + "/v1/chat/completions", json=body) as r:
        for line in r.iter_lines():
            if line.startswith("data: ") and '"content":"' in line and '"content":""' not in line:
                return time.perf_counter() - started
    raise RuntimeError("no content arrived")


def direct_first_delta(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, cwd=cwd
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            if b"assistant.message_delta" in line:
                return time.perf_counter() - started
    finally:
        process.kill()
        process.wait()
    raise RuntimeError("no delta arrived")


# -- 1 ----------------------------------------------------------------------------------------


def bench_overhead(rounds: int) -> dict[str, object]:
    from copilot_cli_proxy.backends.copilot_cli import build_copilot_argv

    env = fake_env("copilot", FAKE_CLI_BOOT_DELAY=str(BOOT_DELAY_S), MAX_CONCURRENT="1")
    proxy = server(env)
    workdir = Path(tempfile.mkdtemp(prefix="bench-direct-"))
    direct_env = {**os.environ, **env}
    via_server: list[float] = []
    direct: list[float] = []
    try:
        time_to_first_content(proxy, "gpt-5-mini", "warm up")
        for i in range(rounds):
            argv = build_copilot_argv(
                str(FAKES / "copilot"),
                prompt=f"hello {i}",
                model="gpt-5-mini",
                usage_file=workdir / "usage.json",
            )
            direct.append(direct_first_delta(argv, direct_env, workdir))
            via_server.append(time_to_first_content(proxy, "gpt-5-mini", f"hello {i}"))
    finally:
        proxy.stop()
    d, s = median(direct), median(via_server)
    return {
        "direct_ttfb_ms": round(d * 1000, 1),
        "server_ttfb_ms": round(s * 1000, 1),
        "added_ms": round((s - d) * 1000, 1),
        "added_ratio_pct": round((s - d) / d * 100, 2),
        "rounds": rounds,
    }


# -- 2 ----------------------------------------------------------------------------------------


def timed_error(proxy: ProxyServer, model: str) -> float:
    body = {"model": model, "messages": [{"role": "user", "content": "Say hi"}], "stream": True}
    started = time.perf_counter()
    response = HTTP.post(proxy.url + "/v1/chat/completions", json=body)
    elapsed = time.perf_counter() - started
    if response.status_code not in (404, 503):
        raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
    return elapsed


def bench_runners(rounds: int) -> dict[str, object]:
    results: dict[str, object] = {}
    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    for service in ("copilot", "claude"):
        cli = real_cli(service)
        if cli is None:
            results[service] = "real CLI not installed (scripts/setup.sh --with-clis)"
            continue
        row: dict[str, float] = {}
        for runner in ("oneshot", "persistent"):
            env = {
                "SERVICE": service,
                f"{service.upper()}_CLI_PATH": cli,
                "RUNNER": runner,
                "HOME": str(home),
                "REQUEST_TIMEOUT": "120000",
                "MAX_CONCURRENT": "1",
            }
            for key in (
                "GH_TOKEN",
                "GITHUB_TOKEN",
                "COPILOT_GITHUB_TOKEN",
                "ANTHROPIC_API_KEY",
                "CLAUDE_CODE_OAUTH_TOKEN",
            ):
                os.environ.pop(key, None)
            proxy = server(env)
            try:
                models = HTTP.get(proxy.url + "/v1/models").json()["data"]
                model = models[0]["id"]
                time.sleep(3 if runner == "persistent" else 0)  # let the warm process boot
                floor = [timed_error(proxy, "no-such-model") for _ in range(rounds)]
                answer: list[float] = []
                for _ in range(rounds):
                    answer.append(timed_error(proxy, model))
                    if runner == "persistent" and service == "claude":
                        time.sleep(1.0)  # the replacement warm process boots between requests
            finally:
                proxy.stop()
            row[f"{runner}_ms"] = round(median(answer) * 1000, 1)
            row.setdefault("floor_ms", round(median(floor) * 1000, 1))
        row["persistent_above_floor_ms"] = round(row["persistent_ms"] - row["floor_ms"], 1)
        row["oneshot_over_persistent"] = round(
            row["oneshot_ms"] / max(row["persistent_ms"], 0.1), 1
        )
        results[service] = row
    return results


# -- 3 ----------------------------------------------------------------------------------------


async def _load(url: str, model: str, n: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    completed = 0
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)

    async with httpx.AsyncClient(timeout=300, limits=limits) as client:

        async def one(i: int) -> None:
            nonlocal completed
            body = {
                "model": model,
                "messages": [{"role": "user", "content": f"FAKE_SLEEP=0.5\nFAKE_BIG=200\nq{i}"}],
                "stream": True,
            }
            started = time.perf_counter()
            async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
                text = "".join([line async for line in r.aiter_lines()])
            if r.status_code == 200 and text.rstrip().endswith("data: [DONE]"):
                completed += 1
                latencies.append(time.perf_counter() - started)

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
    return completed, latencies


def bench_load(sizes: list[int]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for service, runner in (
        ("copilot", "oneshot"),
        ("copilot", "persistent"),
        ("claude", "persistent"),
    ):
        for n in sizes:
            env = fake_env(
                service,
                RUNNER=runner,
                MAX_CONCURRENT=str(min(n, 64) if runner == "oneshot" else n),
                MAX_QUEUE="1000",
                QUEUE_TIMEOUT="300000",
                REQUEST_TIMEOUT="300000",
                FAKE_CLI_FAST_OUTPUT="1",
                LOG_LEVEL="WARNING",
                RATE_LIMIT_MAX="1000000",
                LOG_REQUESTS="false",
            )
            proxy = server(env)
            try:
                time.sleep(2)
                with MemorySampler(proxy.process.pid) as sampler:
                    idle = sampler.total()
                    started = time.perf_counter()
                    completed, latencies = anyio.run(
                        _load, proxy.url, "gpt-5-mini" if service == "copilot" else "sonnet", n
                    )
                    wall = time.perf_counter() - started
            finally:
                proxy.stop()
            rows.append(
                {
                    "service": service,
                    "runner": runner,
                    "concurrent": n,
                    "completed": completed,
                    "p50_s": round(percentile(latencies, 0.5), 2),
                    "p95_s": round(percentile(latencies, 0.95), 2),
                    "wall_s": round(wall, 1),
                    "idle_mb": round(idle / MB),
                    "peak_mb": round(sampler.peak / MB),
                    "per_extra_chat_mb": round((sampler.peak - idle) / MB / n, 2),
                }
            )
    return rows


# -- 4 ----------------------------------------------------------------------------------------


def bench_sessions(count: int) -> dict[str, object]:
    """RSS growth of the REAL copilot headless process per open session."""
    from copilot_cli_proxy.backends.copilot_headless import (
        HeadlessCopilot,
        build_headless_argv,
        session_create_params,
    )
    from copilot_cli_proxy.runtime.process import CliRun

    cli = real_cli("copilot")
    if cli is None:
        return {"skipped": "real copilot not installed"}
    base = Path(tempfile.mkdtemp(prefix="bench-sessions-"))
    env = {**os.environ, "HOME": str(base / "home")}
    (base / "home").mkdir()

    async def scenario() -> dict[str, object]:
        argv = build_headless_argv(cli)
        run = await CliRun.start(argv, cwd=base, env=env, keep_stdin=True)
        process = HeadlessCopilot(run, argv, ())
        async with anyio.create_task_group() as tg:
            tg.start_soon(process.serve, tg)
            await process.connect()
            sampler = MemorySampler(run.pid)
            # one session first, so lazy start-up costs are not counted per chat
            dirs = [base / f"s{i}" for i in range(count + 1)]
            for d in dirs:
                d.mkdir()
            params = lambda d: session_create_params(  # noqa: E731
                model="gpt-5-mini",
                workdir=d,
                system="Be brief.",
                allowed_tools=(),
                reasoning_effort=None,
            )
            await process.open_session(params(dirs[0]))
            await anyio.sleep(1)
            before = sampler.total()
            opened = []
            for d in dirs[1:]:
                opened.append(await process.open_session(params(d)))
            await anyio.sleep(1)
            after = sampler.total()
            for _, stream in opened:
                stream.close()
            await process.stop()
            tg.cancel_scope.cancel()
        return {
            "sessions": count,
            "rss_before_mb": round(before / MB),
            "rss_after_mb": round(after / MB),
            "per_session_mb": round((after - before) / MB / count, 2),
        }

    return anyio.run(scenario)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller loads")
    parser.add_argument("--only", default="overhead,runners,load,sessions")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    rounds = 3 if args.quick else 5
    report: dict[str, object] = {}
    steps: dict[str, Callable[[], object]] = {
        "overhead": lambda: bench_overhead(rounds),
        "runners": lambda: bench_runners(rounds),
        "load": lambda: bench_load([20] if args.quick else [50, 200]),
        "sessions": lambda: bench_sessions(10 if args.quick else 50),
    }
    for name, step in steps.items():
        if name in parts:
            print(f"== {name}", file=sys.stderr, flush=True)
            report[name] = step()
            print(json.dumps(report[name], indent=1), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
