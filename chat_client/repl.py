"""The chat loop: read a line, run a command or ask the model, show the result.

``Repl`` touches neither the network nor the terminal itself: it is given a ChatAPI,
a LineReader and a Console, so tests can drive it with fakes; ``main`` wires the real
ones.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import openai

from chat_client.api import ChatAPI, OpenAIChat, build_client
from chat_client.commands import BadCommand, Blank, Command, UserText, help_text, parse_line
from chat_client.config import ChatConfig, resolve_config
from chat_client.conversation import Conversation, Message
from chat_client.errors import IncompleteAnswerError, describe_error
from chat_client.models import server_default, unknown_model_message
from chat_client.terminal import (
    Console,
    LineReader,
    PlainReader,
    PromptReader,
    history_for,
    home_directory,
)

# What a failed request can raise. ValueError covers a body that is not JSON, from a
# server that is not quite OpenAI-compatible; anything else is our bug and should
# show as one.
REQUEST_ERRORS = (openai.OpenAIError, IncompleteAnswerError, ValueError)

DEFAULT_MODEL_LABEL = "the server's default"
ROLE_LABELS = {"system": "system", "user": "you", "assistant": "assistant"}


def format_message(message: Message) -> str:
    label = ROLE_LABELS[message.role]
    first, *rest = message.content.split("\n")
    indent = " " * (len(label) + 2)
    return "\n".join([f"{label}: {first}", *(indent + line for line in rest)])


class Repl:
    def __init__(self, config: ChatConfig, api: ChatAPI, console: Console) -> None:
        self.api = api
        self.console = console
        self.server = config.api_base
        self.model = config.model  # the user's choice; None: the server's default
        # The server's default model, once /v1/models has been read (it lists it first).
        self.server_default: str | None = None
        self.conversation = Conversation(config.system)

    @property
    def prompt(self) -> str:
        return f"{self.model or self.server_default or 'default'}> "

    @property
    def model_label(self) -> str:
        if self.model:
            return self.model
        if self.server_default:
            return f"{self.server_default} ({DEFAULT_MODEL_LABEL})"
        return DEFAULT_MODEL_LABEL

    def learn_models(self) -> list[str]:
        """The server's model ids; remembers its default. Raises what the request raises."""
        ids = self.api.model_ids()
        self.server_default = server_default(ids)
        return ids

    def greet(self) -> None:
        """For a terminal: learn the model names the prompt shows, then the banner. A
        server that cannot answer yet is no reason to stop: its error comes with the first
        question."""
        try:
            ids = self.learn_models()
        except REQUEST_ERRORS:
            ids = []
        self.console.line(self.banner())
        if self.model and ids and self.model not in ids:
            self.console.note(unknown_model_message(self.model, ids))

    def banner(self) -> str:
        return (
            f"copilot-chat: {self.server}, model {self.model_label}. "
            "Type /help for commands, Ctrl-D to leave."
        )

    def run(self, reader: LineReader) -> int:
        while True:
            try:
                line = reader.read_line(self.prompt)
            except KeyboardInterrupt:
                continue  # Ctrl-C at the prompt only throws the typed line away
            except EOFError:
                self.console.end_line()
                return 0
            try:
                if not self.handle_line(line):
                    return 0
            except KeyboardInterrupt:
                # A Ctrl-C outside an answer (during /models, or a second one while
                # the first was handled) must not end the chat either.
                self.console.end_line()

    def handle_line(self, line: str) -> bool:
        """Act on one typed line; False when the user asked to leave."""
        parsed = parse_line(line)
        if isinstance(parsed, Blank):
            return True
        if isinstance(parsed, BadCommand):
            self.console.error(parsed.message)
            return True
        if isinstance(parsed, UserText):
            self.ask(parsed.text)
            return True
        return self.run_command(parsed)

    def ask(self, text: str) -> None:
        messages = self.conversation.open_turn(text)
        try:
            answer = self.api.answer(self.model, messages, self.console.write)
        except KeyboardInterrupt:
            self.conversation.drop_turn()
            self.console.note("[answer interrupted; this turn was not kept]")
            return
        except REQUEST_ERRORS as error:
            self.conversation.drop_turn()
            self.console.error(describe_error(error, self.server))
            return
        self.conversation.commit_turn(answer)
        self.console.end_line()

    def run_command(self, command: Command) -> bool:
        name, argument = command.name, command.argument
        if name in ("quit", "exit"):
            return False
        if name == "help":
            self.console.line(help_text())
        elif name == "model":
            self.switch_model(argument)
        elif name == "models":
            self.list_models()
        elif name == "system":
            self.set_system(argument)
        elif name == "clear":
            self.conversation.clear()
            self.console.note("New conversation (the system prompt is kept).")
        elif name == "history":
            self.show_history()
        return True

    def switch_model(self, name: str) -> None:
        if not name:
            self.console.line(f"Model: {self.model_label}")
            return
        try:
            ids = self.learn_models()
        except REQUEST_ERRORS as error:
            # A server without /v1/models can still answer: let the user go on.
            self.model = name
            self.console.note(
                f"Model set to {name}, unchecked: {describe_error(error, self.server)}"
            )
            return
        if ids and name not in ids:
            self.console.error(unknown_model_message(name, ids))
            return
        self.model = name
        self.console.note(f"Model set to {name} for the next questions.")

    def list_models(self) -> None:
        try:
            ids = self.learn_models()
        except REQUEST_ERRORS as error:
            self.console.error(describe_error(error, self.server))
            return
        if not ids:
            self.console.line("The server lists no models.")
        current = self.model or self.server_default
        for model_id in ids:
            self.console.line(f"{'*' if model_id == current else ' '} {model_id}")
        if self.model is None and self.server_default:
            self.console.note(
                f"{self.server_default} is the server's default. /model NAME picks another."
            )
        elif self.model is not None and self.model not in ids:
            self.console.note(f"The current model {self.model} is not in this list.")

    def set_system(self, prompt: str) -> None:
        if not prompt:
            current = self.conversation.system
            self.console.line(f"System prompt: {current}" if current else "No system prompt.")
            return
        self.conversation.set_system(prompt)
        self.console.note("System prompt set; new conversation.")

    def show_history(self) -> None:
        messages = self.conversation.messages
        if not messages:
            self.console.line("The conversation is empty.")
        for message in messages:
            self.console.line(format_message(message))


def main(argv: Sequence[str] | None = None) -> int:
    config = resolve_config(argv, os.environ)
    console = Console.for_process(os.environ)
    repl = Repl(config, OpenAIChat(build_client(config), stream=config.stream), console)
    reader: LineReader
    if sys.stdin.isatty():
        reader = PromptReader(history_for(home_directory()))
        repl.greet()
    else:
        reader = PlainReader(sys.stdin)
    return repl.run(reader)
