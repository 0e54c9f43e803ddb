"""Benchmark the kind = "openai" backend against a direct call and LiteLLM's proxy.

    .venv/bin/python bench/upstream.py [--quick] [--no-litellm]

One fake upstream (tests/fakeupstream, its own process) answers at once with a
200-token stream. In one run, figures measured side by side:

1. ttfb: time to the first content byte, one request at a time: direct to the
   upstream, through this server, through LiteLLM. p50/p99, and what each adds.
2. throughput: completed streams per second at 100 and 500 concurrent.
3. memory: the server's peak RSS during the 500-concurrent run.

LiteLLM's proxy (``litellm[proxy]``) runs from its own venv, made by this script the
first time under ~/.cache/copilot-cli-proxy/litellm-venv. Both servers run one worker
and log at WARNING. The printed ratios are ours / LiteLLM's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import MB, MemorySampler, percentile  # noqa: E402
from tests.e2e.harness import free_port, wait_until  # noqa: E402

TOKENS = 200
MODEL = "gpt-4.1"
LITELLM_VENV = Path.home() / ".cache" / "copilot-cli-proxy" / "litellm-venv"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}], "stream": True}


@dataclass
class Target:
    name: str
    chat_url: str
    process: subprocess.Popen[bytes] | None = None


def _wait_ready(url: str, process: subprocess.Popen[bytes] | None, what: str) -> None:
    def ready() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    if not wait_until(ready, 180, 0.2):
        raise RuntimeError(f"{what} did not become ready at {url}")


def _spawn(argv: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def start_upstream(work: Path) -> Target:
    port = free_port()
    argv = [sys.executable, "-m", "tests.fakeupstream", "--port", str(port)]
    process = _spawn([*argv, "--tokens", str(TOKENS)], dict(os.environ), work / "up.log", ROOT)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url + "/models", process, "the fake upstream")
    return Target("direct", url + "/chat/completions", process)


def start_ours(work: Path, upstream: str) -> Target:
    port = free_port()
    backends = work / "backends.toml"
    backends.write_text(
        "[[backend]]\n"
        'id = "up"\nkind = "openai"\n'
        f'base_url = "{upstream}"\nmodels = ["{MODEL}"]\nmax_concurrent = 1000\n'
    )
    env = {
        **os.environ,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "BACKENDS_FILE": str(backends),
        "MAX_CONCURRENT": "256",  # the server-wide cap; the backend has its own (1000)
        "MAX_QUEUE": "10000",
        "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
        "LOG_DIR": str(work / "logs"),
        "LOG_REQUESTS": "false",
        "RATE_LIMIT_MAX": "0",
        "STATE_DIR": str(work / "state"),
    }
    process = _spawn([sys.executable, "-m", "copilot_cli_proxy"], env, work / "ours.log", work)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url + "/health", process, "copilot-cli-proxy")
    return Target("ours", url + "/v1/chat/completions", process)


def litellm_bin() -> Path:
    litellm = LITELLM_VENV / "bin" / "litellm"
    if not litellm.exists():
        print(f"making LiteLLM's venv in {LITELLM_VENV} (once)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", "litellm[proxy]"]
        subprocess.run(pip, check=True)
    return litellm


def start_litellm(work: Path, upstream: str) -> Target:
    port = free_port()
    config = work / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        f"  - model_name: {MODEL}\n"
        "    litellm_params:\n"
        f"      model: openai/{MODEL}\n"
        f"      api_base: {upstream}\n"
        "      api_key: unused\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
    )
    env = {
        **os.environ,
        "LITELLM_LOG": "WARNING",
        "LITELLM_TELEMETRY": "False",
        # Ours runs without API keys on loopback; LiteLLM does the same, for a like-for-like.
        "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
    }
    argv = [str(litellm_bin()), "--config", str(config), "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--num_workers", "1"]
    process = _spawn(argv, env, work / "litellm.log", work)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url + "/health/liveliness", process, "LiteLLM")
    return Target("litellm", url + "/v1/chat/completions", process)


def stop(target: Target) -> None:
    if target.process is not None and target.process.poll() is None:
        target.process.terminate()
        try:
            target.process.wait(15)
        except subprocess.TimeoutExpired:
            target.process.kill()
            target.process.wait()


# -- 1: time to first byte ---------------------------------------------------------------


def first_content(client: httpx.Client, url: str) -> float:
    started = time.perf_counter()
    first: float | None = None
    with client.stream("POST", url, json=BODY) as response:
        # Read to the end either way, so the next request reuses the connection.
        for line in response.iter_lines():
            if first is None and '"content":"w0' in line.replace(" ", ""):
                first = time.perf_counter() - started
    if first is None:
        raise RuntimeError(f"no content from {url}")
    return first


def bench_ttfb(targets: list[Target], rounds: int) -> dict[str, dict[str, float]]:
    samples: dict[str, list[float]] = {t.name: [] for t in targets}
    with httpx.Client(timeout=60) as client:
        for target in targets:  # warm up: connections, caches, lazy imports
            for _ in range(5):
                first_content(client, target.chat_url)
        for _ in range(rounds):  # interleaved, so drift hits every target alike
            for target in targets:
                samples[target.name].append(first_content(client, target.chat_url))
    direct = samples["direct"]
    report: dict[str, dict[str, float]] = {}
    for name, values in samples.items():
        row = {
            "p50_ms": round(percentile(values, 0.5) * 1000, 3),
            "p99_ms": round(percentile(values, 0.99) * 1000, 3),
        }
        if name != "direct":
            row["added_p50_ms"] = round(
                (percentile(values, 0.5) - percentile(direct, 0.5)) * 1000, 3
            )
            row["added_p99_ms"] = round(
                (percentile(values, 0.99) - percentile(direct, 0.99)) * 1000, 3
            )
        report[name] = row
    return report


# -- 2 and 3: streams per second, memory -----------------------------------------------


async def _streams(url: str, concurrency: int, total: int) -> tuple[int, float, dict[str, int]]:
    done = 0
    failed: dict[str, int] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=1800, limits=limits) as client:
        queue = iter(range(total))

        async def worker() -> None:
            nonlocal done
            for _ in queue:
                tail = b""
                try:
                    async with client.stream("POST", url, json=BODY) as response:
                        async for piece in response.aiter_raw():
                            tail = (tail + piece)[-64:]
                except httpx.HTTPError as exc:
                    failed[type(exc).__name__] = failed.get(type(exc).__name__, 0) + 1
                    continue
                if response.status_code != 200:
                    key = f"HTTP {response.status_code}"
                elif b"[DONE]" not in tail:
                    key = "no [DONE]"
                else:
                    done += 1
                    continue
                failed[key] = failed.get(key, 0) + 1

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(concurrency):
                tg.start_soon(worker)
        return done, time.perf_counter() - started, failed


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def bench_throughput(target: Target, concurrency: int, total: int) -> dict[str, object]:
    anyio.run(_streams, target.chat_url, concurrency, min(concurrency, 50))  # warm up
    assert target.process is not None
    cpu_before = cpu_seconds(target.process.pid)
    with MemorySampler(target.process.pid) as sampler:
        idle = sampler.total()
        done, wall, failed = anyio.run(_streams, target.chat_url, concurrency, total)
    cpu = cpu_seconds(target.process.pid) - cpu_before
    return {
        "completed": done,
        "of": total,
        "failed": failed,
        "streams_per_s": round(done / wall, 1),
        # Less at the mercy of whatever else the machine runs than the rate is.
        "server_cpu_ms_per_stream": round(cpu / max(done, 1) * 1000, 2),
        "idle_mb": round(idle / MB, 1),
        "peak_mb": round(sampler.peak / MB, 1),
    }


def ratio(ours: float, theirs: float) -> float:
    return round(ours / theirs, 2) if theirs else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer rounds and streams")
    parser.add_argument("--no-litellm", action="store_true", help="ours and direct only")
    args = parser.parse_args()
    rounds = 50 if args.quick else 300
    work = Path(tempfile.mkdtemp(prefix="bench-upstream-"))
    upstream = start_upstream(work)
    base = upstream.chat_url.removesuffix("/chat/completions")
    targets = [upstream]
    report: dict[str, object] = {}
    try:
        targets.append(start_ours(work, base))
        if not args.no_litellm:
            targets.append(start_litellm(work, base))
        steps: list[tuple[str, Callable[[], object]]] = [
            ("ttfb", lambda: bench_ttfb(targets, rounds)),
        ]
        for concurrency in (100, 500):
            # LiteLLM manages about one stream a second on a busy 2-core machine: each of
            # the 500 runs is one stream per connection, or the run takes an hour.
            total = concurrency * (1 if args.quick or concurrency >= 500 else 3)
            for target in targets[1:]:
                steps.append(
                    (
                        f"{target.name}@{concurrency}",
                        lambda t=target, c=concurrency, n=total: bench_throughput(t, c, n),
                    )
                )
        for name, step in steps:
            print(f"== {name}", file=sys.stderr, flush=True)
            report[name] = step()
            print(json.dumps(report[name]), file=sys.stderr, flush=True)
    finally:
        for target in targets:
            stop(target)
    if not args.no_litellm:
        ttfb = report["ttfb"]
        assert isinstance(ttfb, dict)
        summary: dict[str, float] = {
            "added_p50_ms_ours": ttfb["ours"]["added_p50_ms"],
            "added_p50_ms_litellm": ttfb["litellm"]["added_p50_ms"],
        }
        for concurrency in (100, 500):
            ours, theirs = report[f"ours@{concurrency}"], report[f"litellm@{concurrency}"]
            assert isinstance(ours, dict) and isinstance(theirs, dict)
            summary[f"throughput_ratio@{concurrency}"] = ratio(
                ours["streams_per_s"], theirs["streams_per_s"]
            )
            summary[f"peak_mb_ratio@{concurrency}"] = ratio(ours["peak_mb"], theirs["peak_mb"])
            summary[f"cpu_per_stream_ratio@{concurrency}"] = ratio(
                ours["server_cpu_ms_per_stream"], theirs["server_cpu_ms_per_stream"]
            )
        report["ours_over_litellm"] = summary
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
