from __future__ import annotations

import pytest

from chat_client.conversation import Conversation, Message, TurnError


def answered(conversation: Conversation, question: str, answer: str) -> None:
    conversation.open_turn(question)
    conversation.commit_turn(answer)


def test_open_turn_returns_what_to_send_with_the_system_message_first() -> None:
    conversation = Conversation("Be terse.")
    answered(conversation, "hi", "hello")
    sent = conversation.open_turn("and?")
    assert sent == (
        Message("system", "Be terse."),
        Message("user", "hi"),
        Message("assistant", "hello"),
        Message("user", "and?"),
    )


def test_no_system_message_without_a_system_prompt() -> None:
    conversation = Conversation()
    assert conversation.open_turn("hi") == (Message("user", "hi"),)


def test_commit_keeps_the_turn() -> None:
    conversation = Conversation()
    answered(conversation, "q1", "a1")
    answered(conversation, "q2", "a2")
    assert conversation.answered_turns == 2
    assert [m.content for m in conversation.messages] == ["q1", "a1", "q2", "a2"]


def test_failed_turn_is_removed_so_the_user_can_retry() -> None:
    conversation = Conversation("sys")
    answered(conversation, "q1", "a1")
    conversation.open_turn("q2 that fails")
    conversation.drop_turn()
    assert conversation.messages == (
        Message("system", "sys"),
        Message("user", "q1"),
        Message("assistant", "a1"),
    )
    # The retry goes out exactly as the first attempt would have.
    assert conversation.open_turn("q2 that fails")[-1] == Message("user", "q2 that fails")
    assert len(conversation.messages) == 4


def test_set_system_replaces_the_prompt_and_resets_the_conversation() -> None:
    conversation = Conversation("old")
    answered(conversation, "q", "a")
    conversation.set_system("new")
    assert conversation.system == "new"
    assert conversation.messages == (Message("system", "new"),)


def test_set_system_to_nothing_removes_it() -> None:
    conversation = Conversation("old")
    conversation.set_system("")
    assert conversation.system is None
    assert conversation.messages == ()


def test_clear_keeps_the_system_prompt() -> None:
    conversation = Conversation("sys")
    answered(conversation, "q", "a")
    conversation.clear()
    assert conversation.messages == (Message("system", "sys"),)
    assert conversation.answered_turns == 0


def test_clear_also_forgets_an_open_turn() -> None:
    conversation = Conversation()
    conversation.open_turn("q")
    conversation.clear()
    assert conversation.messages == ()
    conversation.open_turn("next")  # no TurnError: nothing is open any more


def test_turn_misuse_is_reported() -> None:
    conversation = Conversation()
    with pytest.raises(TurnError):
        conversation.commit_turn("a")
    with pytest.raises(TurnError):
        conversation.drop_turn()
    conversation.open_turn("q")
    with pytest.raises(TurnError):
        conversation.open_turn("again")


def test_messages_are_a_snapshot() -> None:
    conversation = Conversation()
    sent = conversation.open_turn("q")
    conversation.commit_turn("a")
    assert sent == (Message("user", "q"),)
