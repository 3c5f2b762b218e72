"""A project's analytics (seed 000's "Project Analytics", docs/analytics.md): its tasks' outcomes,
trends per UTC day, durations, on-time rate and each person's performance over a period, with time
to first pickup, time waiting on people, retries and failure reasons per agent, read from the task
facts (projections/task_facts.py) only.

The project is loaded through the Store first, so another team's project, or for a project-scoped
caller another project, is not found before the read model is asked. The period ends today (UTC,
the Store's clock) and covers its number of days, today included. Durations are seconds; a rate
is a fraction with three decimals, None while nothing counts towards it.
"""

from __future__ import annotations

from datetime import UTC, date, timedelta
from typing import Any

from application.errors import NotFoundError
from application.store import Store
from domain.project import Project
from domain.user import User
from projections.analytics import AgentFigures, FactWindow, PersonFigures, ProjectFigures
from projections.read_model import ReadModel

PERIODS = {"7d": 7, "30d": 30, "90d": 90, "1y": 365}
DEFAULT_PERIOD = "30d"
USER = "user:"  # how a signed-in person is named as an actor


def window(today: date, period: str) -> tuple[date, date]:
    """The first and the last UTC day of the period that ends ``today``."""
    return today - timedelta(days=PERIODS[period] - 1), today


def rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 3)


def days_between(first: date, last: date) -> list[str]:
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def project_analytics(
    store: Store, views: ReadModel, team_id: str, project_ref: str, period: str
) -> dict[str, Any]:
    project_id = str(store.load_live(Project, project_ref, team_id, "project").id)
    first, last = window(store.clock.now().astimezone(UTC).date(), period)
    figures = views.project_figures(
        FactWindow(
            team_id=team_id,
            project_id=project_id,
            day_from=first.isoformat(),
            day_to=last.isoformat(),
        )
    )
    names = {p.person: user_name(store, team_id, p.person) for p in figures.people}
    return {
        "project_id": project_id,
        "period": period,
        "from": first.isoformat(),
        "to": last.isoformat(),
        **shaped(figures, days_between(first, last), names),
    }


def shaped(
    figures: ProjectFigures, days: list[str], names: dict[str, str | None]
) -> dict[str, Any]:
    """The answer's sections from the figures; ``days``: every day of the period, in order."""
    o, duration = figures.outcomes, figures.duration
    finished = o.completed + o.failed + o.cancelled
    by_day = {d.day: d for d in figures.days}
    waits = figures.waits
    return {
        "summary": {
            "total_tasks": o.created,
            "completed_tasks": o.completed,
            "failed_tasks": o.failed,
            "cancelled_tasks": o.cancelled,
            "completion_rate": rate(o.completed, finished),
            "average_completion_time": duration.average,
            "productivity_score": None,  # seed 000 names it without defining it
        },
        "task_trends": {
            "days": days,
            "created_per_day": [by_day[d].created if d in by_day else 0 for d in days],
            "completed_per_day": [by_day[d].completed if d in by_day else 0 for d in days],
            "failed_per_day": [by_day[d].failed if d in by_day else 0 for d in days],
        },
        "performance_metrics": {
            "average_task_duration": duration.average,
            "median_task_duration": duration.median,
            "completed_executions": duration.count,
            "completion_rate": rate(o.completed, finished),
            "on_time_completion_rate": rate(o.on_time, o.rated),
            "on_time_rated": o.rated,
        },
        "team_performance": [person(p, names.get(p.person)) for p in figures.people],
        "time_to_first_pickup": {
            "tasks": figures.pickup.count,
            "average_seconds": figures.pickup.average,
            "median_seconds": figures.pickup.median,
        },
        "waiting_on_people": {
            "waits": waits.waits,
            "tasks": waits.tasks,
            "total_seconds": waits.seconds,
            "average_seconds_per_task": None if not waits.tasks else waits.seconds / waits.tasks,
            "open_waits": waits.open,
        },
        "agents": [agent(a) for a in figures.agents],
    }


def person(p: PersonFigures, name: str | None) -> dict[str, Any]:
    return {
        "user_id": p.person.removeprefix(USER),
        "user_name": name,
        "tasks_finished": p.finished,
        "tasks_completed": p.completed,
        "average_duration": p.average_duration,
        "completion_rate": rate(p.completed, p.finished),
        "on_time_completion_rate": rate(p.on_time, p.rated),
    }


def agent(a: AgentFigures) -> dict[str, Any]:
    reasons = sorted(a.reasons.items(), key=lambda item: (-item[1], item[0]))
    return {
        "agent": a.agent,
        "tasks": a.tasks,
        "executions": a.executions,
        "retries": a.retries,
        "failures": a.failures,
        "failure_reasons": [{"reason": reason, "tasks": n} for reason, n in reasons],
    }


def user_name(store: Store, team_id: str, who: str) -> str | None:
    """The person's full name (else username) when they are a user of the team."""
    try:
        user = store.load_ref(User, who.removeprefix(USER), team_id, "user")
    except NotFoundError:
        return None
    return user.full_name or user.username
