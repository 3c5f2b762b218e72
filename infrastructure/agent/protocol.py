"""The agent protocol: JSON lines an agent writes on stdout, and the replies it reads on stdin.

Every agent line is decoded into one of the frozen Structs below. Agents may add fields of their
own (unknown fields are ignored), but every known field is bounded: a line that is not JSON, names
an unknown type, breaks a bound or is longer than MAX_LINE_CHARS becomes plain `Output`, never an
error.
See docs/agent-protocol.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec

from application import limits

MAX_LINE_CHARS = 1_048_576  # a longer line is output, whatever it looks like
SHORT = 200  # ids, names, models
MEDIUM = 2_000  # messages, actions, reasons, URLs
LONG = 10_000  # questions, descriptions, summaries, answers
CONTENT = 100_000  # experience content
MAX_ITEMS = 50  # options and tags

Short = Annotated[str, msgspec.Meta(max_length=SHORT)]
Medium = Annotated[str, msgspec.Meta(max_length=MEDIUM)]
Long = Annotated[str, msgspec.Meta(max_length=LONG)]
Count = Annotated[int, msgspec.Meta(ge=0)]
Percentage = Annotated[float, msgspec.Meta(ge=0, le=100)]
Cost = Annotated[float, msgspec.Meta(ge=0)]


class _AgentMessage(msgspec.Struct, frozen=True, kw_only=True, tag_field="type"):
    """A message an agent writes; unknown fields are ignored."""


class Progress(_AgentMessage, tag="progress", frozen=True):
    percentage: Percentage | None = None
    message: Medium | None = None


class Phase(_AgentMessage, tag="phase", frozen=True):
    name: Short
    status: Literal["started", "completed", "failed", "skipped"] = "started"


class Question(_AgentMessage, tag="question", frozen=True):
    question: Long
    id: Short | None = None
    options: Annotated[tuple[Medium, ...], msgspec.Meta(max_length=MAX_ITEMS)] = ()
    default: Medium | None = None


class Checkpoint(_AgentMessage, tag="checkpoint", frozen=True):
    action: Medium
    id: Short | None = None
    description: Long | None = None
    data: dict[str, Any] = {}


class Experience(_AgentMessage, tag="experience", frozen=True):
    title: Medium
    content: Annotated[str, msgspec.Meta(max_length=CONTENT)]
    tags: Annotated[tuple[Short, ...], msgspec.Meta(max_length=MAX_ITEMS)] = ()


class Usage(_AgentMessage, tag="usage", frozen=True):
    """Tokens and cost spent since the previous usage message: usage messages add up.
    ``cost_usd`` is what the agent says it cost (kept as reported; the service computes its own
    from the team's price table); ``cache_creation_tokens`` is the older name of
    ``cache_write_tokens`` (the two add up: an agent sends one of them)."""

    model: Short | None = None
    provider: Short | None = None
    input_tokens: Count = 0
    output_tokens: Count = 0
    cache_read_tokens: Count = 0
    cache_write_tokens: Count = 0
    cache_creation_tokens: Count = 0
    reasoning_tokens: Count | None = None
    requests: Annotated[int, msgspec.Meta(ge=1)] = 1
    cost_usd: Cost | None = None


class Result(_AgentMessage, tag="result", frozen=True):
    summary: Long | None = None
    pr_url: Medium | None = None
    data: dict[str, Any] = {}


class Say(_AgentMessage, tag="say", frozen=True):
    """Decoded only: a say line is delivered as `Output` on stdout."""

    text: str


class Output(msgspec.Struct, frozen=True, kw_only=True, tag="output", tag_field="type"):
    """A line of the agent's output (one not carrying a protocol message), without its newline."""

    stream: Literal["stdout", "stderr"]
    text: str


Message = Progress | Phase | Question | Checkpoint | Experience | Usage | Result | Output
AgentMessage = Progress | Phase | Question | Checkpoint | Experience | Usage | Result


class Answer(msgspec.Struct, frozen=True, kw_only=True, tag="answer", tag_field="type"):
    question_id: str | None
    response: str


class Decision(msgspec.Struct, frozen=True, kw_only=True, tag="decision", tag_field="type"):
    checkpoint_id: str | None
    approved: bool
    reason: str | None = None


class CancelNotice(msgspec.Struct, frozen=True, kw_only=True, tag="cancel", tag_field="type"):
    reason: str | None = None


class Notice(msgspec.Struct, frozen=True, kw_only=True, tag="notice", tag_field="type"):
    """Something the agent should know; it need not act (``kind``: ``budget``)."""

    kind: str
    message: str


Reply = Answer | Decision | CancelNotice | Notice
M = TypeVar("M", bound=AgentMessage)

_decoder = msgspec.json.Decoder(AgentMessage | Say)
_reply_decoder = msgspec.json.Decoder(Reply)
_encoder = msgspec.json.Encoder()


def decode_message(line: str, stream: Literal["stdout", "stderr"] = "stdout") -> Message:
    """One line of an agent's stdout as a protocol message, or as plain output."""
    if len(line) <= MAX_LINE_CHARS and line.lstrip().startswith("{"):
        try:  # held to the input limits first: JSON nested too deep would blow the stack
            message = limits.decode(line.encode(), _decoder)
        except (msgspec.ValidationError, limits.BadInputError):
            pass
        else:
            return Output(stream=stream, text=message.text) if isinstance(message, Say) else message
    return Output(stream=stream, text=line)


def validated(kind: type[M], fields: dict[str, Any]) -> M | None:
    """A message built by an adapter, with the bounds checked as if it had been decoded."""
    try:
        return msgspec.convert(fields, kind)
    except msgspec.ValidationError:
        return None


def encode(message: Message | Say | Reply) -> bytes:
    """One message as one JSON line (ending in a newline)."""
    return _encoder.encode(message) + b"\n"


def encode_reply(reply: Reply) -> bytes:
    """An answer, a decision or a cancel notice as one JSON line for the agent's stdin."""
    return encode(reply)


def decode_reply(line: str | bytes) -> Reply | None:
    """A reply line as an agent reads it, or None when it is not one."""
    try:
        return _reply_decoder.decode(line)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
