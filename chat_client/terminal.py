"""Terminal I/O: reading lines (prompt_toolkit when interactive) and writing output."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

HISTORY_FILE_NAME = ".copilot-chat_history"

RED = "\x1b[31m"
DIM = "\x1b[2m"
RESET = "\x1b[0m"


def history_for(home: Path | None) -> History:
    """Line history kept in ``~/.copilot-chat_history`` when the home directory lets us
    write it, else only for this session (a read-only or missing home must not stop the
    chat)."""
    if home is None:
        return InMemoryHistory()
    path = home / HISTORY_FILE_NAME
    try:
        # FileHistory opens the file only when it loads or appends; find out now.
        with path.open("ab"):
            pass
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))


def home_directory() -> Path | None:
    try:
        return Path.home()
    except RuntimeError:  # no HOME and no passwd entry
        return None


class LineReader(Protocol):
    def read_line(self, prompt: str) -> str:
        """The next line; KeyboardInterrupt for Ctrl-C, EOFError for Ctrl-D or end of input."""
        ...


class PromptReader:
    """prompt_toolkit: line editing, history, Ctrl-C clears the line, Ctrl-D leaves."""

    def __init__(self, history: History) -> None:
        self._session: PromptSession[str] = PromptSession(history=history)

    def read_line(self, prompt: str) -> str:
        return self._session.prompt(prompt)


class PlainReader:
    """Lines from a pipe or a file, for scripted use; no prompt is shown."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def read_line(self, prompt: str) -> str:
        line = self._stream.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")


def wants_color(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only for a terminal that can show it, and never against NO_COLOR."""
    if "NO_COLOR" in env or env.get("TERM", "") in ("", "dumb"):
        return False
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False


class Console:
    """Output for the chat: the answer on ``out`` as it arrives, errors on ``err``."""

    def __init__(self, out: TextIO, err: TextIO, *, color: bool = False) -> None:
        self._out = out
        self._err = err
        self._color = color
        self._at_line_start = True

    @classmethod
    def for_process(cls, env: Mapping[str, str]) -> Console:
        return cls(sys.stdout, sys.stderr, color=wants_color(sys.stderr, env))

    def write(self, text: str) -> None:
        """Part of an answer: shown at once, not when a line or buffer fills."""
        if not text:
            return
        self._out.write(text)
        self._out.flush()
        self._at_line_start = text.endswith("\n")

    def end_line(self) -> None:
        """Finish a partial line, so what follows starts at the left margin."""
        if not self._at_line_start:
            self.write("\n")

    def line(self, text: str = "") -> None:
        self.end_line()
        self.write(text + "\n")

    def note(self, text: str) -> None:
        self.line(f"{DIM}{text}{RESET}" if self._color else text)

    def error(self, text: str) -> None:
        self.end_line()
        message = f"error: {text}"
        self._err.write(f"{RED}{message}{RESET}\n" if self._color else message + "\n")
        self._err.flush()
