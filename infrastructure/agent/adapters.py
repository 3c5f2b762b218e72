"""Adapters: each turns one line of an agent's stdout into protocol messages.

`protocol` reads our own protocol, `claude` reads Claude Code's `--output-format stream-json`,
`codex` reads `codex exec --json`, and `text` takes every line as output. An adapter may keep state
for one run (the Claude model named by its init message), so `adapter(name)` returns a fresh object.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

import msgspec

from application import limits
from infrastructure.agent.protocol import (
    MAX_LINE_CHARS,
    Message,
    Output,
    Result,
    Usage,
    decode_message,
    validated,
)

TOOL_TEXT_CHARS = 2_000  # a tool call's input or a tool's result is cut to this in the output


class Adapter(Protocol):
    def parse(self, line: str) -> list[Message]: ...


class ProtocolAdapter:
    def parse(self, line: str) -> list[Message]:
        return [decode_message(line)]


class TextAdapter:
    def parse(self, line: str) -> list[Message]:
        return [Output(stream="stdout", text=line)]


def _object(line: str) -> dict[str, Any] | None:
    if len(line) > MAX_LINE_CHARS or not line.lstrip().startswith("{"):
        return None
    if limits.too_deep(line.encode()):  # it would blow the stack; any size is fine
        return None
    try:
        value = msgspec.json.decode(line)
    except msgspec.DecodeError:
        return None
    return value if isinstance(value, dict) else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _cut(text: str, limit: int = TOOL_TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more chars]"


def _out(text: str) -> Output:
    return Output(stream="stdout", text=text)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class ClaudeAdapter:
    """Claude Code `claude -p ... --output-format stream-json --verbose`.

    Messages (Claude Code headless mode and the Agent SDK's SDKMessage types): `system` (subtype
    `init` names the model), `assistant` and `user` (an Anthropic message whose `content` holds
    `text`, `tool_use`, `tool_result` and `thinking` blocks), and the final `result` (`result`,
    `is_error`, `subtype`, `total_cost_usd`, `usage` with input, output and cache tokens).
    """

    def __init__(self) -> None:
        self.model: str | None = None

    def parse(self, line: str) -> list[Message]:
        event = _object(line)
        if event is None:
            return [_out(line)]
        kind = event.get("type")
        if kind == "system":
            return self._system(event)
        if kind in ("assistant", "user"):
            message = _dict(event.get("message"))
            self.model = _str(message.get("model")) or self.model
            return [m for block in _list(message.get("content")) if (m := _block(block))]
        if kind == "result":
            return self._result(event)
        if kind == "stream_event":  # partial deltas (--include-partial-messages): the whole
            return []  # message follows as an assistant message
        return [_out(line)]

    def _system(self, event: dict[str, Any]) -> list[Message]:
        if event.get("subtype") != "init":
            return []
        self.model = _str(event.get("model")) or self.model
        return [_out(f"[claude] session {event.get('session_id')} started, model {self.model}")]

    def _result(self, event: dict[str, Any]) -> list[Message]:
        usage = _dict(event.get("usage"))
        cost = event.get("total_cost_usd")
        spent = validated(
            Usage,
            {
                "model": self.model,
                "provider": "anthropic",
                "input_tokens": _int(usage.get("input_tokens")),
                "output_tokens": _int(usage.get("output_tokens")),
                "cache_read_tokens": _int(usage.get("cache_read_input_tokens")),
                "cache_write_tokens": _int(usage.get("cache_creation_input_tokens")),
                "requests": max(_int(event.get("num_turns")), 1),
                "cost_usd": cost if isinstance(cost, int | float) and cost >= 0 else None,
            },
        )
        keys = ("subtype", "is_error", "num_turns", "duration_ms", "session_id", "stop_reason")
        summary = _str(event.get("result"))
        result = validated(
            Result, {"summary": summary, "data": {k: event[k] for k in keys if k in event}}
        ) or validated(Result, {"data": {k: event[k] for k in keys if k in event}})
        messages: list[Message] = [m for m in (spent, result) if m is not None]
        if summary and result is not None and result.summary is None:
            messages.insert(0, _out(summary))  # too long for a summary: keep it as output
        return messages


def _block(block: Any) -> Message | None:
    block = _dict(block)
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return _out(block["text"])
    if kind == "tool_use":
        return _out(f"[tool] {block.get('name')} {_cut(_compact(block.get('input')))}")
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            texts = (_str(_dict(part).get("text")) for part in content)
            content = "\n".join(text for text in texts if text)
        label = "[tool error]" if block.get("is_error") else "[tool result]"
        return _out(f"{label} {_cut(content if isinstance(content, str) else _compact(content))}")
    return None


class CodexAdapter:
    """Codex `codex exec --json` (openai/codex, codex-rs/exec/src/exec_events.rs).

    Events: `thread.started`, `turn.started`, `turn.completed` (`usage`: input_tokens,
    cached_input_tokens, output_tokens), `turn.failed` (`error.message`), `item.started`,
    `item.updated`, `item.completed` (an `item` of type agent_message, reasoning,
    command_execution, file_change, mcp_tool_call, web_search, todo_list or error) and `error`.
    The last agent message of a completed turn is its result summary.
    """

    def __init__(self) -> None:
        self.last_message: str | None = None

    def parse(self, line: str) -> list[Message]:
        event = _object(line)
        if event is None:
            return [_out(line)]
        kind = event.get("type")
        if kind in ("thread.started", "turn.started", "item.updated"):
            return []
        if kind == "item.started":
            item = _dict(event.get("item"))
            if item.get("type") == "command_execution":
                return [_out(f"$ {item.get('command')}")]
            return []
        if kind == "item.completed":
            return self._item(_dict(event.get("item")))
        if kind == "turn.completed":
            return self._turn_completed(_dict(event.get("usage")))
        if kind == "turn.failed":
            return [_out(f"[codex] turn failed: {_dict(event.get('error')).get('message')}")]
        if kind == "error":
            return [_out(f"[codex] error: {event.get('message')}")]
        return [_out(line)]

    def _item(self, item: dict[str, Any]) -> list[Message]:
        render = _ITEMS.get(str(item.get("type")))
        if render is None:
            return [_out(f"[codex] {item.get('type')} {_cut(_compact(item))}")]
        if item.get("type") == "agent_message":
            self.last_message = _str(item.get("text")) or self.last_message
        return [_out(text) for text in render(item)]

    def _turn_completed(self, usage: dict[str, Any]) -> list[Message]:
        # OpenAI counts cached tokens inside input_tokens; ours are the uncached ones, as Claude's
        cached = _int(usage.get("cached_input_tokens"))
        spent = validated(
            Usage,
            {
                "provider": "openai",
                "input_tokens": max(_int(usage.get("input_tokens")) - cached, 0),
                "output_tokens": _int(usage.get("output_tokens")),
                "cache_read_tokens": cached,
                "reasoning_tokens": _reasoning(usage),
            },
        )
        result = validated(Result, {"summary": self.last_message}) or validated(Result, {})
        return [m for m in (spent, result) if m is not None]


def _reasoning(usage: dict[str, Any]) -> int | None:
    """Codex's reasoning tokens (inside its output tokens), when its version reports them."""
    value = usage.get("reasoning_output_tokens")
    return _int(value) if isinstance(value, int) else None


def _command(item: dict[str, Any]) -> list[str]:
    output = _str(item.get("aggregated_output")) or ""
    lines = [f"$ {item.get('command')} (exit {item.get('exit_code')}, {item.get('status')})"]
    return [*lines, _cut(output.rstrip("\n"), 20_000)] if output else lines


def _file_change(item: dict[str, Any]) -> list[str]:
    changes = [_dict(change) for change in _list(item.get("changes"))]
    return [f"[edit] {change.get('kind')} {change.get('path')}" for change in changes]


def _todo_list(item: dict[str, Any]) -> list[str]:
    todos = [_dict(todo) for todo in _list(item.get("items"))]
    return [f"[{'x' if todo.get('completed') else ' '}] {todo.get('text')}" for todo in todos]


_ITEMS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "agent_message": lambda item: [str(item.get("text", ""))],
    "reasoning": lambda item: [f"[reasoning] {item.get('text', '')}"],
    "command_execution": _command,
    "file_change": _file_change,
    "mcp_tool_call": lambda item: [
        f"[tool] {item.get('server')}.{item.get('tool')} {item.get('status')}"
    ],
    "web_search": lambda item: [f"[search] {item.get('query')}"],
    "todo_list": _todo_list,
    "error": lambda item: [f"[codex] error: {item.get('message')}"],
}

ADAPTERS: dict[str, Callable[[], Adapter]] = {
    "protocol": ProtocolAdapter,
    "claude": ClaudeAdapter,
    "codex": CodexAdapter,
    "text": TextAdapter,
}


def adapter(name: str) -> Adapter:
    """A fresh adapter for one run; ValueError for an unknown name."""
    try:
        return ADAPTERS[name]()
    except KeyError:
        raise ValueError(f"unknown adapter {name!r}; known: {', '.join(ADAPTERS)}") from None
