"""The projection runner and poison already in the log (SQLite and Postgres): the event at fault is
retried, quarantined, alerted to its team and passed over, and every other team's events still
reach the views; a retry after a fix applies it late; an outage quarantines nothing."""

from __future__ import annotations

import pytest

from application.consumer_state import ConsumerState, Policy
from application.ports import Clock
from application.quarantine import QuarantineService, stored_poison
from application.retry_requests import RetryRequests
from domain.quarantine import QUARANTINED, RELEASED
from domain.system import system_id
from projections.read_model import ReadModel
from projections.runner import ProjectionRunner
from tests.clock import ManualClock
from tests.integration.views_world import ALICE, BOB, World, all_tasks, world
from tests.poison import fix_topic, nul_task, unknown_topic_row, unreachable, wait_until


def guarded(
    w: World,
    attempts: int = 2,
    clock: Clock | None = None,
    backoff: float = 0.01,
    read_model: ReadModel | None = None,
) -> tuple[ProjectionRunner, QuarantineService]:
    """A runner as the service builds it: a quarantine, an alert, retry requests."""
    service = QuarantineService(w.store)
    policy = Policy(max_attempts=attempts, backoff=backoff, max_backoff=backoff * 4)

    def record(notification, event, error, tries):
        service.record(stored_poison("projections", w.store, notification, event, error, tries))

    runner = ProjectionRunner(
        w.store,
        read_model or w.read_model,
        state=ConsumerState("projections", policy, clock=clock or w.store.clock),
        quarantine=record,
        retries=RetryRequests(service, "projections", every=0.01),
    )
    w.runners.append(runner)
    return runner, service


def alerts(w: World, team: str) -> int:
    return w.ledger.repository.get(system_id(team)).notices


def titles(w: World, team: str) -> list[str]:
    return sorted(r.title for r in all_tasks(w.read_model, team))


def test_an_undecodable_row_is_quarantined_and_every_other_event_still_reaches_the_views(
    tmp_path, database_url
):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        mine = w.project("Mine")
        w.task(theirs, "before", by=BOB)
        position, topic = unknown_topic_row(w.ledger, "team-a")
        w.task(theirs, "after", by=BOB)
        w.task(mine, "mine after")
        runner, service = guarded(w)
        assert runner.catch_up() == w.ledger.max_position()

        assert titles(w, "team-b") == ["after", "before"]
        assert titles(w, "team-a") == ["mine after"]
        [entry] = service.entries()
        assert (entry.consumer, entry.position, entry.topic) == ("projections", position, topic)
        assert (entry.team_id, entry.error_type, entry.attempts) == ("team-a", "TopicError", 2)
        assert alerts(w, "team-a") == 1
        assert runner.state.quarantined == 1 and runner.state.attempts == 0

        fix_topic(topic)
        service.request_retry(str(position), "user:admin", "req-9", consumer="projections")
        tracked = w.read_model.position()
        runner.settle_retries()
        assert service.find(str(entry.id)).status == RELEASED
        assert w.read_model.position() == tracked  # applied late: the tracking stays
        assert w.read_model.apply_late(position, None) is False  # and only once


def test_a_nul_in_a_title_is_quarantined_on_postgres_and_a_retry_fails_again_until_mended(
    tmp_path, database_url
):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        mine = w.project("Mine")
        _, position = nul_task(w.store, mine, ALICE)
        w.task(theirs, "flows", by=BOB)
        runner, service = guarded(w)
        runner.start()
        assert runner.wait_for(w.ledger.max_position(), timeout=30)
        assert titles(w, "team-b") == ["flows"]
        if database_url is None:  # SQLite text takes a NUL: nothing to quarantine
            assert titles(w, "team-a") == ["bad\x00title"] and service.entries() == []
            return
        assert titles(w, "team-a") == []
        [entry] = service.entries(consumer="projections", team="team-a")
        # Postgres refuses the row's JSON: "\u0000 cannot be converted to text" (a DataError)
        assert (entry.position, entry.error_type, entry.status) == (
            position,
            "UntranslatableCharacter",
            QUARANTINED,
        )
        assert service.entries(team="team-b") == []
        service.request_retry(str(entry.id), "user:admin", "req-9")
        failed_again = wait_until(lambda: service.find(str(entry.id)).failures == 2 or None)
        assert failed_again and service.find(str(entry.id)).status == QUARANTINED
        assert alerts(w, "team-a") == 2  # quarantined again: told again


def test_a_batch_with_poison_in_the_middle_applies_the_events_on_both_sides(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        for n in range(5):
            w.task(theirs, f"before {n}", by=BOB)
        position, _ = unknown_topic_row(w.ledger, "team-a")
        for n in range(5):
            w.task(theirs, f"after {n}", by=BOB)
        runner, service = guarded(w)
        assert runner.catch_up() == w.ledger.max_position()
        assert len(titles(w, "team-b")) == 10
        assert [e.position for e in service.entries()] == [position]
        assert runner.catch_up() == w.ledger.max_position()  # passed over for good
        assert len(service.entries()) == 1


def test_two_runners_quarantine_the_same_event_once(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        unknown_topic_row(w.ledger, "team-a")
        w.task(theirs, "after", by=BOB)
        first, service = guarded(w)
        second, _ = guarded(w, read_model=w.open_read_model())
        for runner in (first, second):
            runner.start()
        assert first.wait_for(w.ledger.max_position(), timeout=30)
        assert len(service.entries()) == 1 and alerts(w, "team-a") == 1


@pytest.mark.slow
def test_while_the_database_is_unreachable_nothing_is_quarantined(
    tmp_path, postgres_admin_url, postgres_url
):
    with world(tmp_path, postgres_url) as w:
        theirs = w.project("Theirs", by=BOB)
        position, _ = unknown_topic_row(w.ledger, "team-a")
        w.task(theirs, "after", by=BOB)
        clock = ManualClock()
        runner, service = guarded(w, attempts=3, clock=clock, backoff=1.0)
        runner.start()
        wait_until(lambda: runner.state.attempts == 1)  # counted: the database answers
        with unreachable(postgres_admin_url, postgres_url):
            before = runner.state.failures
            for _ in range(4):  # each backoff passes, and the runner fails again
                clock.advance(100)
                wait_until(lambda n=before: runner.state.failures > n)
                before = runner.state.failures
            assert runner.state.attempts == 1 and runner.state.quarantined == 0
            assert not runner.state.recording
        clock.advance(100)
        wait_until(lambda: runner.state.attempts == 2)
        clock.advance(100)
        assert runner.wait_for(w.ledger.max_position(), timeout=30)
        [entry] = service.entries()
        assert (entry.position, entry.attempts) == (position, 3)
        assert titles(w, "team-b") == ["after"]
