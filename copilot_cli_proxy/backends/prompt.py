"""Turn OpenAI messages into what a CLI takes: system text (a file) and one prompt.

A CLI run is one turn, so the conversation is flattened: prior turns in order, each
under a clear role label, the last message last. A lone user message is passed as
it is, so a simple question reaches the model exactly as the client wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass

from copilot_cli_proxy.core.request import Message

TRANSCRIPT_INTRO = (
    "Below is a conversation between a user and you, the assistant, oldest message first. "
    "Reply to the last message as the assistant. Reply with the answer only, "
    "without a role label."
)


@dataclass(frozen=True, slots=True)
class CliPrompt:
    system: str
    prompt: str


def _label(message: Message, tool_names: dict[str, str]) -> str:
    if message.role == "tool":
        # Tied to its call by id and by the tool's name, as the call was shown.
        call_id = message.tool_call_id
        name = tool_names.get(call_id or "") or message.name
        ref = (f" of tool {name}" if name else "") + (f" (id {call_id})" if call_id else "")
        return f"[tool result{ref}]"
    if message.name:
        return f"[{message.role} ({message.name})]"
    return f"[{message.role}]"


def message_text(message: Message) -> str:
    """A message as text: its content, then the tool calls it made, one line each."""
    calls = [
        f"[called tool {call.name} (id {call.id}) with arguments: {call.arguments}]"
        for call in message.tool_calls
    ]
    return "\n".join(part for part in (message.content, *calls) if part)


def build_cli_prompt(messages: tuple[Message, ...]) -> CliPrompt:
    system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content.strip())
    turns = [m for m in messages if m.role != "system"]
    if len(turns) == 1 and turns[0].role == "user" and not turns[0].name:
        return CliPrompt(system=system, prompt=turns[0].content)
    tool_names = {call.id: call.name for m in turns for call in m.tool_calls}
    blocks = [TRANSCRIPT_INTRO]
    blocks.extend(f"{_label(m, tool_names)}\n{message_text(m)}" for m in turns)
    return CliPrompt(system=system, prompt="\n\n".join(blocks))
