"""A throwaway redis-server on a free loopback port, for tests of the shared rate limit.

In CI (``CI`` set) a missing redis-server fails the test: ``.ci/run`` installs it, and a
test that silently skips there would prove nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.harness import free_port, wait_until


def redis_command(port: int, *args: str) -> bytes:
    """One RESP command, one reply read (enough for PING, DBSIZE, KEYS)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"".join(parts))
        return sock.recv(65536)


def _answers(port: int) -> bool:
    try:
        return redis_command(port, "PING").startswith(b"+PONG")
    except OSError:
        return False


@contextmanager
def running_redis(workdir: Path) -> Iterator[int]:
    """Start redis-server (no persistence, in ``workdir``); yield its port; stop it."""
    executable = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if executable is None:
        message = "redis-server is not installed (apt-get install redis-server; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "redis.log").open("wb") as log:
        process = subprocess.Popen(
            [
                executable,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_until(lambda: _answers(port), 15):
            raise RuntimeError(f"redis-server did not start: {(workdir / 'redis.log').read_text()}")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
