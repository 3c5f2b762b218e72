"""Given a question, checkpoint or proposed experience, when people decide, then events or an
error (domain/hitl.py): one decision each, the same decision twice is one, a contrary one is
refused, a pending item can be withdrawn, and replay rebuilds the same item."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from eventsourcing.application import Application

from domain.errors import InvalidTransitionError
from domain.hitl import Checkpoint, Experience, HitlItem, Question

DEADLINE = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
WHERE = {"team_id": "team-1", "project_id": "project-1", "task_id": "task-1"}


def new_question(**fields: Any) -> Question:
    return Question(
        **WHERE,
        execution_id="execution-1",
        question="Which database?",
        options=["sqlite", "postgres"],
        default="sqlite",
        deadline=DEADLINE,
        **({"actor": "worker:w1", "request_id": "execution-1"} | fields),
    )


def new_checkpoint() -> Checkpoint:
    return Checkpoint(
        **WHERE,
        execution_id="execution-1",
        action="delete_files",
        description="remove the old migrations",
        data={"paths": ["migrations/0001.py"]},
        deadline=DEADLINE,
        actor="worker:w1",
        request_id="execution-1",
    )


def new_experience() -> Experience:
    return Experience(
        **WHERE,
        execution_id="execution-1",
        title="Run the migrations first",
        content="The tests need a migrated database.",
        tags=["testing"],
        actor="worker:w1",
        request_id="execution-1",
    )


Step = Callable[[Any], Any]


def given(item: HitlItem, *steps: Step) -> HitlItem:
    """An item after ``steps``, with its events already saved (none pending)."""
    for step in steps:
        step(item)
    item.collect_events()
    return item


def then_events(item: HitlItem) -> list[str]:
    return [type(e).__name__ for e in item.collect_events()]


def then_refused(item: HitlItem, command: Callable[[], Any]) -> InvalidTransitionError:
    """The command raises INVALID_STATUS_TRANSITION and changes nothing."""
    before, version = copy.deepcopy(item.__dict__), item.version
    with pytest.raises(InvalidTransitionError) as raised:
        command()
    assert raised.value.code == "INVALID_STATUS_TRANSITION"
    assert item.__dict__ == before and item.version == version
    return raised.value


def answer(response: str = "postgres", by_default: bool = False) -> Step:
    return lambda q: q.answer(response, "user-1", by_default=by_default)


def decide(approved: bool, by_default: bool = False) -> Step:
    return lambda c: c.decide(approved, "why not", "user-1", by_default=by_default)


def decide_experience(approved: bool) -> Step:
    return lambda e: e.decide(approved, "why not", "user-1")


def withdraw(item: HitlItem) -> None:
    item.withdraw("the execution ended", "runner")


# ---- questions ---------------------------------------------------------------------------------


def test_an_asked_question_is_pending_with_no_response() -> None:
    question = new_question()
    [asked] = question.collect_events()
    assert type(asked).__name__ == "Asked"
    assert (asked.question, asked.options, asked.default) == (
        "Which database?",
        ["sqlite", "postgres"],
        "sqlite",
    )
    assert (question.task_id, question.execution_id) == ("task-1", "execution-1")
    assert question.status == "pending" and question.deadline == DEADLINE
    assert (question.response, question.decided_by, question.reason) == (None, None, None)
    assert question.by_default is False


def test_answering_a_question_records_the_response_and_who_gave_it() -> None:
    question = given(new_question())
    assert question.answer("postgres", "user-1") is True
    [answered] = question.collect_events()
    assert type(answered).__name__ == "Answered"
    assert (answered.response, answered.actor, answered.by_default) == (
        "postgres",
        "user-1",
        False,
    )
    assert question.status == "answered" and question.response == "postgres"
    assert question.decided_by == "user-1" and question.by_default is False


def test_a_question_answered_by_its_default_says_so() -> None:
    question = given(new_question())
    assert question.answer("sqlite", "system", by_default=True) is True
    assert then_events(question) == ["Answered"]
    assert question.by_default is True and question.decided_by == "system"


@pytest.mark.parametrize("by_default", [False, True], ids=["by a person", "by default"])
def test_the_same_answer_twice_is_one_answer(by_default: bool) -> None:
    question = given(new_question(), answer("postgres", by_default))
    version = question.version
    assert question.answer("postgres", "user-2") is False
    assert then_events(question) == [] and question.version == version
    assert question.decided_by == "user-1" and question.by_default is by_default


def test_a_different_answer_to_an_answered_question_is_refused() -> None:
    question = given(new_question(), answer("postgres"))
    error = then_refused(question, lambda: question.answer("sqlite", "user-2"))
    assert error.details == {"status": "answered"}


def test_a_withdrawn_question_cannot_be_answered() -> None:
    question = given(new_question(), withdraw)
    then_refused(question, lambda: question.answer("postgres", "user-1"))


# ---- checkpoints -------------------------------------------------------------------------------


def test_a_requested_checkpoint_is_pending() -> None:
    checkpoint = new_checkpoint()
    [requested] = checkpoint.collect_events()
    assert type(requested).__name__ == "Requested"
    assert (requested.action, requested.data) == ("delete_files", {"paths": ["migrations/0001.py"]})
    assert checkpoint.status == "pending" and checkpoint.by_default is False


@pytest.mark.parametrize(
    "approved,event,status", [(True, "Approved", "approved"), (False, "Rejected", "rejected")]
)
def test_a_checkpoint_decision_records_the_reason_and_who_made_it(
    approved: bool, event: str, status: str
) -> None:
    checkpoint = given(new_checkpoint())
    assert checkpoint.decide(approved, "checked the paths", "user-1") is True
    [decided] = checkpoint.collect_events()
    assert type(decided).__name__ == event
    assert (decided.reason, decided.actor, decided.by_default) == (
        "checked the paths",
        "user-1",
        False,
    )
    assert checkpoint.status == status and checkpoint.decided_by == "user-1"
    assert checkpoint.reason == "checked the paths"


@pytest.mark.parametrize("approved", [True, False], ids=["approved", "rejected"])
def test_a_checkpoint_decided_by_default_says_so(approved: bool) -> None:
    checkpoint = given(new_checkpoint())
    checkpoint.decide(approved, "deadline passed", "system", by_default=True)
    assert checkpoint.by_default is True and checkpoint.decided_by == "system"


# ---- proposed experiences ----------------------------------------------------------------------


def test_a_proposed_experience_is_pending() -> None:
    experience = new_experience()
    [proposed] = experience.collect_events()
    assert type(proposed).__name__ == "Proposed"
    assert (proposed.title, proposed.tags) == ("Run the migrations first", ["testing"])
    assert experience.status == "pending" and experience.decided_by is None


@pytest.mark.parametrize(
    "approved,event,status", [(True, "Approved", "approved"), (False, "Rejected", "rejected")]
)
def test_an_experience_decision_records_the_reason_and_who_made_it(
    approved: bool, event: str, status: str
) -> None:
    experience = given(new_experience())
    assert experience.decide(approved, "useful", "user-1") is True
    assert then_events(experience) == [event]
    assert (experience.status, experience.reason, experience.decided_by) == (
        status,
        "useful",
        "user-1",
    )


# ---- one decision each, for checkpoints and experiences alike -----------------------------------

DECIDABLE: dict[str, tuple[Callable[[], HitlItem], Callable[[bool], Step]]] = {
    "checkpoint": (new_checkpoint, decide),
    "experience": (new_experience, decide_experience),
}


@pytest.mark.parametrize("new,decision", DECIDABLE.values(), ids=list(DECIDABLE))
@pytest.mark.parametrize("approved", [True, False], ids=["approved", "rejected"])
def test_the_same_decision_twice_is_one_decision(
    new: Callable[[], HitlItem], decision: Callable[[bool], Step], approved: bool
) -> None:
    item = given(new(), decision(approved))
    before, version = copy.deepcopy(item.__dict__), item.version
    assert decision(approved)(item) is False
    assert then_events(item) == [] and item.version == version
    assert item.__dict__ == before


@pytest.mark.parametrize("new,decision", DECIDABLE.values(), ids=list(DECIDABLE))
@pytest.mark.parametrize("approved", [True, False], ids=["approved", "rejected"])
def test_a_contrary_decision_is_refused(
    new: Callable[[], HitlItem], decision: Callable[[bool], Step], approved: bool
) -> None:
    item = given(new(), decision(approved))
    error = then_refused(item, lambda: decision(not approved)(item))
    assert error.details == {"status": "approved" if approved else "rejected"}


@pytest.mark.parametrize("new,decision", DECIDABLE.values(), ids=list(DECIDABLE))
@pytest.mark.parametrize("approved", [True, False], ids=["approved", "rejected"])
def test_a_withdrawn_item_cannot_be_decided(
    new: Callable[[], HitlItem], decision: Callable[[bool], Step], approved: bool
) -> None:
    item = given(new(), withdraw)
    error = then_refused(item, lambda: decision(approved)(item))
    assert error.details == {"status": "withdrawn"}


# ---- withdrawal ----------------------------------------------------------------------------------

NEW_ITEMS: dict[str, Callable[[], HitlItem]] = {
    "question": new_question,
    "checkpoint": new_checkpoint,
    "experience": new_experience,
}
DECISIONS: dict[str, tuple[Callable[[], HitlItem], Step, str]] = {
    "answered question": (new_question, answer(), "answered"),
    "approved checkpoint": (new_checkpoint, decide(True), "approved"),
    "rejected checkpoint": (new_checkpoint, decide(False), "rejected"),
    "approved experience": (new_experience, decide_experience(True), "approved"),
    "rejected experience": (new_experience, decide_experience(False), "rejected"),
}


@pytest.mark.parametrize("new", NEW_ITEMS.values(), ids=list(NEW_ITEMS))
def test_a_pending_item_is_withdrawn_once_with_the_reason(new: Callable[[], HitlItem]) -> None:
    item = given(new())
    withdraw(item)
    withdraw(item)
    [withdrawn] = item.collect_events()
    assert type(withdrawn).__name__ == "Withdrawn"
    assert (withdrawn.reason, withdrawn.actor) == ("the execution ended", "runner")
    assert (item.status, item.reason, item.decided_by) == (
        "withdrawn",
        "the execution ended",
        "runner",
    )


@pytest.mark.parametrize("new,decision,status", DECISIONS.values(), ids=list(DECISIONS))
def test_withdrawing_a_decided_item_records_nothing_and_keeps_the_decision(
    new: Callable[[], HitlItem], decision: Step, status: str
) -> None:
    item = given(new(), decision)
    before = copy.deepcopy(item.__dict__)
    withdraw(item)
    assert then_events(item) == [] and item.__dict__ == before
    assert item.status == status


# ---- replay --------------------------------------------------------------------------------------

HISTORIES: dict[str, tuple[Callable[[], HitlItem], list[Step], list[str]]] = {
    "question answered": (new_question, [answer()], ["Question.Asked", "Question.Answered"]),
    "question answered by default": (
        new_question,
        [answer("sqlite", by_default=True)],
        ["Question.Asked", "Question.Answered"],
    ),
    "question withdrawn": (new_question, [withdraw], ["Question.Asked", "HitlItem.Withdrawn"]),
    "checkpoint approved": (
        new_checkpoint,
        [decide(True)],
        ["Checkpoint.Requested", "Checkpoint.Approved"],
    ),
    "checkpoint rejected by default": (
        new_checkpoint,
        [decide(False, by_default=True)],
        ["Checkpoint.Requested", "Checkpoint.Rejected"],
    ),
    "checkpoint withdrawn": (
        new_checkpoint,
        [withdraw],
        ["Checkpoint.Requested", "HitlItem.Withdrawn"],
    ),
    "experience approved": (
        new_experience,
        [decide_experience(True)],
        ["Experience.Proposed", "Experience.Approved"],
    ),
    "experience rejected": (
        new_experience,
        [decide_experience(False)],
        ["Experience.Proposed", "Experience.Rejected"],
    ),
    "experience withdrawn": (
        new_experience,
        [withdraw],
        ["Experience.Proposed", "HitlItem.Withdrawn"],
    ),
}


@pytest.mark.parametrize("new,steps,topics", HISTORIES.values(), ids=list(HISTORIES))
def test_replaying_the_stored_events_rebuilds_the_item_under_its_public_topics(
    new: Callable[[], HitlItem], steps: list[Step], topics: list[str]
) -> None:
    app = Application[Any]()
    item = new()
    for step in steps:
        step(item)
    app.save(item)
    stored = app.recorder.select_events(item.id)
    assert [e.topic for e in stored] == [f"domain.hitl:{topic}" for topic in topics]
    replayed = app.repository.get(item.id)
    assert type(replayed) is type(item)
    assert replayed.__dict__ == item.__dict__
