from __future__ import annotations

import pytest

from chat_client.commands import (
    COMMANDS,
    BadCommand,
    Blank,
    Command,
    ParsedLine,
    UserText,
    help_text,
    parse_line,
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("hello", UserText("hello")),
        ("  hello world  ", UserText("hello world")),
        ("what is 1/2?", UserText("what is 1/2?")),
        ("", Blank()),
        ("   \t ", Blank()),
        ("/model", Command("model", "")),
        ("/model gpt-5", Command("model", "gpt-5")),
        ("/model    gpt-5   ", Command("model", "gpt-5")),
        ("/model\tgpt-5", Command("model", "gpt-5")),
        ("   /model gpt-5", Command("model", "gpt-5")),
        ("/MODEL gpt-5", Command("model", "gpt-5")),
        ("/Model GPT-5", Command("model", "GPT-5")),  # the name folds case, the id does not
        ("/models", Command("models", "")),
        ("/system Be terse.  Answer in French.", Command("system", "Be terse.  Answer in French.")),
        ("/system", Command("system", "")),
        ("/clear", Command("clear", "")),
        ("/history", Command("history", "")),
        ("/help", Command("help", "")),
        ("/HELP  ", Command("help", "")),
        ("/quit", Command("quit", "")),
        ("/exit", Command("exit", "")),
        ("//etc/hosts: what is it?", UserText("/etc/hosts: what is it?")),
        ("//", UserText("/")),
        ("///", UserText("//")),
    ],
)
def test_parse_line(line: str, expected: ParsedLine) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize("line", ["/", "/ ", "/   model"])
def test_a_lone_slash_is_an_unknown_command(line: str) -> None:
    parsed = parse_line(line)
    assert isinstance(parsed, BadCommand)
    assert "Unknown command /:" in parsed.message
    assert "/help" in parsed.message


@pytest.mark.parametrize("line", ["/modle gpt", "/etc/hosts", "/é"])
def test_unknown_command_names_help_and_the_escape(line: str) -> None:
    parsed = parse_line(line)
    assert isinstance(parsed, BadCommand)
    assert parsed.message.startswith("Unknown command /" + line[1:].split()[0])
    assert "/help" in parsed.message and "//" in parsed.message
    assert "\n" not in parsed.message


@pytest.mark.parametrize("line", ["/clear now", "/models all", "/quit please", "/help me"])
def test_argument_to_a_command_that_takes_none(line: str) -> None:
    parsed = parse_line(line)
    assert isinstance(parsed, BadCommand)
    assert "takes no argument" in parsed.message


def test_model_ids_have_no_spaces() -> None:
    parsed = parse_line("/model gpt 5")
    assert isinstance(parsed, BadCommand)
    assert "Usage: /model [NAME]" in parsed.message


def test_help_lists_every_command() -> None:
    text = help_text()
    for name in COMMANDS:
        assert f"/{name}" in text
    assert "Ctrl-C" in text and "Ctrl-D" in text and "//" in text
