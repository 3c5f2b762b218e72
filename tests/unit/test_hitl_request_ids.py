"""A question, checkpoint or experience records who made it and each decision the request it was
made in (class version 3); events stored before read with none."""

from __future__ import annotations

import json

import pytest
from eventsourcing.persistence import StoredEvent

from application.ledger import Ledger
from domain.hitl import Checkpoint, Experience, HitlItem, Question
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings

PLACE = {"team_id": "team-1", "project_id": "p-1", "task_id": "t-1", "execution_id": "e-1"}
BY = {"actor": "worker:w1", "request_id": "e-1"}


def question() -> Question:
    return Question(**PLACE, question="Which?", options=[], default=None, deadline=None, **BY)


def checkpoint() -> Checkpoint:
    return Checkpoint(**PLACE, action="git push", description=None, data={}, deadline=None, **BY)


def experience() -> Experience:
    return Experience(**PLACE, title="t", content="c", tags=[], **BY)


@pytest.mark.parametrize(
    ("item", "decide", "kind"),
    [
        (question, lambda i: i.answer("yes", "user:1", request_id="r-1"), Question.Answered),
        (
            checkpoint,
            lambda i: i.decide(True, "ok", "user:1", request_id="r-1"),
            Checkpoint.Approved,
        ),
        (
            checkpoint,
            lambda i: i.decide(False, "no", "user:1", request_id="r-1"),
            Checkpoint.Rejected,
        ),
        (
            experience,
            lambda i: i.decide(True, None, "user:1", request_id="r-1"),
            Experience.Approved,
        ),
        (
            experience,
            lambda i: i.decide(False, "no", "user:1", request_id="r-1"),
            Experience.Rejected,
        ),
        (question, lambda i: i.withdraw("ended", "worker:w", "e-1"), HitlItem.Withdrawn),
    ],
)
def test_a_decision_carries_its_request_and_one_stored_before_reads_with_none(item, decide, kind):
    ledger = Ledger(env=ledger_env(Settings(memory_store=True), create_tables=True))
    try:
        made = item()
        decide(made)
        ledger.save(made)
        stored = ledger.recorder.select_events(made.id)[-1]
        event = ledger.mapper.to_domain_event(stored)
        assert isinstance(event, kind) and event.request_id in ("r-1", "e-1")
        state = json.loads(stored.state)
        assert state.pop("class_version") == 3
        del state["request_id"]
        state["class_version"] = 2  # as version 2 wrote it
        old = StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=json.dumps(state).encode(),
        )
        older = ledger.mapper.to_domain_event(old)
        assert isinstance(older, kind) and older.request_id is None
        created = ledger.mapper.to_domain_event(ledger.recorder.select_events(made.id)[0])
        replayed = older.mutate(created.mutate(None))
        assert replayed.status == made.status and replayed.decided_by == made.decided_by
    finally:
        ledger.close()


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda **by: Question(**PLACE, question="?", options=[], default=None, deadline=None,
                               **by), Question.Asked),
        (lambda **by: Checkpoint(**PLACE, action="a", description=None, data={}, deadline=None,
                                 **by), Checkpoint.Requested),
        (lambda **by: Experience(**PLACE, title="t", content="c", tags=[], **by),
         Experience.Proposed),
    ],
)  # fmt: skip
def test_an_items_creation_names_its_maker_and_one_stored_before_reads_with_none(make, kind):
    ledger = Ledger(env=ledger_env(Settings(memory_store=True), create_tables=True))
    try:
        made = make(actor="worker:w1", request_id="e-1")
        ledger.save(made)
        stored = ledger.recorder.select_events(made.id)[0]
        event = ledger.mapper.to_domain_event(stored)
        assert isinstance(event, kind)
        assert (event.actor, event.request_id) == ("worker:w1", "e-1")
        state = json.loads(stored.state)
        assert state.pop("class_version") == 3
        del state["actor"], state["request_id"]
        state["class_version"] = 2  # as version 2 wrote it
        old = StoredEvent(
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=json.dumps(state).encode(),
        )
        older = ledger.mapper.to_domain_event(old)
        assert (older.actor, older.request_id) == (None, None)
        replayed = older.mutate(None)
        assert replayed.status == "pending" and replayed.task_id == PLACE["task_id"]
    finally:
        ledger.close()
