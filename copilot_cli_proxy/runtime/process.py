"""Run a CLI in its own process group; read its stdout as lines; kill the whole group.

Why a process group: the npm ``copilot`` entry point starts the real binary as a
child and does not forward signals, so killing only the process we started
orphans the worker, which keeps our pipes open. Why no task group here: the
lines are consumed by an async generator that yields to the HTTP layer, and
cancel scopes must not be held across such yields.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO

import anyio
from anyio.abc import Process

from copilot_cli_proxy.errors import ProxyError

READ_CHUNK = 65536
STDERR_TAIL_BYTES = 16384
KILL_GRACE_S = 2.0


def split_lines(buffer: bytearray, chunk: bytes) -> list[bytes]:
    """Append ``chunk`` to ``buffer``; return the complete lines, leave the rest.

    Splitting raw bytes on ``\\n`` is safe for UTF-8: no byte of a multi-byte
    character is 0x0A, so a line is always whole characters, however the pipe
    split it. Lines have no length limit (a stream-json line can be megabytes).
    """
    buffer.extend(chunk)
    end = buffer.rfind(b"\n")
    if end < 0:
        return []
    complete = bytes(buffer[: end + 1])
    del buffer[: end + 1]
    return [line for line in complete.split(b"\n")[:-1] if line.strip()]


class CliRun:
    """A running CLI: stdout lines in, stderr collected in an unnamed file."""

    def __init__(self, process: Process, stderr_file: IO[bytes]) -> None:
        self.process = process
        self._stderr_file = stderr_file

    @property
    def pid(self) -> int:
        return self.process.pid

    async def lines(self) -> AsyncIterator[bytes]:
        stdout = self.process.stdout
        if stdout is None:
            return
        buffer = bytearray()
        while True:
            try:
                chunk = await stdout.receive(READ_CHUNK)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                break
            for line in split_lines(buffer, chunk):
                yield line
        if buffer.strip():
            yield bytes(buffer)

    async def wait(self) -> int:
        return await self.process.wait()

    def stderr_tail(self, limit: int = STDERR_TAIL_BYTES) -> str:
        handle = self._stderr_file
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - limit))
        return handle.read().decode("utf-8", errors="replace")


def _signal_group(pgid: int, sig: int) -> bool:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


async def kill_process_group(process: Process, grace: float = KILL_GRACE_S) -> None:
    """TERM the group, KILL it after ``grace`` seconds; always reap the leader.

    Also run after a normal exit: it removes anything the CLI left in its group.
    """
    pgid = process.pid  # start_new_session: the leader's pid is the group id
    if process.returncode is None and _signal_group(pgid, signal.SIGTERM):
        with anyio.move_on_after(grace):
            await process.wait()
    _signal_group(pgid, signal.SIGKILL)
    await process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            await stream.aclose()


@asynccontextmanager
async def run_cli(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    stdin_data: bytes | None = None,
    kill_grace: float = KILL_GRACE_S,
) -> AsyncIterator[CliRun]:
    """Start ``argv`` (never through a shell) and guarantee its group is gone on exit."""
    stderr_file = tempfile.TemporaryFile()
    try:
        try:
            process = await anyio.open_process(
                list(argv),
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
        except FileNotFoundError:
            raise ProxyError(
                "cli_not_found", f"The CLI executable {argv[0]!r} was not found."
            ) from None
        except PermissionError:
            raise ProxyError(
                "cli_start_failed", f"The CLI executable {argv[0]!r} is not executable."
            ) from None
        except OSError as exc:
            raise ProxyError(
                "cli_start_failed", f"The CLI {argv[0]!r} could not be started: {exc.strerror}."
            ) from None
        try:
            if stdin_data is not None and process.stdin is not None:
                try:
                    await process.stdin.send(stdin_data)
                    await process.stdin.aclose()
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass  # the CLI exited early; its output and exit code tell why
            yield CliRun(process, stderr_file)
        finally:
            with anyio.CancelScope(shield=True):
                await kill_process_group(process, kill_grace)
    finally:
        stderr_file.close()


async def capture_cli(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    limit_s: float,
    stdin_data: bytes | None = None,
) -> tuple[int, str, str]:
    """Run to completion (whole group killed on timeout); return exit code, stdout, stderr."""
    async with run_cli(argv, cwd=cwd, env=env, stdin_data=stdin_data) as run:
        chunks: list[bytes] = []
        with anyio.fail_after(limit_s):
            async for line in run.lines():
                chunks.append(line)
            code = await run.wait()
        return code, b"\n".join(chunks).decode("utf-8", "replace"), run.stderr_tail()
