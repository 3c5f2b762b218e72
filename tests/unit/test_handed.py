"""``Handed``: a consumer takes this process's commits only where they follow on from its
position without a gap."""

from __future__ import annotations

from uuid import uuid4

from eventsourcing.persistence import Notification, Recording

from application.handed import Handed


def committed(*positions: int) -> list[Recording]:
    return [
        Recording(
            domain_event=f"event {p}",  # type: ignore[arg-type]
            notification=Notification(
                id=p, originator_id=uuid4(), originator_version=1, topic="t", state=b""
            ),
        )
        for p in positions
    ]


def positions(pairs) -> list[int] | None:
    return None if pairs is None else [n.id for n, _ in pairs]


def taking(bound: int) -> Handed:
    """A copy whose consumer has asked once (it runs)."""
    handed = Handed(bound)
    assert handed.after(0, 1) is None
    return handed


def test_nothing_is_kept_before_the_consumer_first_asks():
    handed = Handed(100)
    handed.add(committed(1, 2))  # a runner or relay this process never started
    assert handed.after(0, 10) is None
    handed.add(committed(3))
    assert positions(handed.after(2, 10)) == [3]


def test_what_follows_on_is_taken_once_with_its_event():
    handed = taking(100)
    handed.add(committed(4, 5))
    handed.add(committed(6))
    taken = handed.after(3, 10)
    assert positions(taken) == [4, 5, 6]
    assert [e for _, e in taken or []] == ["event 4", "event 5", "event 6"]
    assert handed.after(6, 10) is None


def test_at_most_the_limit_is_taken_and_the_rest_waits():
    handed = taking(100)
    handed.add(committed(1, 2, 3))
    assert positions(handed.after(0, 2)) == [1, 2]
    assert positions(handed.after(2, 2)) == [3]


def test_a_gap_before_the_first_is_read_from_the_store():
    handed = taking(100)
    handed.add(committed(5, 6))
    assert handed.after(3, 10) is None  # position 4 was not handed
    assert positions(handed.after(4, 10)) == [5, 6]  # read 4; the rest follows on


def test_a_gap_inside_stops_the_take_there():
    handed = taking(100)
    handed.add(committed(1, 2))
    handed.add(committed(4))
    assert positions(handed.after(0, 10)) == [1, 2]
    assert handed.after(2, 10) is None
    assert positions(handed.after(3, 10)) == [4]


def test_what_was_passed_already_is_dropped():
    handed = taking(100)
    handed.add(committed(1, 2, 3))
    assert positions(handed.after(2, 10)) == [3]
    assert handed.after(3, 10) is None


def test_more_than_the_bound_drops_every_copy():
    handed = taking(3)
    handed.add(committed(1, 2, 3))
    assert positions(handed.after(0, 1)) == [1]
    handed.add(committed(4, 5))  # four waiting: the consumer is far behind
    assert handed.after(1, 10) is None
    handed.add(committed(6))
    assert positions(handed.after(5, 10)) == [6]
