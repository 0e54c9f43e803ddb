"""The README's section on the chat names every command, flag and variable it has."""

from __future__ import annotations

from pathlib import Path

from chat_client.commands import COMMAND_SPECS
from chat_client.config import ENV_API_KEY, ENV_MODEL, ENV_SERVER_URL, build_parser

README = Path(__file__).resolve().parents[3] / "README.md"
HEADING = "## Chat in the terminal: copilot-chat"


def section() -> str:
    text = README.read_text()
    assert HEADING in text
    return text.split(HEADING, 1)[1].split("\n## ", 1)[0]


def test_every_command_is_documented() -> None:
    text = section()
    missing = [spec.name for spec in COMMAND_SPECS if f"`/{spec.name}" not in text]
    assert missing == []


def test_every_flag_and_variable_is_documented() -> None:
    text = section()
    flags = [
        option
        for action in build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    assert flags  # the parser has some: the check below can fail
    missing = [
        name for name in (*flags, ENV_SERVER_URL, ENV_MODEL, ENV_API_KEY) if name not in text
    ]
    assert missing == []
