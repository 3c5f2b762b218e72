"""The analytics answer's shape (application/analytics.py): the period's days, rates that are null
while nothing counts, and trends with every day of the period listed."""

from __future__ import annotations

from datetime import date

import pytest

from application.analytics import days_between, rate, shaped, window
from projections.analytics import (
    AgentFigures,
    DayCounts,
    Outcomes,
    PersonFigures,
    ProjectFigures,
    Spread,
    Waits,
)

TODAY = date(2026, 3, 1)


@pytest.mark.parametrize(
    ("period", "first"),
    [("7d", date(2026, 2, 23)), ("30d", date(2026, 1, 31)), ("90d", date(2025, 12, 2)),
     ("1y", date(2025, 3, 2))],
)  # fmt: skip
def test_a_period_is_its_number_of_utc_days_ending_today(period, first):
    assert window(TODAY, period) == (first, TODAY)
    days = days_between(*window(TODAY, period))
    assert days[0] == first.isoformat() and days[-1] == "2026-03-01"
    assert len(days) == {"7d": 7, "30d": 30, "90d": 90, "1y": 365}[period]


def test_a_rate_is_a_fraction_of_three_decimals_and_null_with_nothing_to_rate():
    assert rate(2, 3) == 0.667 and rate(0, 4) == 0.0 and rate(0, 0) is None


def test_the_answer_lists_every_day_and_shapes_people_and_agents():
    figures = ProjectFigures(
        outcomes=Outcomes(created=4, completed=2, failed=1, cancelled=1, on_time=1, rated=2),
        days=[DayCounts(day="2026-02-28", created=4, completed=2, failed=1)],
        duration=Spread(count=2, total=30.0, average=15.0, median=15.0),
        pickup=Spread(count=3, total=9.0, average=3.0, median=2.0),
        waits=Waits(waits=3, seconds=90.0, tasks=2, open=1),
        people=[
            PersonFigures(
                person="user:ann",
                finished=3,
                completed=2,
                average_duration=15.0,
                on_time=1,
                rated=2,
            )
        ],  # fmt: skip
        agents=[
            AgentFigures(
                agent="codex",
                tasks=2,
                executions=4,
                retries=2,
                failures=2,
                reasons={"b": 1, "a": 1, "c": 3},
            )
        ],  # fmt: skip
    )
    days = days_between(*window(TODAY, "7d"))
    answer = shaped(figures, days, {"user:ann": "Ann Lee"})
    assert answer["summary"]["completion_rate"] == 0.5 and answer["summary"]["total_tasks"] == 4
    trends = answer["task_trends"]
    assert trends["created_per_day"] == [0, 0, 0, 0, 0, 4, 0]
    assert trends["completed_per_day"] == [0, 0, 0, 0, 0, 2, 0]
    assert trends["failed_per_day"] == [0, 0, 0, 0, 0, 1, 0]
    assert answer["performance_metrics"]["on_time_completion_rate"] == 0.5
    assert answer["team_performance"] == [
        {"user_id": "ann", "user_name": "Ann Lee", "tasks_finished": 3, "tasks_completed": 2,
         "average_duration": 15.0, "completion_rate": 0.667, "on_time_completion_rate": 0.5}
    ]  # fmt: skip
    assert answer["waiting_on_people"]["average_seconds_per_task"] == 45.0
    assert answer["time_to_first_pickup"] == {
        "tasks": 3, "average_seconds": 3.0, "median_seconds": 2.0
    }  # fmt: skip
    [agent] = answer["agents"]
    assert agent["failure_reasons"] == [
        {"reason": "c", "tasks": 3}, {"reason": "a", "tasks": 1}, {"reason": "b", "tasks": 1}
    ]  # fmt: skip
