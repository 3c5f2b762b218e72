"""NATS subject filters, checked and matched the same way by both buses."""

from __future__ import annotations


class SlowSubscriberError(Exception):
    """A live subscriber let its queue fill up and was dropped: it missed events."""


def check_filter(subject_filter: str) -> str:
    """Raises ValueError unless the filter is a NATS subject filter: dot-separated non-empty
    tokens, ``*`` (one token) and ``>`` (one or more, last only) as whole tokens."""
    parts = subject_filter.split(".")
    for i, part in enumerate(parts):
        bad = not part or any(c.isspace() for c in part)
        wild = ("*" in part or ">" in part) and part not in ("*", ">")
        if bad or wild or (part == ">" and i != len(parts) - 1):
            raise ValueError(f"invalid subject filter: {subject_filter!r}")
    return subject_filter


def subject_matches(subject_filter: str, subject_name: str) -> bool:
    """NATS wildcard rules: ``*`` matches one token, a final ``>`` one or more."""
    pattern = subject_filter.split(".")
    tokens = subject_name.split(".")
    for i, part in enumerate(pattern):
        if part == ">":
            return len(tokens) > i
        if i >= len(tokens) or (part != "*" and part != tokens[i]):
            return False
    return len(tokens) == len(pattern)
