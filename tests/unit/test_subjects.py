"""Subject filters follow NATS wildcard rules: ``*`` is one token, a final ``>`` one or more."""

from __future__ import annotations

import pytest

from infrastructure.memory_bus import check_filter, subject_matches

SUBJECT = "taskwarden.team-1.task.created"


@pytest.mark.parametrize(
    "subject_filter",
    [
        SUBJECT,
        "taskwarden.>",
        "taskwarden.team-1.>",
        "taskwarden.*.task.*",
        "taskwarden.*.*.created",
        "*.*.*.*",
        ">",
        "taskwarden.team-1.task.>",
    ],
)
def test_a_filter_matches_the_subjects_its_wildcards_cover(subject_filter):
    assert subject_matches(subject_filter, SUBJECT)


@pytest.mark.parametrize(
    "subject_filter",
    [
        "taskwarden.team-2.>",
        "taskwarden.*.project.*",
        "taskwarden.*.task",  # too short: * is exactly one token
        "taskwarden.*.task.created.*",  # too long
        "taskwarden.team-1.task.created.>",  # > needs at least one more token
        "taskwarden.team",  # no prefix matching inside a token
        "*.*.*",
    ],
)
def test_a_filter_does_not_match_other_subjects(subject_filter):
    assert not subject_matches(subject_filter, SUBJECT)


@pytest.mark.parametrize(
    "subject_filter", ["", "taskwarden..task", "taskwarden.>.task", "task*.>", "a.b>", "a b.>"]
)
def test_a_malformed_filter_is_refused(subject_filter):
    with pytest.raises(ValueError, match="invalid subject filter"):
        check_filter(subject_filter)


def test_a_wellformed_filter_is_returned_as_it_is():
    assert check_filter("taskwarden.*.task.>") == "taskwarden.*.task.>"
