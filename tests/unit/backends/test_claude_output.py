"""The answer's two copies in claude's stream-json (deltas, then the assistant line) make
one answer, whatever the ids and the order: regression tests for a doubled answer when
the streamed message id and the final one differ."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.unit.backends.test_claude_cli import (
    assistant,
    drive,
    init_line,
    line,
    message_start,
    result,
    text_block,
    text_delta,
    texts,
)

TOOL_USE = {"type": "tool_use", "id": "t", "name": "Read", "input": {}}


def answer(lines: list[bytes]) -> str:
    return "".join(texts(drive([init_line(), *lines, result("")])))


def tool_result() -> bytes:
    return line(
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "content": "x"}],
            },
            "parent_tool_use_id": None,
        }
    )


def test_answer_is_not_doubled_when_the_final_message_id_differs() -> None:
    lines = [
        message_start("msg_stream"),
        text_delta("Hel"),
        text_delta("lo"),
        assistant("msg_final", text_block("Hello")),
    ]
    assert answer(lines) == "Hello"


def test_assistant_line_before_its_deltas_is_not_doubled() -> None:
    for final_id in ("msg_01", "msg_other"):
        lines = [
            message_start("msg_01"),
            assistant(final_id, text_block("Hello")),
            text_delta("Hel"),
            text_delta("lo"),
        ]
        assert answer(lines) == "Hello", final_id


def test_assistant_line_before_message_start_with_the_same_id() -> None:
    lines = [
        assistant("msg_01", text_block("Hello")),
        message_start("msg_01"),
        text_delta("Hello"),
    ]
    assert answer(lines) == "Hello"


def test_repeated_assistant_lines_are_not_doubled() -> None:
    lines = [
        message_start("msg_stream"),
        text_delta("Hello"),
        assistant("msg_final", text_block("Hello")),
        assistant("msg_final", text_block("Hello")),
        assistant("msg_stream", text_block("Hello")),
    ]
    assert answer(lines) == "Hello"


def test_assistant_line_with_more_than_was_streamed_adds_the_rest() -> None:
    lines = [message_start("a"), text_delta("Hel"), assistant("b", text_block("Hello"))]
    assert answer(lines) == "Hello"


def test_one_assistant_line_per_block_is_not_doubled() -> None:
    lines = [
        message_start("s"),
        text_delta("First. "),
        text_delta("Second."),
        assistant("f", text_block("First. ")),
        assistant("f", TOOL_USE),
        assistant("f", text_block("Second.")),
    ]
    assert answer(lines) == "First. Second."


def test_two_model_turns_with_ids_that_never_match() -> None:
    lines = [
        message_start("s1"),
        text_delta("Let me check. "),
        assistant("f1", text_block("Let me check. "), TOOL_USE),
        tool_result(),
        message_start("s2"),
        text_delta("Done."),
        assistant("f2", text_block("Done.")),
    ]
    assert answer(lines) == "Let me check. Done."


def test_late_assistant_line_of_the_first_turn_is_not_doubled() -> None:
    lines = [
        message_start("s1"),
        text_delta("Let me check. "),
        message_start("s2"),
        text_delta("Done."),
        assistant("f1", text_block("Let me check. ")),
        assistant("f2", text_block("Done.")),
    ]
    assert answer(lines) == "Let me check. Done."


def test_the_same_text_in_two_unstreamed_turns_is_kept_twice() -> None:
    lines = [
        assistant("m1", text_block("OK. "), TOOL_USE),
        tool_result(),
        assistant("m2", text_block("OK. ")),
    ]
    assert answer(lines) == "OK. OK. "


def test_deltas_without_a_message_start() -> None:
    assert answer([text_delta("Hi"), text_delta("!"), assistant("x", text_block("Hi!"))]) == "Hi!"


def test_copies_that_disagree_lose_no_text() -> None:
    lines = [message_start("a"), text_delta("Hello"), assistant("b", text_block("Goodbye"))]
    assert answer(lines) == "HelloGoodbye"


@st.composite
def hostile_streams(draw: Any) -> tuple[str, list[bytes]]:
    """One message's text as deltas, with its assistant line(s) anywhere, under any ids."""
    text = draw(st.text(alphabet=st.sampled_from(list("ab 세😀.\n")), min_size=1, max_size=30))
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=6)))
    pieces = [text[i:j] for i, j in zip([0, *cuts], [*cuts, len(text)], strict=True) if text[i:j]]
    stream_id = "s"
    final_ids = draw(st.lists(st.sampled_from(["s", "f", "g"]), min_size=1, max_size=3))
    lines = [message_start(stream_id), *[text_delta(p) for p in pieces]]
    for final_id in final_ids:
        at = draw(st.integers(1, len(lines)))  # never before the message_start
        lines.insert(at, assistant(final_id, text_block(text)))
    return text, lines


@given(hostile_streams())
def test_any_order_and_ids_give_the_text_exactly_once(case: tuple[str, list[bytes]]) -> None:
    text, lines = case
    assert answer(lines) == text
