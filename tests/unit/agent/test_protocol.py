"""The agent protocol: what an agent writes becomes a message or plain output, never an error."""

from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from infrastructure.agent.protocol import (
    MAX_LINE_CHARS,
    Answer,
    CancelNotice,
    Checkpoint,
    Decision,
    Experience,
    Output,
    Phase,
    Progress,
    Question,
    Result,
    Usage,
    decode_message,
    decode_reply,
    encode_reply,
)


def line(**fields: object) -> str:
    return json.dumps(fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            line(type="progress", percentage=40, message="tests"),
            Progress(percentage=40, message="tests"),
        ),
        (line(type="progress", percentage=None), Progress()),
        (
            line(type="phase", name="build", status="completed"),
            Phase(name="build", status="completed"),
        ),
        (
            line(
                type="question",
                id="q1",
                question="Which DB?",
                options=["pg", "sqlite"],
                default="pg",
            ),
            Question(id="q1", question="Which DB?", options=("pg", "sqlite"), default="pg"),
        ),
        (
            line(
                type="checkpoint", id=None, action="deploy", description="to prod", data={"env": 1}
            ),
            Checkpoint(action="deploy", description="to prod", data={"env": 1}),
        ),
        (
            line(type="experience", title="Use uv", content="It is fast", tags=["tooling"]),
            Experience(title="Use uv", content="It is fast", tags=("tooling",)),
        ),
        (
            line(
                type="usage",
                model="m",
                input_tokens=10,
                output_tokens=5,
                cache_read_tokens=3,
                cache_creation_tokens=2,
                cost_usd=0.01,
            ),
            Usage(
                model="m",
                input_tokens=10,
                output_tokens=5,
                cache_read_tokens=3,
                cache_creation_tokens=2,
                cost_usd=0.01,
            ),
        ),
        (
            line(type="result", summary="done", pr_url="https://x/pr/1", data={"k": [1]}),
            Result(summary="done", pr_url="https://x/pr/1", data={"k": [1]}),
        ),
        (line(type="say", text="hello"), Output(stream="stdout", text="hello")),
    ],
)
def test_each_protocol_message_is_decoded_from_its_line(text: str, expected: object) -> None:
    assert decode_message(text) == expected


def test_fields_an_agent_adds_are_ignored() -> None:
    assert decode_message(line(type="phase", name="x", status="started", colour="red")) == Phase(
        name="x"
    )


@pytest.mark.parametrize(
    "text",
    [
        "plain words",
        "",
        "{not json",
        "[1, 2]",
        "42",
        line(type="unknown", text="x"),
        line(text="no type"),
        line(type="output", stream="stdout", text="agents cannot write output messages"),
        line(type="progress", percentage=101),
        line(type="progress", percentage=-1),
        line(type="phase", name="x", status="exploded"),
        line(type="question"),
        line(type="question", question="q" * 10_001),
        line(type="question", question="q", options=["o"] * 51),
        line(type="usage", input_tokens=-5),
        line(type="usage", input_tokens="many"),
        line(type="result", pr_url="u" * 2_001),
    ],
)
def test_a_line_that_is_not_a_valid_message_becomes_plain_output(text: str) -> None:
    assert decode_message(text) == Output(stream="stdout", text=text)


def test_a_valid_message_on_an_oversized_line_is_plain_output() -> None:
    text = json.dumps({"type": "say", "text": "x" * MAX_LINE_CHARS})
    assert decode_message(text) == Output(stream="stdout", text=text)


@given(st.text(max_size=300))
def test_decoding_never_raises(text: str) -> None:
    decode_message(text)
    decode_message("{" + text)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (
            Answer(question_id="q1", response="two\nlines"),
            {"type": "answer", "question_id": "q1", "response": "two\nlines"},
        ),
        (
            Decision(checkpoint_id="c1", approved=False, reason="risky"),
            {"type": "decision", "checkpoint_id": "c1", "approved": False, "reason": "risky"},
        ),
        (CancelNotice(reason="user"), {"type": "cancel", "reason": "user"}),
    ],
)
def test_a_reply_is_one_json_line(reply: object, expected: dict) -> None:
    data = encode_reply(reply)  # type: ignore[arg-type]
    assert data.endswith(b"\n") and data.count(b"\n") == 1
    assert msgspec.json.decode(data) == expected
    assert decode_reply(data) == reply


def test_a_line_that_is_no_reply_reads_as_none() -> None:
    assert decode_reply(b'{"type":"answer"}') is None
    assert decode_reply(b"hello") is None
