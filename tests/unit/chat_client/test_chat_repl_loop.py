"""The chat loop driven with a fake server and scripted input: no terminal, no network."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence

import openai
import pytest

from chat_client.api import TextSink
from chat_client.config import ChatConfig
from chat_client.conversation import Message
from chat_client.repl import Repl, format_message
from chat_client.terminal import Console

try:  # openai >= 3 speaks httpx2; older releases speak httpx. Build what the SDK uses.
    import httpx2 as http
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx as http  # type: ignore[no-redef]

REQUEST = http.Request("POST", "http://h/v1/chat/completions")

Step = str | type[BaseException]


class ScriptedReader:
    """Returns the scripted lines; an exception class in the script is raised instead."""

    def __init__(self, steps: Iterable[Step]) -> None:
        self.steps = list(steps)
        self.prompts: list[str] = []

    def read_line(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.steps:
            raise EOFError
        step = self.steps.pop(0)
        if isinstance(step, str):
            return step
        raise step()


Behaviour = Callable[[str | None, Sequence[Message], TextSink], str]


def echo(model: str | None, messages: Sequence[Message], on_text: TextSink) -> str:
    text = f"[{model}] {messages[-1].content}"
    for piece in text.split(" "):
        on_text(piece + " ")
    return text


class FakeAPI:
    def __init__(self, models: list[str] | None = None) -> None:
        self.models = models or ["m1", "m2"]
        self.behaviours: list[Behaviour] = []
        self.sent: list[tuple[str | None, tuple[Message, ...]]] = []
        self.models_error: BaseException | None = None

    def answer(self, model: str | None, messages: Sequence[Message], on_text: TextSink) -> str:
        self.sent.append((model, tuple(messages)))
        behaviour = self.behaviours.pop(0) if self.behaviours else echo
        return behaviour(model, messages, on_text)

    def model_ids(self) -> list[str]:
        if self.models_error is not None:
            raise self.models_error
        return list(self.models)


class Harness:
    def __init__(self, config: ChatConfig | None = None) -> None:
        self.out = io.StringIO()
        self.err = io.StringIO()
        self.api = FakeAPI()
        self.repl = Repl(config or ChatConfig(model="m1"), self.api, Console(self.out, self.err))

    def run(self, *steps: Step) -> int:
        return self.repl.run(ScriptedReader(steps))


def not_found(model: str | None, messages: Sequence[Message], on_text: TextSink) -> str:
    response = http.Response(404, request=REQUEST)
    body = {"message": f"The model {model!r} does not exist. Available models: m1, m2."}
    raise openai.NotFoundError("Error code: 404", response=response, body=body)


def interrupted(model: str | None, messages: Sequence[Message], on_text: TextSink) -> str:
    on_text("partial ")
    raise KeyboardInterrupt


def midway_error(model: str | None, messages: Sequence[Message], on_text: TextSink) -> str:
    on_text("partial")
    raise openai.APIError("boom", REQUEST, body={"message": "The CLI crashed.", "code": "x"})


def test_question_is_answered_and_kept() -> None:
    h = Harness()
    assert h.run("hello") == 0
    assert h.out.getvalue() == "[m1] hello \n"
    assert h.repl.conversation.messages == (
        Message("user", "hello"),
        Message("assistant", "[m1] hello"),
    )


def test_eof_leaves_with_zero_and_quit_and_exit_too() -> None:
    assert Harness().run() == 0
    h = Harness()
    assert h.run("/quit", "never read") == 0
    assert h.api.sent == []
    assert Harness().run("/EXIT") == 0


def test_ctrl_c_at_the_prompt_only_clears_the_line() -> None:
    h = Harness()
    assert h.run(KeyboardInterrupt, "hello") == 0
    assert len(h.api.sent) == 1


def test_ctrl_c_during_an_answer_drops_the_turn_and_keeps_going() -> None:
    h = Harness()
    h.api.behaviours = [echo, interrupted]
    assert h.run("first", "second", "third") == 0
    assert "partial \n[answer interrupted; this turn was not kept]\n" in h.out.getvalue()
    # "second" is gone: the third question follows the first answer directly.
    assert [m.content for m in h.api.sent[-1][1]] == ["first", "[m1] first", "third"]


def test_failed_turn_is_removed_and_the_error_is_one_line_on_stderr() -> None:
    # --model is not checked before the first question: the server's 404 tells.
    h = Harness(ChatConfig(model="nope"))
    h.api.behaviours = [not_found]
    assert h.run("hi", "/model m2", "hi") == 0
    err_lines = h.err.getvalue().splitlines()
    assert err_lines == [
        "error: Not found (404): The model 'nope' does not exist. "
        "Available models: m1, m2. See /models."
    ]
    assert h.api.sent[-1] == ("m2", (Message("user", "hi"),))


def test_error_midway_ends_the_partial_line_first() -> None:
    h = Harness()
    h.api.behaviours = [midway_error]
    h.run("hi")
    assert h.out.getvalue() == "partial\n"
    assert h.err.getvalue() == "error: The answer failed midway [x]: The CLI crashed.\n"
    assert h.repl.conversation.messages == ()


def test_model_command_shows_and_switches() -> None:
    h = Harness(ChatConfig())
    reader = ScriptedReader(["/model", "/model m2", "/model"])
    h.repl.run(reader)
    out = h.out.getvalue()
    assert "Model: the server's default" in out
    assert "Model set to m2" in out
    assert out.rstrip().endswith("Model: m2")
    assert reader.prompts[:3] == ["default> ", "default> ", "m2> "]


def test_models_marks_the_current_one() -> None:
    h = Harness()
    h.run("/models")
    assert h.out.getvalue() == "* m1\n  m2\n"


def test_models_marks_the_servers_default_when_none_was_chosen() -> None:
    # Regression: with the server's default in use, /models marked no model as current.
    h = Harness(ChatConfig())
    h.run("/models")
    assert h.out.getvalue() == (
        "* m1\n  m2\nm1 is the server's default. /model NAME picks another.\n"
    )


def test_model_command_checks_the_name_and_offers_close_matches() -> None:
    h = Harness(ChatConfig())
    h.api.models = ["gpt-5-mini", "gpt-5", "claude-sonnet-4.5", "claude-haiku-4.5"]
    reader = ScriptedReader(["/model gpt5-mini", "/model Sonnet", "/model zzz", "hi"])
    h.repl.run(reader)
    assert h.err.getvalue().splitlines() == [
        "error: The server has no model gpt5-mini. Did you mean: gpt-5-mini?",
        "error: The server has no model Sonnet. Did you mean: claude-sonnet-4.5?",
        "error: The server has no model zzz; /models lists its 4.",
    ]
    # Refused names change nothing: the question goes to the server's default.
    assert h.repl.model is None and h.api.sent[-1][0] is None
    # The lists taught the chat the server's default: the prompt names it.
    assert reader.prompts[-1] == "gpt-5-mini> "


def test_model_command_switches_unchecked_when_the_server_cannot_list() -> None:
    h = Harness(ChatConfig())
    h.api.models_error = openai.APIConnectionError(request=REQUEST)
    h.run("/model m9", "hi")
    assert "Model set to m9, unchecked: Cannot reach the server at " in h.out.getvalue()
    assert h.api.sent[-1][0] == "m9"


def test_greet_names_the_servers_default_in_banner_and_prompt() -> None:
    # Regression: the prompt said "default>" instead of the model's name.
    h = Harness(ChatConfig())
    h.repl.greet()
    assert "model m1 (the server's default)." in h.out.getvalue()
    assert h.repl.prompt == "m1> "
    assert h.api.sent == []  # a look at /v1/models, no chat request


def test_greet_without_a_server_still_starts() -> None:
    h = Harness(ChatConfig())
    h.api.models_error = openai.APIConnectionError(request=REQUEST)
    h.repl.greet()
    assert "model the server's default." in h.out.getvalue()
    assert h.repl.prompt == "default> " and h.err.getvalue() == ""


def test_greet_warns_about_a_chosen_model_the_server_lacks() -> None:
    h = Harness(ChatConfig(model="m-1"))
    h.repl.greet()
    assert h.out.getvalue().splitlines()[1] == "The server has no model m-1. Did you mean: m1?"
    assert h.repl.prompt == "m-1> "  # the server's 404 will say more at the first question


def test_models_notes_a_current_model_the_server_does_not_list() -> None:
    h = Harness(ChatConfig(model="other"))
    h.run("/models")
    assert "The current model other is not in this list." in h.out.getvalue()


def test_models_error_is_reported_and_the_loop_goes_on() -> None:
    h = Harness()
    h.api.models_error = openai.APIConnectionError(request=REQUEST)
    assert h.run("/models", "hi") == 0
    assert h.err.getvalue().startswith("error: Cannot reach the server at http://127.0.0.1:3456/v1")
    assert len(h.api.sent) == 1


def test_ctrl_c_during_a_command_does_not_leave() -> None:
    h = Harness()
    h.api.models_error = KeyboardInterrupt()
    assert h.run("/models", "hi") == 0
    assert len(h.api.sent) == 1


def test_system_sets_the_prompt_and_resets() -> None:
    h = Harness(ChatConfig(model="m1", system="old"))
    h.run("q1", "/system", "/system Be terse.", "/system", "q2")
    out = h.out.getvalue()
    assert "System prompt: old" in out
    assert "System prompt set; new conversation." in out
    assert "System prompt: Be terse." in out
    assert h.api.sent[-1][1] == (Message("system", "Be terse."), Message("user", "q2"))


def test_clear_keeps_the_system_prompt() -> None:
    h = Harness(ChatConfig(model="m1", system="sys"))
    h.run("q1", "/clear", "q2")
    assert h.api.sent[-1][1] == (Message("system", "sys"), Message("user", "q2"))


def test_history_shows_the_conversation() -> None:
    h = Harness(ChatConfig(model="m1", system="sys"))
    h.run("/history", "q1", "/history")
    out = h.out.getvalue()
    assert out.count("system: sys\n") == 2
    assert "you: q1\nassistant: [m1] q1\n" in out


def test_history_of_an_empty_conversation() -> None:
    h = Harness()
    h.run("/history")
    assert h.out.getvalue() == "The conversation is empty.\n"


def test_unknown_command_is_one_hint_and_nothing_is_sent() -> None:
    h = Harness()
    h.run("/frobnicate", "/")
    lines = h.err.getvalue().splitlines()
    assert len(lines) == 2
    assert all("/help" in line for line in lines)
    assert h.api.sent == []


def test_double_slash_sends_text() -> None:
    h = Harness()
    h.run("//help")
    assert h.api.sent[0][1] == (Message("user", "/help"),)


def test_blank_lines_are_ignored() -> None:
    h = Harness()
    h.run("", "   ")
    assert h.api.sent == []
    assert h.out.getvalue() == h.err.getvalue() == ""


def test_help() -> None:
    h = Harness()
    h.run("/help")
    assert "/models" in h.out.getvalue()


def test_banner_names_server_and_model() -> None:
    banner = Harness(ChatConfig(server_url="http://x:1")).repl.banner()
    assert "http://x:1/v1" in banner and "the server's default" in banner


@pytest.mark.parametrize(
    ("message", "shown"),
    [
        (Message("user", "one line"), "you: one line"),
        (Message("assistant", "a\nb"), "assistant: a\n           b"),
        (Message("system", ""), "system: "),
    ],
)
def test_format_message(message: Message, shown: str) -> None:
    assert format_message(message) == shown
