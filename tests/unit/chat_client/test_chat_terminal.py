from __future__ import annotations

import io
from pathlib import Path

import pytest
from prompt_toolkit.history import FileHistory, InMemoryHistory

from chat_client.terminal import (
    HISTORY_FILE_NAME,
    Console,
    PlainReader,
    history_for,
    wants_color,
)


def test_history_file_in_a_writable_home(tmp_path: Path) -> None:
    history = history_for(tmp_path)
    assert isinstance(history, FileHistory)
    history.append_string("/models")
    assert "/models" in (tmp_path / HISTORY_FILE_NAME).read_text()


def test_history_in_memory_when_home_is_unusable(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    assert isinstance(history_for(not_a_dir), InMemoryHistory)
    assert isinstance(history_for(tmp_path / "missing"), InMemoryHistory)
    assert isinstance(history_for(None), InMemoryHistory)


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        ({"TERM": "xterm-256color"}, True, True),
        ({"TERM": "xterm-256color"}, False, False),
        ({"TERM": "xterm-256color", "NO_COLOR": ""}, True, False),
        ({"TERM": "dumb"}, True, False),
        ({}, True, False),
    ],
)
def test_wants_color(env: dict[str, str], tty: bool, expected: bool) -> None:
    stream = FakeTTY() if tty else io.StringIO()
    assert wants_color(stream, env) is expected


def test_console_keeps_errors_on_their_own_line() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = Console(out, err)
    console.write("partial")
    console.error("boom")
    console.line("next")
    assert out.getvalue() == "partial\nnext\n"
    assert err.getvalue() == "error: boom\n"


def test_console_colours_errors_red_when_asked() -> None:
    err = io.StringIO()
    Console(io.StringIO(), err, color=True).error("boom")
    assert err.getvalue() == "\x1b[31merror: boom\x1b[0m\n"


def test_console_end_line_adds_nothing_at_a_line_start() -> None:
    out = io.StringIO()
    console = Console(out, io.StringIO())
    console.end_line()
    console.write("done\n")
    console.end_line()
    assert out.getvalue() == "done\n"


def test_plain_reader_reads_lines_then_eof() -> None:
    reader = PlainReader(io.StringIO("one\ntwo"))
    assert reader.read_line("> ") == "one"
    assert reader.read_line("> ") == "two"
    with pytest.raises(EOFError):
        reader.read_line("> ")
