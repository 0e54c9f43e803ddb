from __future__ import annotations

import itertools
import json
import random
from typing import Any

import pytest

from copilot_cli_proxy.backends.base import ToolCallEvent, Usage
from copilot_cli_proxy.errors import ProxyError
from copilot_cli_proxy.protocol.responses import (
    SSE_DONE,
    CompletionIdentity,
    StopSequenceFilter,
    new_completion_id,
    sse_error,
    sse_event,
    tool_call_body,
    usage_body,
)
from copilot_cli_proxy.routes.common import json_bytes

MULTILINGUAL = "안녕하세요 你好 😀👍🏽 – done"


def frame_json(frame: bytes) -> Any:
    assert frame.startswith(b"data: ")
    assert frame.endswith(b"\n\n")
    payload = frame[len(b"data: ") : -2]
    assert b"\n" not in payload and b"\r" not in payload
    return json.loads(payload.decode("utf-8"))


# -- ids and shapes ---------------------------------------------------------------------------


def test_completion_ids_are_unique_and_prefixed() -> None:
    ids = {new_completion_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(i.startswith("chatcmpl-") and len(i) > len("chatcmpl-") + 8 for i in ids)


def test_chunks_of_one_answer_share_id_created_and_model() -> None:
    identity = CompletionIdentity(model="gpt-5-mini")
    first = identity.chunk({"role": "assistant", "content": ""})
    last = identity.chunk({}, finish_reason="stop")
    usage = identity.usage_chunk(Usage(1, 2))
    for body in (first, last, usage):
        assert body["id"] == identity.id
        assert body["created"] == identity.created
        assert body["model"] == "gpt-5-mini"
        assert body["object"] == "chat.completion.chunk"
        assert body["system_fingerprint"] is None
    assert isinstance(identity.created, int)


def test_content_chunk_shape() -> None:
    body = CompletionIdentity(model="m").chunk({"content": "Hi"})
    assert body["choices"] == [
        {"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}
    ]
    assert "usage" not in body


@pytest.mark.parametrize("reason", ["stop", "length", "content_filter"])
def test_final_chunk_carries_the_finish_reason_and_an_empty_delta(reason: str) -> None:
    choice = CompletionIdentity(model="m").chunk({}, finish_reason=reason)["choices"][0]
    assert choice["delta"] == {}
    assert choice["finish_reason"] == reason


def test_usage_chunk_has_no_choices() -> None:
    body = CompletionIdentity(model="m").usage_chunk(Usage(prompt_tokens=3, completion_tokens=4))
    assert body["choices"] == []
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


@pytest.mark.parametrize("usage", [None, Usage()])
def test_unknown_usage_is_null_fields_not_made_up_numbers(usage: Usage | None) -> None:
    body = CompletionIdentity(model="m").usage_chunk(usage)
    assert body["usage"] == {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}


def test_output_tokens_only_gives_a_null_total() -> None:
    assert usage_body(Usage(completion_tokens=12)) == {
        "prompt_tokens": None,
        "completion_tokens": 12,
        "total_tokens": None,
    }


def test_usage_details_only_when_known() -> None:
    body = usage_body(
        Usage(prompt_tokens=10, completion_tokens=5, cached_prompt_tokens=4, reasoning_tokens=2)
    )
    assert body == {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert usage_body(None) is None
    zero = usage_body(Usage(0, 0, cached_prompt_tokens=0))
    assert zero is not None and zero["prompt_tokens_details"] == {"cached_tokens": 0}


def test_completion_shape() -> None:
    identity = CompletionIdentity(model="sonnet")
    body = identity.completion("Hello", "length", Usage(prompt_tokens=1, completion_tokens=2))
    assert body["object"] == "chat.completion"
    assert body["id"] == identity.id
    assert body["model"] == "sonnet"
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello", "refusal": None},
            "logprobs": None,
            "finish_reason": "length",
        }
    ]
    assert body["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}


def test_completion_without_usage_has_null_usage_fields() -> None:
    body = CompletionIdentity(model="m").completion("", "stop", None)
    assert body["usage"] == {"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}
    assert body["choices"][0]["message"]["content"] == ""


# -- SSE framing ------------------------------------------------------------------------------


def test_sse_event_is_framed_as_one_data_line() -> None:
    frame = sse_event({"a": 1})
    assert frame == b'data: {"a":1}\n\n'


def test_sse_event_sends_multibyte_text_as_utf8_not_escapes() -> None:
    frame = sse_event(CompletionIdentity(model="m").chunk({"content": MULTILINGUAL}))
    assert MULTILINGUAL.encode("utf-8") in frame
    assert b"\\u" not in frame
    assert frame_json(frame)["choices"][0]["delta"]["content"] == MULTILINGUAL


@pytest.mark.parametrize(
    "text",
    ["a\n\nb", "data: [DONE]\n\n", "\r\n\r\n", "line\rbreak", "\u2028\u2029", "\x00\x1b[0m", ""],
)
def test_text_cannot_break_the_sse_framing(text: str) -> None:
    frame = sse_event({"content": text})
    assert frame.count(b"\n\n") == 1
    assert frame_json(frame) == {"content": text}


def test_lone_surrogate_from_a_cli_does_not_break_the_stream() -> None:
    frame = sse_event({"content": "ok \ud83d"})
    assert frame_json(frame) == {"content": "ok \ud83d"}


def test_json_body_is_utf8_and_survives_a_lone_surrogate() -> None:
    assert json_bytes({"t": MULTILINGUAL}) == ('{"t":"' + MULTILINGUAL + '"}').encode()
    assert json.loads(json_bytes({"t": "x\udc80"})) == {"t": "x\udc80"}


def test_done_frame() -> None:
    assert SSE_DONE == b"data: [DONE]\n\n"


def test_sse_error_is_the_error_envelope() -> None:
    error = ProxyError("cli_failed", "The CLI failed: 😀")
    assert frame_json(sse_error(error)) == error.body()


# -- StopSequenceFilter -----------------------------------------------------------------------


def run_filter(stops: tuple[str, ...], pieces: list[str]) -> str:
    stop_filter = StopSequenceFilter(stops)
    out = "".join(stop_filter.feed(p) for p in pieces)
    return out + stop_filter.flush()


def reference_cut(text: str, stops: tuple[str, ...]) -> str:
    """Where a model that checks after every character would stop."""
    for end in range(len(text) + 1):
        starts = [end - len(s) for s in stops if end >= len(s) and text[end - len(s) : end] == s]
        if starts:
            return text[: min(starts)]
    return text


def splits(text: str, parts: int) -> list[list[str]]:
    result = []
    for cuts in itertools.combinations(range(1, len(text)), parts - 1):
        bounds = [0, *cuts, len(text)]
        result.append([text[a:b] for a, b in itertools.pairwise(bounds)])
    return result


def test_without_stops_text_passes_through_at_once() -> None:
    stop_filter = StopSequenceFilter(())
    assert stop_filter.feed("Hello") == "Hello"
    assert stop_filter.feed("") == ""
    assert stop_filter.flush() == ""
    assert stop_filter.stopped is False


def test_stop_inside_one_delta() -> None:
    stop_filter = StopSequenceFilter(("END",))
    assert stop_filter.feed("Hello END world") == "Hello "
    assert stop_filter.stopped is True
    assert stop_filter.feed("more") == ""
    assert stop_filter.flush() == ""


def test_stop_at_the_very_start_gives_nothing() -> None:
    stop_filter = StopSequenceFilter(("Hi",))
    assert stop_filter.feed("Hi there") == ""
    assert stop_filter.stopped is True


@pytest.mark.parametrize("text", ["Hello END world", "ENDgame", "xxEN", "the end", "E", ""])
def test_stop_split_across_two_deltas_at_every_position(text: str) -> None:
    expected = reference_cut(text, ("END",))
    for pieces in splits(text, 2) or [[text]]:
        assert run_filter(("END",), pieces) == expected, pieces


def test_stop_split_across_three_deltas_at_every_position() -> None:
    text = "one two <|stop|> three"
    for pieces in splits(text, 3):
        assert run_filter(("<|stop|>",), pieces) == "one two ", pieces


def test_stop_fed_one_character_at_a_time() -> None:
    assert run_filter(("\n\n",), list("para one\n\npara two")) == "para one"


@pytest.mark.parametrize(
    ("text", "stops"),
    [
        ("안녕하세요 그만 다음", ("그만",)),
        ("你好世界停止吧", ("停止",)),
        ("fine 😀👍 stop", ("👍",)),
        ("a 😀 b", ("😀 b", "nope")),
    ],
)
def test_multibyte_stop_sequences(text: str, stops: tuple[str, ...]) -> None:
    expected = reference_cut(text, stops)
    assert expected != text
    for pieces in splits(text, 2):
        assert run_filter(stops, pieces) == expected


def test_holdback_never_drops_text_when_no_stop_matches() -> None:
    text = "ENEN E EN ENDEN"[:-3] + MULTILINGUAL + "EN"
    for pieces in splits(text, 2):
        assert run_filter(("END",), pieces) == text
    assert run_filter(("END", "a much longer stop"), list(text)) == text


def test_holdback_keeps_only_a_possible_stop_prefix() -> None:
    stop_filter = StopSequenceFilter(("STOP",))
    assert stop_filter.feed("abcdef") == "abc"
    assert stop_filter.feed("S") == "d"
    assert stop_filter.flush() == "efS"
    assert stop_filter.stopped is False


def test_flush_after_no_stop_returns_the_held_text() -> None:
    stop_filter = StopSequenceFilter(("\n\n",))
    assert stop_filter.feed("end\n") == "end"
    assert stop_filter.flush() == "\n"
    assert stop_filter.flush() == ""


def test_multiple_stops_the_earliest_in_the_text_wins_whatever_their_order() -> None:
    assert run_filter(("late", "early"), ["an early and a late one"]) == "an "
    assert run_filter(("early", "late"), ["an early and a late one"]) == "an "
    assert run_filter(("late", "early"), list("an early and a late one")) == "an "


def test_a_stop_that_is_a_prefix_of_another() -> None:
    assert run_filter(("ab", "abc"), ["xabcx"]) == "x"
    assert run_filter(("abc", "ab"), list("xabcx")) == "x"


@pytest.mark.parametrize(
    ("text", "stops"),
    [
        ("xabcdy", ("abcd", "c")),
        ("xabcdy", ("c", "abcd")),
        ("xabcdy", ("bc", "abcd")),
        ("one two three", ("two three", "o t")),
        ("aaaa", ("aaa", "aa")),
    ],
)
def test_overlapping_stops_cut_the_same_however_the_text_is_split(
    text: str, stops: tuple[str, ...]
) -> None:
    expected = reference_cut(text, stops)
    assert run_filter(stops, [text]) == expected
    assert run_filter(stops, list(text)) == expected
    for pieces in splits(text, 2) + splits(text, 3):
        assert run_filter(stops, pieces) == expected, pieces


def test_random_texts_and_splits_match_the_reference() -> None:
    rng = random.Random(20251122)
    alphabet = "ab한😀\n"
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        stops = tuple(
            "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
            for _ in range(rng.randint(1, 4))
        )
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(0, 4))))
        bounds = [0, *cuts, len(text)]
        pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
        assert run_filter(stops, pieces) == reference_cut(text, stops), (text, stops, pieces)


def test_a_completion_with_tool_calls_has_null_content_and_the_calls() -> None:
    identity = CompletionIdentity(model="m")
    call = ToolCallEvent("toolu_1", "get_weather", '{"city": "Paris"}')
    body = identity.completion("", "tool_calls", None, (call,))
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        }
    ]
    # Text beside the calls is kept.
    with_text = identity.completion("Checking.", "tool_calls", None, (call,))
    assert with_text["choices"][0]["message"]["content"] == "Checking."


def test_a_tool_call_delta_carries_its_index() -> None:
    delta = tool_call_body(ToolCallEvent("c2", "f", "{}"), 1)
    function = {"name": "f", "arguments": "{}"}
    assert delta == {"index": 1, "id": "c2", "type": "function", "function": function}
