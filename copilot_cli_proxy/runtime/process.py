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
    """A running CLI in its own process group; stderr collected in an unnamed file.

    Not tied to a task: a warm process may be started by one task and used and
    closed by another. ``aclose`` is idempotent and shielded.
    """

    def __init__(self, process: Process, stderr_file: IO[bytes]) -> None:
        self.process = process
        self._stderr_file = stderr_file
        self._closed = False

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        keep_stdin: bool = False,
    ) -> CliRun:
        """Start ``argv`` (never through a shell), with stdin a pipe or /dev/null."""
        stderr_file = tempfile.TemporaryFile()
        try:
            process = await anyio.open_process(
                list(argv),
                stdin=subprocess.PIPE if keep_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                cwd=cwd,
                env=dict(env),
                start_new_session=True,
            )
        except FileNotFoundError:
            stderr_file.close()
            raise ProxyError(
                "cli_not_found", f"The CLI executable {argv[0]!r} was not found."
            ) from None
        except PermissionError:
            stderr_file.close()
            raise ProxyError(
                "cli_start_failed", f"The CLI executable {argv[0]!r} is not executable."
            ) from None
        except OSError as exc:
            stderr_file.close()
            raise ProxyError(
                "cli_start_failed", f"The CLI {argv[0]!r} could not be started: {exc.strerror}."
            ) from None
        return cls(process, stderr_file)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def write_stdin(self, data: bytes, *, close: bool = False) -> bool:
        """Send ``data``; False when the CLI has already closed its stdin (it exited)."""
        stdin = self.process.stdin
        if stdin is None:
            return False
        try:
            if data:
                await stdin.send(data)
            if close:
                await stdin.aclose()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    async def chunks(self) -> AsyncIterator[bytes]:
        """Raw stdout as it arrives, until EOF."""
        stdout = self.process.stdout
        if stdout is None:
            return
        while True:
            try:
                yield await stdout.receive(READ_CHUNK)
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                return

    async def lines(self) -> AsyncIterator[bytes]:
        buffer = bytearray()
        async for chunk in self.chunks():
            for line in split_lines(buffer, chunk):
                yield line
        if buffer.strip():
            yield bytes(buffer)

    async def wait(self) -> int:
        return await self.process.wait()

    def stderr_tail(self, limit: int = STDERR_TAIL_BYTES) -> str:
        if self._stderr_file.closed:
            return ""
        handle = self._stderr_file
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - limit))
        return handle.read().decode("utf-8", errors="replace")

    async def aclose(self, grace: float = KILL_GRACE_S) -> None:
        """Kill the whole group and release everything; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                await kill_process_group(self.process, grace)
            finally:
                self._stderr_file.close()


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
    if process.stdout is not None:
        # Read to EOF so the pipe's transport sees it and closes; a reader in another
        # task (a long-lived process's) gets its EOF itself.
        with anyio.move_on_after(1.0):
            try:
                while await process.stdout.receive(READ_CHUNK):
                    pass
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
            except RuntimeError:
                pass  # another task is reading
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
    """Start ``argv``, feed ``stdin_data`` (then EOF), and guarantee the group is gone on exit."""
    run = await CliRun.start(argv, cwd=cwd, env=env, keep_stdin=stdin_data is not None)
    try:
        if stdin_data is not None:
            # A CLI that exits early closes its stdin; its output and exit code tell why.
            await run.write_stdin(stdin_data, close=True)
        yield run
    finally:
        await run.aclose(kill_grace)


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
