"""The price table every team starts from, as published by the providers (docs/costs.md says
where each figure comes from). USD per million tokens: input (uncached), output, cache read,
cache write. Anthropic's cache write is its 5-minute write; OpenAI charges no premium to write
its cache, so its cache write is the input price (Codex reports only cache reads).

A team's table is created from this one the first time it is needed, and records the date below
in its first event; changing a figure here changes new teams' tables only. Give a changed table
a new date.
"""

from __future__ import annotations

DATE = "2026-12-03"

ANTHROPIC = "anthropic"
OPENAI = "openai"

# model, provider, input, output, cache read, cache write
PRICES: tuple[tuple[str, str, float, float, float, float], ...] = (
    ("claude-opus-4-8", ANTHROPIC, 5.0, 25.0, 0.50, 6.25),
    ("claude-opus-4-7", ANTHROPIC, 5.0, 25.0, 0.50, 6.25),
    ("claude-opus-4-6", ANTHROPIC, 5.0, 25.0, 0.50, 6.25),
    ("claude-opus-4-5", ANTHROPIC, 5.0, 25.0, 0.50, 6.25),
    ("claude-opus-4-1", ANTHROPIC, 15.0, 75.0, 1.50, 18.75),
    ("claude-opus-4-0", ANTHROPIC, 15.0, 75.0, 1.50, 18.75),
    ("claude-opus-4", ANTHROPIC, 15.0, 75.0, 1.50, 18.75),
    ("claude-sonnet-4-6", ANTHROPIC, 3.0, 15.0, 0.30, 3.75),
    ("claude-sonnet-4-5", ANTHROPIC, 3.0, 15.0, 0.30, 3.75),
    ("claude-sonnet-4-0", ANTHROPIC, 3.0, 15.0, 0.30, 3.75),
    ("claude-sonnet-4", ANTHROPIC, 3.0, 15.0, 0.30, 3.75),
    ("claude-haiku-4-5", ANTHROPIC, 1.0, 5.0, 0.10, 1.25),
    ("claude-3-7-sonnet", ANTHROPIC, 3.0, 15.0, 0.30, 3.75),
    ("claude-3-5-sonnet", ANTHROPIC, 3.0, 15.0, 0.30, 3.75),
    ("claude-3-5-haiku", ANTHROPIC, 0.80, 4.0, 0.08, 1.0),
    ("claude-3-opus", ANTHROPIC, 15.0, 75.0, 1.50, 18.75),
    ("claude-3-haiku", ANTHROPIC, 0.25, 1.25, 0.03, 0.30),
    ("gpt-4o", OPENAI, 2.50, 10.0, 1.25, 2.50),
    ("gpt-4o-mini", OPENAI, 0.15, 0.60, 0.075, 0.15),
    ("gpt-4.1", OPENAI, 2.0, 8.0, 0.50, 2.0),
    ("gpt-4.1-mini", OPENAI, 0.40, 1.60, 0.10, 0.40),
    ("gpt-4.1-nano", OPENAI, 0.10, 0.40, 0.025, 0.10),
    ("o3", OPENAI, 2.0, 8.0, 0.50, 2.0),
    ("o3-mini", OPENAI, 1.10, 4.40, 0.55, 1.10),
    ("o4-mini", OPENAI, 1.10, 4.40, 0.275, 1.10),
    ("gpt-5", OPENAI, 1.25, 10.0, 0.125, 1.25),
    ("gpt-5-mini", OPENAI, 0.25, 2.0, 0.025, 0.25),
    ("gpt-5-nano", OPENAI, 0.05, 0.40, 0.005, 0.05),
    ("gpt-5-codex", OPENAI, 1.25, 10.0, 0.125, 1.25),
    ("gpt-5.1", OPENAI, 1.25, 10.0, 0.125, 1.25),
    ("gpt-5.1-codex", OPENAI, 1.25, 10.0, 0.125, 1.25),
    ("gpt-5.2", OPENAI, 1.75, 14.0, 0.175, 1.75),
)
