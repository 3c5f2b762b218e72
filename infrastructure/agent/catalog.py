"""The agents a worker can run: an argv template, an adapter, extra environment, stdin or not.

An argv template is a list of strings; `{prompt}`, `{workspace}`, `{task_file}` and `{python}` are
replaced inside each item, so a prompt with spaces or quotes stays one argument and nothing is
ever built into a shell string. Any other placeholder is refused when the agents are loaded.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Mapping
from pathlib import Path

import msgspec

from infrastructure.agent.adapters import ADAPTERS

PLACEHOLDERS = frozenset({"prompt", "workspace", "task_file", "python"})


class AgentConfigError(ValueError):
    """An agent definition or an agents file that cannot be used."""


class AgentSpec(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    argv: tuple[str, ...]
    adapter: str = "protocol"
    env: dict[str, str] = {}
    stdin: bool = True  # whether the agent reads answers, decisions and cancel notices on stdin

    def __post_init__(self) -> None:
        if not self.argv or not self.argv[0]:
            raise AgentConfigError(f"agent {self.name!r}: argv must name a program")
        if self.adapter not in ADAPTERS:
            known = ", ".join(ADAPTERS)
            raise AgentConfigError(
                f"agent {self.name!r}: unknown adapter {self.adapter!r}; known: {known}"
            )
        for item in self.argv:
            _check_template(self.name, item)


class _FileEntry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    argv: tuple[str, ...]
    adapter: str = "protocol"
    env: dict[str, str] = {}
    stdin: bool = True


def _fields(item: str) -> list[tuple[str, str | None, str | None]]:
    try:
        parsed = list(string.Formatter().parse(item))
    except ValueError as error:  # a lone "{" or "}"
        raise AgentConfigError(f"argv item {item!r}: {error} (write {{{{ or }}}})") from None
    return [(field, spec, conv) for _, field, spec, conv in parsed if field is not None]


def _check_template(agent: str, item: str) -> None:
    for field, spec, conversion in _fields(item):
        if field not in PLACEHOLDERS or spec or conversion:
            raise AgentConfigError(
                f"agent {agent!r}: unknown placeholder {{{field}}} in argv item {item!r}; "
                f"known: {', '.join(sorted('{' + p + '}' for p in PLACEHOLDERS))}"
            )


# The prompt comes after "--" so that one starting with "-" is never taken for an option.
BUILTIN_AGENTS: dict[str, AgentSpec] = {
    "scripted": AgentSpec(
        name="scripted",
        argv=("{python}", "-m", "infrastructure.agent.scripted"),
        adapter="protocol",
    ),
    "claude": AgentSpec(
        name="claude",
        argv=("claude", "-p", "--output-format", "stream-json", "--verbose", "--", "{prompt}"),
        adapter="claude",
        stdin=False,
    ),
    "codex": AgentSpec(
        name="codex",
        argv=("codex", "exec", "--json", "--", "{prompt}"),
        adapter="codex",
        stdin=False,
    ),
}


def load_agents(agents_file: Path | None) -> dict[str, AgentSpec]:
    """The built-in agents, with the entries of `agents_file` (if any) added or replacing them.

    The file is a JSON object: {"name": {"argv": [...], "adapter": "...", "env": {...},
    "stdin": true}}.
    """
    agents = dict(BUILTIN_AGENTS)
    if agents_file is None:
        return agents
    try:
        entries = msgspec.json.decode(agents_file.read_bytes(), type=dict[str, _FileEntry])
    except OSError as error:
        raise AgentConfigError(f"cannot read agents file {agents_file}: {error}") from None
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        raise AgentConfigError(f"agents file {agents_file}: {error}") from None
    for name, entry in entries.items():
        agents[name] = AgentSpec(
            name=name, argv=entry.argv, adapter=entry.adapter, env=entry.env, stdin=entry.stdin
        )
    return agents


def render(spec: AgentSpec, values: Mapping[str, str]) -> list[str]:
    """The argv to run: each placeholder replaced inside its own item, `{python}` by default
    this interpreter. A placeholder the template uses but `values` lacks is an AgentConfigError."""
    known = {"python": sys.executable, **values}
    argv = []
    for item in spec.argv:
        try:
            argv.append(item.format_map({field: known[field] for field, _, _ in _fields(item)}))
        except KeyError as error:
            missing = error.args[0]
            raise AgentConfigError(f"agent {spec.name!r}: no value for {{{missing}}}") from None
    return argv
