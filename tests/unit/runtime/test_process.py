from __future__ import annotations

import json
import os
import signal
import stat
import sys
from contextlib import aclosing
from pathlib import Path

import anyio
import psutil
import pytest

from copilot_cli_proxy.backends.cli_backend import parse_json_line
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.runtime.process import (
    CliRun,
    capture_cli,
    kill_process_group,
    run_cli,
    split_lines,
)

ENV = dict(os.environ)
MULTILINGUAL_LINES = [
    "안녕하세요, 세계! 한국어 문장입니다.",
    "你好，世界。这是中文。",
    "😀👍🏽🇰🇷 family: 👨‍👩‍👧‍👦 and é ñ ß",
    json.dumps({"type": "stream_event", "text": "끝 终 🎉"}, ensure_ascii=False),
]
MULTILINGUAL = ("\n".join(MULTILINGUAL_LINES) + "\n").encode("utf-8")
# A shell that starts a second process in its group, prints its pid, and waits.
TWO_SLEEPERS = ["sh", "-c", "sleep 30 & echo $!; sleep 30"]
IGNORES_TERM = [
    sys.executable,
    "-c",
    "import signal, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(30)\n",
]


def feed_all(chunks: list[bytes]) -> tuple[list[bytes], bytearray]:
    buffer = bytearray()
    lines: list[bytes] = []
    for chunk in chunks:
        lines.extend(split_lines(buffer, chunk))
    return lines, buffer


# -- split_lines ------------------------------------------------------------------------------


def test_split_lines_whole_lines() -> None:
    lines, buffer = feed_all([b"a\nbb\nccc\n"])
    assert lines == [b"a", b"bb", b"ccc"]
    assert buffer == b""


def test_multibyte_text_split_at_every_byte_position() -> None:
    expected = [line.encode("utf-8") for line in MULTILINGUAL_LINES]
    for cut in range(len(MULTILINGUAL) + 1):
        lines, buffer = feed_all([MULTILINGUAL[:cut], MULTILINGUAL[cut:]])
        assert lines == expected, cut
        assert buffer == b""
        assert [line.decode("utf-8") for line in lines] == MULTILINGUAL_LINES


def test_multibyte_text_split_at_every_pair_of_positions() -> None:
    data = "한국 中文 😀\n👨‍👩‍👧 끝\n".encode()
    expected = [b"\xed\x95\x9c\xea\xb5\xad \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"]
    expected.append("👨‍👩‍👧 끝".encode())
    for first in range(len(data) + 1):
        for second in range(first, len(data) + 1):
            lines, buffer = feed_all([data[:first], data[first:second], data[second:]])
            assert lines == expected, (first, second)
            assert not buffer


def test_multibyte_text_fed_one_byte_at_a_time() -> None:
    lines, buffer = feed_all([bytes([b]) for b in MULTILINGUAL])
    assert [line.decode("utf-8") for line in lines] == MULTILINGUAL_LINES
    assert buffer == b""


def test_a_partial_character_stays_in_the_buffer_until_completed() -> None:
    emoji = "😀".encode()
    buffer = bytearray()
    assert split_lines(buffer, b"x" + emoji[:2]) == []
    assert buffer == b"x" + emoji[:2]
    assert split_lines(buffer, emoji[2:] + b"\n") == ["x😀".encode()]


def test_megabyte_lines_have_no_length_limit() -> None:
    big = json.dumps({"type": "result", "result": "가" * 1_000_000}, ensure_ascii=False).encode()
    assert len(big) > 3_000_000
    data = big + b"\n" + big + b"\n"
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    lines, buffer = feed_all(chunks)
    assert lines == [big, big]
    assert buffer == b""
    assert parse_json_line(lines[0]) == json.loads(big)


def test_a_huge_line_without_newline_is_held_not_returned() -> None:
    buffer = bytearray()
    assert split_lines(buffer, b"x" * 2_000_000) == []
    assert len(buffer) == 2_000_000
    assert split_lines(buffer, b"\n") == [b"x" * 2_000_000]


def test_crlf_lines_still_parse_as_json() -> None:
    lines, buffer = feed_all([b'{"a": 1}\r\n{"b": "\xed\x95\x9c"}\r', b"\n"])
    assert [line.rstrip(b"\r") for line in lines] == [b'{"a": 1}', b'{"b": "\xed\x95\x9c"}']
    assert [parse_json_line(line) for line in lines] == [{"a": 1}, {"b": "한"}]
    assert buffer == b""


def test_no_trailing_newline_leaves_the_last_line_in_the_buffer() -> None:
    lines, buffer = feed_all([b"one\ntwo\nthr", b"ee"])
    assert lines == [b"one", b"two"]
    assert buffer == b"three"


@pytest.mark.parametrize("data", [b"\n", b"\n\n\n", b"  \n\t\n", b"\r\n", b""])
def test_blank_lines_are_dropped(data: bytes) -> None:
    lines, buffer = feed_all([data])
    assert lines == []
    assert buffer == b""


def test_blank_lines_between_content_are_dropped() -> None:
    assert feed_all([b"a\n\n\nb\n \n"])[0] == [b"a", b"b"]


def test_returned_lines_are_independent_bytes() -> None:
    buffer = bytearray()
    lines = split_lines(buffer, b"abc\ndef")
    buffer.extend(b"more")
    assert lines == [b"abc"]
    assert type(lines[0]) is bytes


# -- run_cli with real processes -----------------------------------------------------------------


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def wait_gone(pid: int, limit: float = 5.0) -> bool:
    with anyio.move_on_after(limit):
        while not gone(pid):
            await anyio.sleep(0.02)
    return gone(pid)


async def first_line(run: CliRun) -> bytes:
    async with aclosing(run.lines()) as lines:
        async for line in lines:
            return line
    raise AssertionError("no output")


async def test_lines_of_a_real_process(tmp_path: Path) -> None:
    async with run_cli(["printf", "a\\n\\nb\\r\\nno newline"], cwd=tmp_path, env=ENV) as run:
        lines = [line async for line in run.lines()]
        assert await run.wait() == 0
    assert [line.rstrip(b"\r") for line in lines] == [b"a", b"b", b"no newline"]


async def test_multibyte_and_megabyte_output_of_a_real_process(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "out = sys.stdout.buffer\n"
        "out.write(('가' * 1_000_000).encode() + b'\\n')\n"
        "out.write('😀 끝'.encode())\n"
    )
    async with run_cli([sys.executable, "-c", script], cwd=tmp_path, env=ENV) as run:
        lines = [line async for line in run.lines()]
    assert [len(line) for line in lines] == [3_000_000, len("😀 끝".encode())]
    assert lines[1].decode("utf-8") == "😀 끝"


async def test_runs_in_the_given_directory(tmp_path: Path) -> None:
    async with run_cli(["pwd"], cwd=tmp_path, env=ENV) as run:
        assert await first_line(run) == str(tmp_path).encode()


async def test_stdin_data_is_sent_then_closed(tmp_path: Path) -> None:
    data = "첫 줄\nsecond 😀\n".encode()
    async with run_cli(["cat"], cwd=tmp_path, env=ENV, stdin_data=data) as run:
        lines = [line async for line in run.lines()]
        assert await run.wait() == 0
    assert lines == ["첫 줄".encode(), "second 😀".encode()]


async def test_large_stdin_for_a_cli_that_reads_it_all_first(tmp_path: Path) -> None:
    script = "import sys; print(len(sys.stdin.buffer.read()))"
    data = b"x" * 3_000_000
    async with run_cli(
        [sys.executable, "-c", script], cwd=tmp_path, env=ENV, stdin_data=data
    ) as run:
        assert await first_line(run) == b"3000000"


async def test_without_stdin_data_stdin_is_at_eof(tmp_path: Path) -> None:
    async with run_cli(["cat"], cwd=tmp_path, env=ENV) as run:
        assert [line async for line in run.lines()] == []
        assert await run.wait() == 0


async def test_a_cli_that_exits_before_reading_stdin_is_not_an_error(tmp_path: Path) -> None:
    async with run_cli(["true"], cwd=tmp_path, env=ENV, stdin_data=b"x" * 1_000_000) as run:
        assert await run.wait() == 0


async def test_exit_code_and_stderr_tail(tmp_path: Path) -> None:
    argv = ["sh", "-c", "echo out; echo 'Error: 인증 실패' >&2; exit 3"]
    async with run_cli(argv, cwd=tmp_path, env=ENV) as run:
        assert [line async for line in run.lines()] == [b"out"]
        assert await run.wait() == 3
        assert run.stderr_tail() == "Error: 인증 실패\n"


async def test_stderr_tail_keeps_only_the_end(tmp_path: Path) -> None:
    argv = [sys.executable, "-c", "import sys; sys.stderr.write('a' * 100000 + 'THE END')"]
    async with run_cli(argv, cwd=tmp_path, env=ENV) as run:
        await run.wait()
        tail = run.stderr_tail(limit=20)
    assert tail == "a" * 13 + "THE END"


async def test_the_whole_group_is_killed_on_exit(tmp_path: Path) -> None:
    async with run_cli(TWO_SLEEPERS, cwd=tmp_path, env=ENV) as run:
        leader = run.pid
        child = int(await first_line(run))
        assert os.getpgid(child) == leader
        assert not gone(child)
    assert run.process.returncode is not None
    assert await wait_gone(leader)
    assert await wait_gone(child)


async def test_the_group_is_killed_when_the_body_raises(tmp_path: Path) -> None:
    child = 0
    with pytest.raises(RuntimeError, match="handler failed"):
        async with run_cli(TWO_SLEEPERS, cwd=tmp_path, env=ENV) as run:
            child = int(await first_line(run))
            raise RuntimeError("handler failed")
    assert await wait_gone(child)
    assert await wait_gone(run.pid)


async def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    async with run_cli(IGNORES_TERM, cwd=tmp_path, env=ENV, kill_grace=0.3) as run:
        assert await first_line(run) == b"ready"
    assert run.process.returncode == -signal.SIGKILL


async def test_a_process_that_obeys_sigterm_ends_by_sigterm(tmp_path: Path) -> None:
    async with run_cli(["sleep", "30"], cwd=tmp_path, env=ENV, kill_grace=5) as run:
        pass
    assert run.process.returncode == -signal.SIGTERM


async def test_a_group_that_ignores_sigterm_is_killed_whole(tmp_path: Path) -> None:
    argv = ["sh", "-c", "trap '' TERM; sleep 30 & echo $!; wait"]
    async with run_cli(argv, cwd=tmp_path, env=ENV, kill_grace=0.3) as run:
        child = int(await first_line(run))
    assert run.process.returncode == -signal.SIGKILL
    assert await wait_gone(child)


async def test_cancellation_still_kills_the_group(tmp_path: Path) -> None:
    child = 0
    with anyio.move_on_after(0.5) as scope:
        async with run_cli(TWO_SLEEPERS, cwd=tmp_path, env=ENV) as run:
            child = int(await first_line(run))
            await run.wait()
    assert scope.cancelled_caught
    assert run.process.returncode is not None
    assert await wait_gone(child)
    assert await wait_gone(run.pid)


async def test_cancellation_waits_out_the_grace_then_kills(tmp_path: Path) -> None:
    with anyio.move_on_after(0.5) as scope:
        async with run_cli(IGNORES_TERM, cwd=tmp_path, env=ENV, kill_grace=0.3) as run:
            assert await first_line(run) == b"ready"
            await anyio.sleep(30)
    assert scope.cancelled_caught
    assert run.process.returncode == -signal.SIGKILL


async def test_cancellation_while_reading_lines(tmp_path: Path) -> None:
    argv = ["sh", "-c", "echo $$; sleep 30 & echo $!; while :; do echo tick; sleep 0.05; done"]
    pids: list[int] = []
    with anyio.move_on_after(0.5):
        async with run_cli(argv, cwd=tmp_path, env=ENV) as run:
            async for line in run.lines():
                if line != b"tick":
                    pids.append(int(line))
    assert len(pids) == 2
    for pid in pids:
        assert await wait_gone(pid)


async def test_kill_process_group_after_a_normal_exit_removes_leftovers(tmp_path: Path) -> None:
    process = await anyio.open_process(
        ["sh", "-c", "sleep 30 & echo $!"], cwd=tmp_path, start_new_session=True
    )
    assert process.stdout is not None
    child = int((await process.stdout.receive()).strip())
    assert await process.wait() == 0
    assert not gone(child)
    await kill_process_group(process, grace=5)
    assert await wait_gone(child)
    assert process.returncode == 0


async def test_kill_process_group_twice_is_harmless(tmp_path: Path) -> None:
    process = await anyio.open_process(["sleep", "30"], cwd=tmp_path, start_new_session=True)
    await kill_process_group(process, grace=1)
    await kill_process_group(process, grace=1)
    assert process.returncode == -signal.SIGTERM


@pytest.mark.parametrize(
    "executable", ["/nonexistent/dir/copilot", "no-such-cli-4f1d9c", "./missing-claude"]
)
async def test_missing_executable_is_cli_not_found(tmp_path: Path, executable: str) -> None:
    with pytest.raises(ProxyError) as caught:
        async with run_cli([executable, "--version"], cwd=tmp_path, env=ENV):
            raise AssertionError("must not start")
    assert caught.value.code == "cli_not_found"
    assert caught.value.status == 503
    assert executable in caught.value.message


async def test_a_file_without_execute_permission_is_cli_start_failed(tmp_path: Path) -> None:
    script = tmp_path / "copilot"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    if os.access(script, os.X_OK):
        pytest.skip("running with permissions that ignore the execute bit")
    with pytest.raises(ProxyError) as caught:
        async with run_cli([str(script)], cwd=tmp_path, env=ENV):
            pass
    assert caught.value.code == "cli_start_failed"


async def test_a_file_that_is_not_a_program_is_cli_start_failed(tmp_path: Path) -> None:
    junk = tmp_path / "claude"
    junk.write_bytes(b"\x00\x01\x02 not an executable format")
    junk.chmod(0o755)
    with pytest.raises(ProxyError) as caught:
        async with run_cli([str(junk)], cwd=tmp_path, env=ENV):
            pass
    assert caught.value.code == "cli_start_failed"


# -- capture_cli ------------------------------------------------------------------------------


async def test_capture_cli(tmp_path: Path) -> None:
    argv = ["sh", "-c", "echo 'GitHub Copilot CLI 1.0.102.'; echo warn >&2; exit 1"]
    code, stdout, stderr = await capture_cli(argv, cwd=tmp_path, env=ENV, limit_s=10)
    assert (code, stdout, stderr) == (1, "GitHub Copilot CLI 1.0.102.", "warn\n")


async def test_capture_cli_with_stdin(tmp_path: Path) -> None:
    code, stdout, _ = await capture_cli(
        ["cat"], cwd=tmp_path, env=ENV, limit_s=10, stdin_data=b'{"type":"x"}\n'
    )
    assert (code, stdout) == (0, '{"type":"x"}')


async def test_capture_cli_timeout_kills_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    argv = ["sh", "-c", f"sleep 30 & echo $! > {pid_file}; echo started; sleep 30"]
    with pytest.raises(TimeoutError):
        await capture_cli(argv, cwd=tmp_path, env=ENV, limit_s=0.5)
    assert await wait_gone(int(pid_file.read_text()))
