"""The kept count estimates (infrastructure/count_estimates.py): fresh for KEEP_SECONDS, one per
listing, at most SIZE, the oldest dropped first."""

from __future__ import annotations

from infrastructure import count_estimates
from infrastructure.count_estimates import KEEP_SECONDS, CountEstimates
from tests.clock import ManualClock


def test_an_estimate_is_answered_until_it_is_keep_seconds_old() -> None:
    clock = ManualClock()
    kept = CountEstimates(clock.monotonic)
    key = kept.key("team_id = ?", ["team-a"])
    assert kept.get(key) is None
    kept.put(key, 5_000)
    clock.advance(KEEP_SECONDS - 0.001)
    assert kept.get(key) == 5_000
    clock.advance(0.001)
    assert kept.get(key) is None
    kept.put(key, 6_000)
    assert kept.get(key) == 6_000


def test_a_listing_is_its_sql_and_every_parameter() -> None:
    kept = CountEstimates(ManualClock().monotonic)
    kept.put(kept.key("team_id = ? AND status = ANY(?)", ["team-a", ["queued"]]), 5_000)
    assert kept.get(kept.key("team_id = ? AND status = ANY(?)", ["team-b", ["queued"]])) is None
    assert kept.get(kept.key("team_id = ? AND status = ANY(?)", ["team-a", ["done"]])) is None
    assert kept.get(kept.key("team_id = ?", ["team-a"])) is None


def test_at_most_size_are_kept_the_oldest_dropped_first() -> None:
    kept = CountEstimates(ManualClock().monotonic)
    keys = [kept.key("team_id = ?", [f"team-{i}"]) for i in range(count_estimates.SIZE + 1)]
    for i, key in enumerate(keys):
        kept.put(key, i)
    assert kept.get(keys[0]) is None
    assert [kept.get(k) for k in keys[1:]] == list(range(1, count_estimates.SIZE + 1))
