"""Which events a subscription receives, and where each belongs: read from the event alone."""

from __future__ import annotations

import msgspec

from application.public_events import PublicEvent
from interfaces.ws.filter import Filter, Place, Spec
from interfaces.ws.messages import event_message

TASK, PROJECT, OTHER = "task-1", "project-1", "project-2"


def event(aggregate: str, kind: str, *, task: str | None, project: str | None) -> PublicEvent:
    return PublicEvent(
        position=7,
        type=f"{aggregate}.{kind}",
        team_id="team-1",
        aggregate=aggregate,
        aggregate_id="a-1",
        project_id=project,
        task_id=task,
        version=2,
        timestamp="2026-01-01T00:00:00Z",
        actor=None,
        data={},
    )


ANSWERED = event("question", "answered", task=TASK, project=PROJECT)


def test_a_later_event_of_a_question_is_placed_by_what_it_carries():
    follows_task = Filter(Spec(channel="hitl", task_id=TASK), "team-1", None)
    assert follows_task.place(ANSWERED) == Place(TASK, PROJECT)
    follows_other = Filter(Spec(channel="hitl", task_id="task-2"), "team-1", None)
    assert follows_other.place(ANSWERED) is None


def test_a_project_scoped_key_sees_only_its_project():
    mine = Filter(Spec(channel="task_updates"), "team-1", PROJECT)
    theirs = Filter(Spec(channel="task_updates"), "team-1", OTHER)
    assert mine.place(ANSWERED) == Place(TASK, PROJECT)
    assert theirs.place(ANSWERED) is None
    paused = event("queue", "paused", task=None, project=None)
    assert Filter(Spec(channel="queue_status"), "team-1", None).place(paused) == Place(None, None)
    assert Filter(Spec(channel="queue_status"), "team-1", PROJECT).place(paused) is None


def test_another_teams_event_and_an_irrelevant_kind_are_not_received():
    assert Filter(Spec(channel="hitl"), "team-2", None).place(ANSWERED) is None
    updated = event("project", "updated", task=None, project=PROJECT)
    assert Filter(Spec(channel="hitl"), "team-1", None).place(updated) is None
    follows = Filter(Spec(channel="project_updates", project_id=PROJECT), "team-1", None)
    assert follows.place(updated) == Place(None, PROJECT)


def test_a_budget_notice_reaches_people_queue_watchers_and_its_project():
    team_limit = event("budget", "exceeded", task=None, project=None)
    for channel in ("hitl", "queue_status", "project_updates"):
        assert Filter(Spec(channel=channel), "team-1", None).place(team_limit) == Place(None, None)
    assert Filter(Spec(channel="task_updates"), "team-1", None).place(team_limit) is None
    assert Filter(Spec(channel="hitl"), "team-2", None).place(team_limit) is None
    assert Filter(Spec(channel="hitl"), "team-1", PROJECT).place(team_limit) is None
    project_budget = event("budget", "threshold_reached", task=None, project=PROJECT)
    follows = Filter(Spec(channel="project_updates", project_id=PROJECT), "team-1", None)
    assert follows.place(project_budget) == Place(None, PROJECT)
    assert Filter(Spec(channel="hitl"), "team-1", PROJECT).place(project_budget) is not None
    assert Filter(Spec(channel="hitl"), "team-1", OTHER).place(project_budget) is None


def test_a_budget_event_is_a_notification_that_says_what_was_spent():
    exceeded = msgspec.structs.replace(
        event("budget", "exceeded", task=None, project=None),
        data={
            "scope": "team",
            "period": "2026-12-03",
            "percent": 100,
            "spent_usd": 10.5,
            "limit_usd": 10.0,
        },
    )
    message = event_message(exceeded, "sub-1", None, None)
    assert message["type"] == "notification" and message["position"] == 7
    data = message["data"]
    assert data["level"] == "critical" and data["kind"] == "budget"
    assert "daily cost limit for 2026-12-03 is spent" in data["message"]
    assert "10.50 of 10.00 USD" in data["message"] and data["event"] == "budget.exceeded"
    reached = msgspec.structs.replace(
        exceeded, type="budget.threshold_reached", data={**exceeded.data, "percent": 80}
    )
    data = event_message(reached, "sub-1", None, None)["data"]
    assert data["level"] == "warning" and data["title"] == "Budget 80% reached"
