"""The backends file: what it accepts, and that every mistake names its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from copilot_cli_proxy.config.backends_file import (
    BackendsFileError,
    load_backends_file,
    parse_backends,
)

EXAMPLE = """
[[backend]]
id = "copilot"
kind = "copilot-cli"
runner = "persistent"
cli_path = "/usr/local/bin/copilot"
max_concurrent = 4
default_model = "gpt-5-mini"
env = ["COPILOT_GITHUB_TOKEN"]

[[backend]]
id = "claude"
kind = "claude-cli"

[aliases]
"gpt-4o" = "copilot/gpt-5-mini"
"claude-sonnet-4-5" = "claude/sonnet"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "backends.toml"
    path.write_text(text)
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load_backends_file(write(tmp_path, EXAMPLE))
    copilot, claude = config.backends
    assert (copilot.id, copilot.kind, copilot.max_concurrent) == ("copilot", "copilot-cli", 4)
    assert copilot.default_model == "gpt-5-mini"
    assert copilot.env == ("COPILOT_GITHUB_TOKEN",)
    assert copilot.options == {"runner": "persistent", "cli_path": "/usr/local/bin/copilot"}
    assert (claude.id, claude.kind, claude.max_concurrent, claude.options) == (
        "claude",
        "claude-cli",
        None,
        {},
    )
    assert config.aliases == {"gpt-4o": "copilot/gpt-5-mini", "claude-sonnet-4-5": "claude/sonnet"}
    assert config.backend("claude") is claude


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[backend]]\nid = "a"\nkind = "nope"\n',
            "[[backend]] #1 (id 'a'): key 'kind' must be one of",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\n'
            '[[backend]]\nid = "a"\nkind = "copilot-cli"\n',
            "[[backend]] #2: id 'a' is used by an earlier backend",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\n[aliases]\nx = "b/m"\n',
            "[aliases] key 'x': 'b/m' points to backend 'b'",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\n[aliases]\nx = "a"\n',
            "[aliases] key 'x': 'a' must name a backend and a model",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\nmax_concurrent = "4"\n',
            "key 'max_concurrent' must be a whole number, got '4'",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\nmax_concurrent = true\n',
            "key 'max_concurrent' must be a whole number, got True",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\nmax_concurrent = 0\n',
            "key 'max_concurrent' must be >= 1, got 0",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\nrunner = "forever"\n',
            "key 'runner' must be one of persistent, oneshot",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\nrunnr = "oneshot"\n',
            "unknown key 'runnr' for kind 'claude-cli'",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\nenv = ["OK", 3]\n',
            "key 'env' must hold only a string values, got 3",
        ),
        (
            '[[backend]]\nid = "a"\nkind = "claude-cli"\nenv = ["NOT A NAME"]\n',
            "key 'env' holds 'NOT A NAME', not a variable name",
        ),
        ('[[backend]]\nid = "Upper"\nkind = "claude-cli"\n', "key 'id' must be a string of a-z"),
        ('[[backend]]\nkind = "claude-cli"\n', "key 'id' must be a string of a-z"),
        ("[aliases]\n", "needs at least one [[backend]] table"),
        ('backends = 1\n[[backend]]\nid = "a"\nkind = "claude-cli"\n', "unknown top-level key"),
        ('[[backend]]\nid = "a"\nkind = "claude-cli"\n[aliases]\nx = 1\n', "must be a string"),
    ],
)
def test_each_mistake_stops_with_its_path_table_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(BackendsFileError) as caught:
        load_backends_file(path)
    message = str(caught.value)
    assert message.startswith(str(path) + ": ")
    assert expected in message


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(BackendsFileError, match="does not exist"):
        load_backends_file(tmp_path / "nope.toml")
    with pytest.raises(BackendsFileError, match="not valid TOML"):
        load_backends_file(write(tmp_path, "[[backend]\n"))


def test_backend_entry_must_be_a_table() -> None:
    with pytest.raises(BackendsFileError, match=r"#1: must be a table"):
        parse_backends({"backend": [1]}, "f.toml")
