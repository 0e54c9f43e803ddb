"""What keeps a claude run to the request alone: nothing from the server's filesystem, no
command and no ambient instructions may reach the model or change the operator's setup.

Seen with the real binary (2.1.197) over a fake model API, whatever ``--tools`` says:

- ``@path`` in the prompt (at the start or after a space) is replaced by the file's content,
  or a directory's listing: ``@~/.claude/.credentials.json`` sent the operator's token.
- A prompt starting with ``/`` runs a slash command: ``/config …`` rewrote
  ``~/.claude/settings.json``; ``/heapdump`` wrote ~30 MB into HOME.
- ``CLAUDE.md``, ``CLAUDE.local.md``, ``.claude/CLAUDE.md`` and ``.claude/rules/*.md`` in the
  working dir and every parent, ``~/.claude/CLAUDE.md``, and the output of the operator's
  hooks were added to what the model saw.

Two layers, so that a later CLI version renaming one switch does not reopen a hole: the CLI's
own switches (flags and environment, below), and our own neutralising of the prompt text,
which keeps it readable to the model.
"""

from __future__ import annotations

import json

# Environment switches of the claude binary (found in it; not in --help).
GUARD_ENV: dict[str, str] = {
    # @path / @server:resource expansion, nested CLAUDE.md and other per-turn attachments.
    "CLAUDE_CODE_DISABLE_ATTACHMENTS": "1",
    # CLAUDE.md files from the working dir, its parents and ~/.claude.
    "CLAUDE_CODE_DISABLE_CLAUDE_MDS": "1",
    # Notes the CLI would keep and reread under ~/.claude/projects/.
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
}

# --safe-mode: no CLAUDE.md, hooks, plugins, skills, output styles (auth and permissions
# work as usual; an apiKeyHelper in the operator's settings still logs in).
# --disable-slash-commands: a prompt starting with "/" is not run as a command.
GUARD_FLAGS: tuple[str, ...] = ("--safe-mode", "--disable-slash-commands")
# With the request's own MCP server (client tools): --safe-mode would turn it off too, so
# no settings source is read instead (user, project, local: no hooks, plugins, styles).
MCP_GUARD_FLAGS: tuple[str, ...] = ("--setting-sources=", "--disable-slash-commands")

# The permission rule form that covers absolute paths ("//…"); "Read" or "Read(**)" alone did
# not stop @-expansion of files outside the working dir.
DENY_ALL_READS = json.dumps({"permissions": {"deny": ["Read(//**)"]}}, separators=(",", ":"))

# U+2060 WORD JOINER: invisible, not whitespace (in Python or JavaScript), so an "@" or "/"
# after it no longer starts a mention or a command, and the text reads the same.
WORD_JOINER = "\u2060"


def settings_argv(allowed_tools: tuple[str, ...]) -> list[str]:
    """``--settings`` that deny every file read, when the operator allowed no tool: a Read
    deny rule also binds Grep, Glob and the like, which an operator may have allowed."""
    return [] if allowed_tools else [f"--settings={DENY_ALL_READS}"]


def _may_open_mention(previous: str) -> bool:
    # claude starts a mention at "@" at the start of the text or after whitespace or one of
    # 。、？！. Anything but a letter, digit or "_" is treated the same here: a superset, and
    # e-mail addresses (a letter before the "@") stay as they are.
    return previous == "" or not (previous.isalnum() or previous == "_")


def neutralise_prompt(text: str) -> str:
    """``text`` with every possible ``@`` mention and a leading ``/`` command made inert."""
    out: list[str] = []
    previous = ""
    for char in text:
        if char == "@" and _may_open_mention(previous):
            out.append(WORD_JOINER)
        out.append(char)
        previous = char
    result = "".join(out)
    # The CLI looks at the first character only (" /config" is not a command); a BOM or
    # whitespace in front is covered too, in case it ever trims.
    if result.lstrip().lstrip("\ufeff").lstrip().startswith("/"):
        result = WORD_JOINER + result
    return result
