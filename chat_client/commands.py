"""What a typed line means: a message for the model, a slash command, or a mistake.

Pure: no I/O. A line whose first non-blank character is ``/`` is a command; ``//``
escapes it, so ``//etc/hosts`` sends the text ``/etc/hosts``. Command names are
case-insensitive and may be followed by any amount of whitespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CommandSpec:
    name: str
    usage: str
    summary: str
    takes_argument: bool = False


COMMAND_SPECS: tuple[CommandSpec, ...] = (
    CommandSpec(
        "model",
        "/model [NAME]",
        "show the model, or switch to NAME (one /models lists)",
        takes_argument=True,
    ),
    CommandSpec("models", "/models", "list the server's models (* = current, first = default)"),
    CommandSpec(
        "system",
        "/system [PROMPT]",
        "show the system prompt, or set it and start a new conversation",
        takes_argument=True,
    ),
    CommandSpec("clear", "/clear", "start a new conversation (keeps the system prompt)"),
    CommandSpec("history", "/history", "show the conversation so far"),
    CommandSpec("help", "/help", "show this help"),
    CommandSpec("quit", "/quit", "leave (so do /exit and Ctrl-D)"),
    CommandSpec("exit", "/exit", "leave"),
)
COMMANDS: dict[str, CommandSpec] = {spec.name: spec for spec in COMMAND_SPECS}


@dataclass(frozen=True, slots=True)
class Blank:
    """Nothing but whitespace: ignored, never sent."""


@dataclass(frozen=True, slots=True)
class UserText:
    text: str


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # a key of COMMANDS
    argument: str  # stripped; "" when none was given


@dataclass(frozen=True, slots=True)
class BadCommand:
    """An unknown command or a wrong use of a known one, with a one-line hint."""

    message: str


ParsedLine = Blank | UserText | Command | BadCommand


def parse_line(line: str) -> ParsedLine:
    stripped = line.strip()
    if not stripped:
        return Blank()
    if stripped.startswith("//"):
        return UserText(stripped[1:])
    if not stripped.startswith("/"):
        return UserText(stripped)
    # The name follows the slash directly ("/ model" is not /model); any whitespace,
    # tabs or several spaces, may separate it from the argument.
    match = re.match(r"/(\S*)\s*(.*)", stripped, re.DOTALL)
    assert match is not None  # "/" followed by anything matches
    name, argument = match.group(1).lower(), match.group(2).strip()
    spec = COMMANDS.get(name)
    if spec is None:
        shown = f"/{name}" if name else "/"
        return BadCommand(
            f"Unknown command {shown}: type /help for the commands "
            "(start a line with // to send it as text)."
        )
    if argument and not spec.takes_argument:
        return BadCommand(f"{spec.usage} takes no argument.")
    if name == "model" and len(argument.split()) > 1:
        return BadCommand("A model id has no spaces. Usage: /model [NAME]")
    return Command(name, argument)


def help_text() -> str:
    width = max(len(spec.usage) for spec in COMMAND_SPECS)
    lines = [f"  {spec.usage.ljust(width)}  {spec.summary}" for spec in COMMAND_SPECS]
    lines += [
        "",
        "  Anything else is sent to the model; start a line with // to send one beginning with /.",
        "  Ctrl-C stops an answer (the interrupted turn is dropped) or clears the line;"
        " Ctrl-D leaves.",
    ]
    return "\n".join(["Commands:", *lines])
