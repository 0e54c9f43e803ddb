"""The only module that talks to the server, through the official ``openai`` SDK."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import openai
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionMessageParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionUserMessageParam,
)

from chat_client.config import ChatConfig
from chat_client.conversation import Message
from chat_client.errors import IncompleteAnswerError

# Connecting is quick or hopeless; an answer may take minutes before its first word.
# The read limit outlasts the server's own REQUEST_TIMEOUT (300 s by default), so its
# clearer timeout error arrives first.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 330.0

TextSink = Callable[[str], None]


class ChatAPI(Protocol):
    """What the REPL needs from a server; the tests' fakes implement it too."""

    def answer(self, model: str | None, messages: Sequence[Message], on_text: TextSink) -> str:
        """Ask for the next assistant message, handing each piece to ``on_text`` as it
        arrives; returns the whole text. Raises the SDK's errors, IncompleteAnswerError,
        and KeyboardInterrupt after closing the request."""
        ...

    def model_ids(self) -> list[str]: ...


def to_sdk_message(message: Message) -> ChatCompletionMessageParam:
    if message.role == "system":
        return ChatCompletionSystemMessageParam(role="system", content=message.content)
    if message.role == "assistant":
        return ChatCompletionAssistantMessageParam(role="assistant", content=message.content)
    return ChatCompletionUserMessageParam(role="user", content=message.content)


def build_client(config: ChatConfig) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=config.api_base,
        api_key=config.effective_api_key,
        # A retry would hide a down server or a bad key behind seconds of silence.
        max_retries=0,
        timeout=openai.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
    )


class OpenAIChat:
    def __init__(self, client: openai.OpenAI, *, stream: bool = True) -> None:
        self._client = client
        self._stream = stream

    def answer(self, model: str | None, messages: Sequence[Message], on_text: TextSink) -> str:
        # "" asks the proxy for its default model (the SDK insists on some string).
        sdk_messages = [to_sdk_message(m) for m in messages]
        if not self._stream:
            completion = self._client.chat.completions.create(
                model=model or "", messages=sdk_messages
            )
            text = (completion.choices[0].message.content or "") if completion.choices else ""
            on_text(text)
            return text
        parts: list[str] = []
        finished = False
        # Leaving the with-block (also by Ctrl-C) closes the response, and with it the
        # connection: the server sees the client go and stops the CLI.
        with self._client.chat.completions.create(
            model=model or "", messages=sdk_messages, stream=True
        ) as stream:
            for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        parts.append(choice.delta.content)
                        on_text(choice.delta.content)
                    if choice.finish_reason is not None:
                        finished = True
        if not finished:
            raise IncompleteAnswerError("the stream ended before the answer was finished.")
        return "".join(parts)

    def model_ids(self) -> list[str]:
        return [model.id for model in self._client.models.list()]
