"""The environment an agent runs in: the server's, without the server's secrets."""

from __future__ import annotations

from collections.abc import Mapping

DROPPED_NAMES = frozenset({"DATABASE_URL"})
DROPPED_PREFIXES = ("TASKWARDEN_", "PG", "NATS_")
SECRET_WORDS = (
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "TOKEN",
    "PRIVATE_KEY",
    "API_KEY",
    "APIKEY",
    "CREDENTIAL",
)


def is_secret(name: str) -> bool:
    """Whether a variable of the server's environment is kept from agents."""
    upper = name.upper()
    return (
        upper in DROPPED_NAMES
        or upper.startswith(DROPPED_PREFIXES)
        or any(word in upper for word in SECRET_WORDS)
    )


def agent_environment(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """`base` without its secrets, then `extra` on top.

    `extra` is the explicit allow-list: the agent spec's own variables (an operator's
    ANTHROPIC_API_KEY) and the ones the runner sets (TASKWARDEN_TASK_FILE) pass whatever their name.
    """
    env = {name: value for name, value in base.items() if not is_secret(name)}
    env.update(extra)
    return env
