"""Keep the real copilot CLI from reading or keeping anything outside the request.

Observed with copilot 1.0.102 over a fake model API:

- It keeps every conversation in its home (``~/.copilot``, or ``COPILOT_HOME``):
  ``session-state/<id>/events.jsonl`` and ``session-store.db`` (turns, a search index;
  ``session.delete`` leaves them there). So each run gets a private home instead: a
  fresh directory holding only a copy of the operator's ``config.json``, which is where
  ``copilot login`` records the login (the token itself is there or in the system
  keyring). A *directory* named ``session-store.db`` stands where the store would be:
  the CLI then runs without a store and writes no conversation to it.
- It loads instructions from the operator's ``~/.copilot/copilot-instructions.md``,
  from every directory between the working directory and the git root above it
  (``AGENTS.md``, ``CLAUDE.md``, ``GEMINI.md``, ``.github/copilot-instructions.md``,
  ``.github/instructions/*.instructions.md``), and from the directories named in
  ``COPILOT_CUSTOM_INSTRUCTIONS_DIRS``. The private home drops the first; a ``.git``
  in the request dir makes it its own git root, so no parent is read; the variable
  is removed from the CLI's environment.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from copilot_cli_proxy.backends.cli_backend import cli_env

# Variables that would widen what the CLI reads or may do beyond the server's choice.
STRIPPED_ENV = ("COPILOT_CUSTOM_INSTRUCTIONS_DIRS", "COPILOT_ALLOW_ALL", "COPILOT_HOME")
LOGIN_FILES = ("config.json",)
STORE_NAME = "session-store.db"


def operator_copilot_home(env: Mapping[str, str] | None = None) -> Path:
    """Where the operator's copilot keeps its login and state (its documented default)."""
    source = os.environ if env is None else env
    if source.get("COPILOT_HOME"):
        return Path(source["COPILOT_HOME"]).expanduser()
    return Path(source.get("HOME") or "~").expanduser() / ".copilot"


def make_private_home(path: Path, operator_home: Path) -> Path:
    """Make ``path`` (new, or empty) a copilot home with the operator's login and no store."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    for name in LOGIN_FILES:
        source = operator_home / name
        if source.is_file():
            shutil.copyfile(source, path / name)
            (path / name).chmod(0o600)
    (path / STORE_NAME).mkdir(mode=0o700)
    return path


def mark_git_root(workdir: Path) -> None:
    """Make ``workdir`` a git repository of its own (the least git accepts), so the
    CLI's search for instructions stops there instead of at a repository above it."""
    git = workdir / ".git"
    (git / "objects").mkdir(parents=True, exist_ok=True)
    (git / "refs").mkdir(exist_ok=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")


def isolated_env(
    home: Path, base: Mapping[str, str] | None = None, extra_names: tuple[str, ...] = ()
) -> dict[str, str]:
    """The CLI's environment: copilot's allowlist of the server's (less the variables
    above), with the private home."""
    env = cli_env(base, kind="copilot-cli", extra_names=extra_names)
    for key in STRIPPED_ENV:
        env.pop(key, None)
    env["COPILOT_HOME"] = str(home)
    return env
