"""The messages of one conversation, and the rule that only finished turns stay in it.

A turn is opened with the user's text and either committed with the whole answer or
dropped. Dropping covers a failed request and an answer stopped with Ctrl-C alike:
keeping half an answer would feed the model a reply it never finished, and keeping the
question alone would make the next question arrive after an unanswered one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


class TurnError(RuntimeError):
    """A turn was opened twice, or closed without being open: a bug in the caller."""


class Conversation:
    def __init__(self, system: str | None = None) -> None:
        self._system = system
        self._turns: list[Message] = []
        self._pending: Message | None = None

    @property
    def system(self) -> str | None:
        return self._system

    @property
    def messages(self) -> tuple[Message, ...]:
        """What the model sees: the system message first, then the turns, then the open
        question if there is one."""
        head = (Message("system", self._system),) if self._system else ()
        tail = (self._pending,) if self._pending else ()
        return (*head, *self._turns, *tail)

    @property
    def answered_turns(self) -> int:
        return len(self._turns) // 2

    def set_system(self, prompt: str | None) -> None:
        """A new system prompt changes who the assistant is: earlier turns no longer fit."""
        self._system = prompt or None
        self.clear()

    def clear(self) -> None:
        self._turns.clear()
        self._pending = None

    def open_turn(self, text: str) -> tuple[Message, ...]:
        """Add the user's question; returns the messages to send."""
        if self._pending is not None:
            raise TurnError("a turn is already open")
        self._pending = Message("user", text)
        return self.messages

    def commit_turn(self, answer: str) -> None:
        if self._pending is None:
            raise TurnError("no open turn to commit")
        self._turns += [self._pending, Message("assistant", answer)]
        self._pending = None

    def drop_turn(self) -> None:
        """Forget the open question (failed or interrupted), so the user can ask again."""
        if self._pending is None:
            raise TurnError("no open turn to drop")
        self._pending = None
