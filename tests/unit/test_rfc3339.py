"""``domain.values.rfc3339`` formats with ``isoformat`` where that gives strftime's text (the
projections format a time per event): the same text for any moment, in any zone, as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.values import RFC3339, rfc3339

MOMENTS = [
    datetime(2026, 12, 3, 17, 33, 28, 382784, tzinfo=UTC),
    datetime(2026, 12, 3, 17, 33, 28, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 6, 1, 12, 0, 0, 1),  # naive: astimezone takes it as local time
    datetime(1000, 1, 1, 12, 0, tzinfo=UTC),
    datetime(999, 12, 31, 12, 0, tzinfo=UTC),  # strftime's unpadded year, kept
    datetime(9999, 12, 31, 12, 0, tzinfo=UTC),
]


@pytest.mark.parametrize("moment", MOMENTS, ids=str)
def test_the_text_is_strftimes(moment):
    assert rfc3339(moment) == moment.astimezone(UTC).strftime(RFC3339)


def test_none_is_none():
    assert rfc3339(None) is None


def test_each_moment_gets_its_own_text_when_moments_alternate():
    """The moment formatted last is kept (one cache entry): taken turns, each keeps its text."""
    expected = [moment.astimezone(UTC).strftime(RFC3339) for moment in MOMENTS]
    for _ in range(2):
        assert [rfc3339(moment) for moment in MOMENTS] == expected
        assert [rfc3339(moment) for moment in reversed(MOMENTS)] == expected[::-1]
    same_instant = MOMENTS[2].astimezone(UTC)  # an equal moment in another zone
    assert rfc3339(MOMENTS[2]) == rfc3339(same_instant) == expected[2]
