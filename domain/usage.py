"""What one usage report of an agent spent, normalized across agents and providers.

An agent says what it spent in its own words (Claude Code's ``cache_creation_input_tokens``,
Codex's ``cached_input_tokens`` counted inside its input); the adapters and the protocol turn
that into one shape, and the usage event (``Task.UsageRecorded``) carries it field by field.
``cost_usd`` is ours: computed when the usage is recorded from the team's price table
(``domain.pricing``), with ``price_version`` the table version that priced it, so a later price
change never changes an earlier event. What the agent said it cost is kept beside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

PER = 1_000_000  # prices are per million tokens
COST_DIGITS = 8  # a hundred-millionth of a dollar: below any price per token


@dataclass(frozen=True, kw_only=True)
class Usage:
    """Tokens of one report. ``input_tokens`` are the uncached ones; cache reads and cache
    writes are counted apart, as each has its own price. ``reasoning_tokens`` (None when the
    agent did not say) are already inside ``output_tokens`` and priced as output."""

    model: str | None = None
    provider: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int | None = None
    requests: int = 1
    cost_usd: float = 0.0
    reported_cost_usd: float | None = None
    price_version: int | None = None

    def fields(self) -> dict[str, Any]:
        """The event's fields, by name."""
        return dataclasses.asdict(self)


FIELDS = tuple(f.name for f in dataclasses.fields(Usage))


def usage_of(event: Any) -> Usage:
    """The usage a ``Task.UsageRecorded`` event carries."""
    return Usage(**{name: getattr(event, name) for name in FIELDS})


def from_old_shape(usage: dict[str, Any]) -> dict[str, Any]:
    """The fields of a usage event stored before they were normalized (one ``usage`` dict, as
    the agent sent it). It was never priced: its cost is what the agent reported (0 if nothing),
    so the task's totals stay what they were, and ``price_version`` is None."""
    reported = usage.get("cost_usd")
    reported_cost = float(reported) if isinstance(reported, int | float) else None
    return Usage(
        model=usage.get("model") or None,
        input_tokens=_count(usage.get("input_tokens")),
        output_tokens=_count(usage.get("output_tokens")),
        cache_read_tokens=_count(usage.get("cache_read_tokens")),
        cache_write_tokens=_count(usage.get("cache_creation_tokens")),
        cost_usd=reported_cost or 0.0,
        reported_cost_usd=reported_cost,
    ).fields()


def _count(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and value > 0 else 0
