"""A refresh family remembers the secret used last and when, and reads its older events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from eventsourcing.persistence import StoredEvent

from application.ledger import Ledger
from domain.credentials import RefreshFamily
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def started() -> RefreshFamily:
    return RefreshFamily(
        user_id="user-1", team_id="team-1", secret_hash="h1", expires_at=NOW + timedelta(days=1)
    )


def test_a_rotation_keeps_the_hash_it_replaced_and_its_time():
    family = started()
    assert (family.previous_secret_hash, family.rotated_at) == (None, None)
    family.rotate("h2", NOW + timedelta(days=2), NOW)
    family.rotate("h3", NOW + timedelta(days=3), NOW + timedelta(seconds=9))
    assert family.secret_hash == "h3"
    assert family.previous_secret_hash == "h2"
    assert family.rotated_at == NOW + timedelta(seconds=9)


def test_a_rotation_stored_before_version_2_reads_with_no_time():
    """Families rotated before the grace existed: no time, so no grace, as before."""
    ledger = Ledger(env=ledger_env(Settings(memory_store=True), create_tables=True))
    try:
        family = started()
        family.rotate("h2", NOW + timedelta(days=2), NOW)
        ledger.save(family)
        stored = ledger.recorder.select_events(family.id)[-1]
        state = json.loads(stored.state)
        assert state.pop("class_version") == 3
        del state["at"], state["team_id"]  # as version 1 wrote it
        old = StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=json.dumps(state).encode(),
        )
        event = ledger.mapper.to_domain_event(old)
        assert isinstance(event, RefreshFamily.Rotated)
        assert event.at is None and event.team_id is None  # until migrated
        created = ledger.mapper.to_domain_event(ledger.recorder.select_events(family.id)[0])
        replayed = event.mutate(created.mutate(None))
        assert isinstance(replayed, RefreshFamily)
        assert (replayed.secret_hash, replayed.previous_secret_hash) == ("h2", "h1")
        assert replayed.rotated_at is None
    finally:
        ledger.close()
