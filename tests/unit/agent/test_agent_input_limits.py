"""What an agent or a command writes is held to the input limits where it becomes an event: a line
nested too deep is output, never a crash; U+0000 never reaches a stored text (an agent's output:
tests/e2e/test_input_limits.py)."""

from __future__ import annotations

import pytest

from infrastructure.agent.adapters import adapter
from infrastructure.agent.protocol import Output, Progress, decode_message
from infrastructure.program_runner import Output as ProgramOutput

DEEP = '{"type": "progress", "percentage": 5, "extra": ' + "[" * 5_000 + "]" * 5_000 + "}"


def test_a_protocol_line_nested_too_deep_is_plain_output():
    assert decode_message(DEEP) == Output(stream="stdout", text=DEEP)
    assert decode_message('{"type": "progress", "percentage": 5}') == Progress(percentage=5)


def test_a_protocol_message_with_nul_in_a_field_is_plain_output():
    line = '{"type": "question", "question": "a\\u0000b"}'
    message = decode_message(line)
    assert message == Output(stream="stdout", text=line)
    assert "\x00" not in message.text


@pytest.mark.parametrize("name", ["claude", "codex"])
def test_a_stream_json_line_nested_too_deep_does_not_stop_the_adapter(name):
    messages = adapter(name).parse(DEEP)
    assert all(isinstance(m, Output) for m in messages)


def test_nul_in_a_commands_output_is_stored_as_the_replacement_character():
    output = ProgramOutput()
    output.add("stdout", b"a\x00b")
    output.close()
    assert [chunk["content"] for chunk in output.chunks()] == ["a\ufffdb"]
