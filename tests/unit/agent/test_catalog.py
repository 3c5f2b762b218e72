"""Agents come from argv templates; values go inside argv items, never into a shell string."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from infrastructure.agent.catalog import AgentConfigError, AgentSpec, load_agents, render

VALUES = {"prompt": "p", "workspace": "/ws", "task_file": "/ws/task.json"}


def write_agents(tmp_path: Path, agents: object) -> Path:
    path = tmp_path / "agents.json"
    path.write_text(json.dumps(agents))
    return path


def test_the_built_in_agents_are_scripted_claude_and_codex() -> None:
    agents = load_agents(None)
    assert set(agents) == {"scripted", "claude", "codex"}
    assert (agents["claude"].adapter, agents["codex"].adapter) == ("claude", "codex")
    assert agents["scripted"].stdin and not agents["claude"].stdin


def test_the_scripted_agent_runs_with_this_python() -> None:
    argv = render(load_agents(None)["scripted"], VALUES)
    assert argv == [sys.executable, "-m", "infrastructure.agent.scripted"]


def test_a_prompt_stays_one_argument_whatever_it_contains() -> None:
    prompt = 'fix "it"; rm -rf / && echo $HOME `id` {braces}\nsecond line'
    argv = render(load_agents(None)["claude"], {**VALUES, "prompt": prompt})
    assert argv == ["claude", "-p", "--output-format", "stream-json", "--verbose", "--", prompt]


def test_a_prompt_that_looks_like_an_option_comes_after_the_end_of_options() -> None:
    argv = render(load_agents(None)["codex"], {**VALUES, "prompt": "--dangerously-bypass"})
    assert argv[-2:] == ["--", "--dangerously-bypass"]


def test_placeholders_are_replaced_inside_an_item() -> None:
    spec = AgentSpec(
        name="x", argv=("tool", "--cwd={workspace}", "--task={task_file}", "{{literal}}")
    )
    assert render(spec, VALUES) == ["tool", "--cwd=/ws", "--task=/ws/task.json", "{literal}"]


def test_an_agents_file_adds_and_replaces_agents(tmp_path: Path) -> None:
    path = write_agents(
        tmp_path,
        {
            "aider": {"argv": ["aider", "--message", "{prompt}"], "adapter": "text"},
            "claude": {
                "argv": [
                    "/opt/claude",
                    "-p",
                    "--output-format",
                    "stream-json",
                    "--verbose",
                    "{prompt}",
                ],
                "adapter": "claude",
                "env": {"ANTHROPIC_API_KEY": "k"},
                "stdin": False,
            },
        },
    )
    agents = load_agents(path)
    assert set(agents) == {"scripted", "claude", "codex", "aider"}
    assert agents["aider"] == AgentSpec(
        name="aider", argv=("aider", "--message", "{prompt}"), adapter="text"
    )
    assert agents["claude"].argv[0] == "/opt/claude"
    assert agents["claude"].env == {"ANTHROPIC_API_KEY": "k"}


def test_an_agent_without_an_adapter_speaks_the_protocol(tmp_path: Path) -> None:
    agents = load_agents(write_agents(tmp_path, {"mine": {"argv": ["./agent"]}}))
    assert agents["mine"].adapter == "protocol" and agents["mine"].stdin


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("{home}", "unknown placeholder {home}"),
        ("--x={prompt!r}", "unknown placeholder"),
        ("{prompt:>10}", "unknown placeholder"),
        ("{prompt.upper}", "unknown placeholder"),
        ("{0}", "unknown placeholder"),
        ("{}", "unknown placeholder"),
        ("{prompt", "write {{ or }}"),
        ("a}b", "write {{ or }}"),
    ],
)
def test_an_unknown_placeholder_is_refused_at_load_time(
    tmp_path: Path, item: str, message: str
) -> None:
    path = write_agents(tmp_path, {"bad": {"argv": ["tool", item]}})
    with pytest.raises(AgentConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_agents(path)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"argv": []}, "argv must name a program"),
        ({"argv": ["x"], "adapter": "gpt"}, "unknown adapter 'gpt'"),
        ({"argv": ["x"], "shell": True}, "unknown field"),
        ({"argv": "x --y"}, "Expected `array`"),
        ({"argv": ["x"], "env": {"A": 1}}, "Expected `str`"),
    ],
)
def test_a_bad_agent_entry_is_refused(tmp_path: Path, entry: dict, message: str) -> None:
    with pytest.raises(AgentConfigError, match=message):
        load_agents(write_agents(tmp_path, {"bad": entry}))


def test_an_unreadable_or_malformed_agents_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(AgentConfigError, match="cannot read agents file"):
        load_agents(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(AgentConfigError, match="broken.json"):
        load_agents(tmp_path / "broken.json")


def test_rendering_without_a_value_the_template_needs_is_refused() -> None:
    with pytest.raises(AgentConfigError, match=r"no value for \{prompt\}"):
        render(load_agents(None)["codex"], {"workspace": "/ws"})
