"""Adapters read Claude Code and Codex transcripts in their documented formats.

Transcripts (tests/unit/agent/transcripts/README.md cites the sources):
- claude_*.jsonl: `claude -p ... --output-format stream-json --verbose`, shapes from Claude Code's
  headless mode documentation (docs.anthropic.com/en/docs/claude-code/sdk/sdk-headless) and the
  Agent SDK's SDKMessage types (system/init, assistant, user, result with total_cost_usd and usage).
- codex_*.jsonl: `codex exec --json ...`, shapes from openai/codex codex-rs/exec/src/exec_events.rs.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import msgspec
import pytest

from application.pricing import reported_usage
from domain.pricing import PriceTable
from infrastructure.agent.adapters import ADAPTERS, ClaudeAdapter, CodexAdapter, adapter
from infrastructure.agent.protocol import Message, Output, Phase, Result, Usage

TRANSCRIPTS = Path(__file__).parent / "transcripts"


def read(name: str, kind: str) -> list[Message]:
    parser = adapter(kind)
    lines = (TRANSCRIPTS / name).read_text().splitlines()
    return [message for line in lines for message in parser.parse(line)]


def outputs(messages: list[Message]) -> list[str]:
    return [m.text for m in messages if isinstance(m, Output)]


def test_claude_text_and_tool_calls_become_output() -> None:
    texts = outputs(read("claude_fix_bug.jsonl", "claude"))
    assert texts[0].startswith("[claude] session 8f0c2a51")
    assert "claude-sonnet-4-5-20250929" in texts[0]
    assert texts[1] == "I'll run the failing test first."
    assert texts[2].startswith("[tool] Bash ")
    assert "pytest -x tests/test_parser.py" in texts[2]
    assert texts[3].startswith("[tool error] FAILED tests/test_parser.py")
    assert texts[4].startswith("[tool] Edit ")
    assert (
        texts[5] == "[tool result] The file /srv/workspaces/t1/e1/src/parser.py has been updated."
    )
    assert texts[6] == "Fixed the off-by-one in parse_header; the test passes now."
    assert len(texts) == 7  # the thinking block is not output


def test_claude_result_message_gives_usage_with_the_model_and_the_result() -> None:
    messages = read("claude_fix_bug.jsonl", "claude")
    usage, result = messages[-2:]
    assert usage == Usage(
        model="claude-sonnet-4-5-20250929",
        provider="anthropic",
        input_tokens=22,
        output_tokens=260,
        cache_read_tokens=40501,
        cache_write_tokens=2912,
        requests=6,
        cost_usd=0.0421337,
    )
    assert isinstance(result, Result)
    assert result.summary == "Fixed the off-by-one in parse_header; the test passes now."
    assert result.data["is_error"] is False
    assert result.data["subtype"] == "success"
    assert result.data["num_turns"] == 6


def test_a_claude_error_result_keeps_the_error_in_its_data() -> None:
    usage, result = read("claude_max_turns.jsonl", "claude")[-2:]
    assert isinstance(usage, Usage) and usage.model == "claude-opus-4-1-20250805"
    assert usage.cost_usd == 0.0123
    assert isinstance(result, Result) and result.summary is None
    assert result.data["is_error"] is True and result.data["subtype"] == "error_max_turns"


def test_claude_non_json_and_unknown_lines_are_output_and_partial_deltas_are_skipped() -> None:
    claude = ClaudeAdapter()
    assert claude.parse("Warning: something") == [
        Output(stream="stdout", text="Warning: something")
    ]
    assert claude.parse('{"type":"stream_event","event":{}}') == []
    assert claude.parse('{"type":"brand_new"}') == [
        Output(stream="stdout", text='{"type":"brand_new"}')
    ]


def test_a_claude_result_with_odd_fields_does_not_raise() -> None:
    claude = ClaudeAdapter()
    messages = claude.parse('{"type":"result","usage":"lots","total_cost_usd":"free","result":7}')
    assert messages == [Usage(provider="anthropic"), Result(data={})]


def test_each_adapter_call_starts_a_fresh_run() -> None:
    first = adapter("claude")
    first.parse('{"type":"system","subtype":"init","model":"m1","session_id":"s"}')
    second = adapter("claude")
    assert isinstance(second, ClaudeAdapter) and second.model is None


def test_codex_items_become_output() -> None:
    texts = outputs(read("codex_fix_bug.jsonl", "codex"))
    assert texts == [
        "[reasoning] **Running the failing test**",
        "$ bash -lc 'pytest -x tests/test_parser.py'",
        "$ bash -lc 'pytest -x tests/test_parser.py' (exit 1, failed)",
        "FAILED tests/test_parser.py::test_header - IndexError\n1 failed in 0.12s",
        "[edit] update src/parser.py",
        "[edit] add tests/test_header.py",
        "[x] Fix the slice",
        "[x] Run the tests",
        "Fixed the off-by-one in parse_header and added a test.",
    ]


def test_codex_turn_completed_gives_usage_and_the_last_message_as_result() -> None:
    usage, result = read("codex_fix_bug.jsonl", "codex")[-2:]
    # cached tokens are part of OpenAI's input_tokens; ours count the uncached ones
    assert usage == Usage(
        provider="openai", input_tokens=315, output_tokens=122, cache_read_tokens=24448
    )
    assert result == Result(summary="Fixed the off-by-one in parse_header and added a test.")


def test_codex_reasoning_tokens_are_kept_when_its_version_reports_them() -> None:
    line = (
        '{"type":"turn.completed","usage":{"input_tokens":1000,"cached_input_tokens":400,'
        '"output_tokens":90,"reasoning_output_tokens":64}}'
    )
    usage = CodexAdapter().parse(line)[0]
    assert usage == Usage(
        provider="openai",
        input_tokens=600,
        output_tokens=90,
        cache_read_tokens=400,
        reasoning_tokens=64,
    )


def test_a_claude_transcripts_cache_tokens_are_priced_at_the_cache_prices() -> None:
    usage = read("claude_fix_bug.jsonl", "claude")[-2]
    reported = reported_usage(msgspec.to_builtins(usage))
    table = PriceTable.shipped("team-1", "test", "test")
    priced = table.priced(reported, date(2026, 12, 3))
    # claude-sonnet-4-5: 3 input, 15 output, 0.30 cache read, 3.75 cache write per million
    expected = (22 * 3 + 260 * 15 + 40501 * 0.30 + 2912 * 3.75) / 1_000_000
    assert priced.cache_read_tokens == 40501 and priced.cache_write_tokens == 2912
    assert priced.cost_usd == pytest.approx(expected) and priced.price_version == 1
    assert priced.reported_cost_usd == 0.0421337 and priced.requests == 6


def test_codex_errors_are_output() -> None:
    texts = outputs(read("codex_failed.jsonl", "codex"))
    assert texts == [
        "[codex] error: stream disconnected before completion: Transport error: error decoding "
        "response body",
        "[codex] turn failed: stream disconnected before completion: Transport error: error "
        "decoding response body",
    ]


def test_codex_plain_lines_are_output() -> None:
    assert CodexAdapter().parse("Reading prompt from stdin...") == [
        Output(stream="stdout", text="Reading prompt from stdin...")
    ]


def test_the_protocol_adapter_reads_the_protocol_and_the_text_adapter_reads_nothing() -> None:
    line = '{"type":"phase","name":"build"}'
    assert adapter("protocol").parse(line) == [Phase(name="build")]
    assert adapter("text").parse(line) == [Output(stream="stdout", text=line)]


@pytest.mark.parametrize("name", sorted(ADAPTERS))
@pytest.mark.parametrize("line", ["", "{", "null", '{"type":null}', '{"type":"result","usage":[]}'])
def test_no_adapter_raises_on_a_malformed_line(name: str, line: str) -> None:
    adapter(name).parse(line)


def test_an_unknown_adapter_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown adapter 'gpt'"):
        adapter("gpt")
