"""The abstract read model: one database holds every view and one tracking position."""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime

from projections.analytics import FactWindow, ProjectFigures
from projections.cost_rows import CostGroup, CostQuery, Grouping
from projections.costs import CostTotals
from projections.execution_rows import HitlQuery, HitlRow, OutputRow, QueueRow
from projections.kpis import KpiCounts
from projections.rows import (
    ActivityRow,
    Page,
    ProjectQuery,
    ProjectStats,
    TaskPage,
    TaskQuery,
)


class ReadModel(ABC):
    @abstractmethod
    def migrate(self) -> None:
        """Creates tables and indexes idempotently (only an explicit migrate step calls this)."""

    @abstractmethod
    def reset(self) -> None:
        """Empties every view and sets the position back to 0: the runner then projects the whole
        log again (``taskwarden projections --rebuild``)."""

    @abstractmethod
    def position(self) -> int:
        """The last position applied, 0 if none."""

    @abstractmethod
    def apply(self, events: list[tuple[int, object]], after: int | None = None) -> int:
        """Applies ``(position, domain event)`` pairs in order, exactly once.

        Writes every affected row and the new tracking position in one transaction, under a lock,
        skipping events at or below the stored position. Returns the new position. ``after``:
        the position the caller read the events after; if the stored one is behind it (the
        views were reset since), nothing is applied and the stored position is returned, to
        read from there.
        """

    @abstractmethod
    def list_tasks(self, team_id: str, q: TaskQuery, raw: bool = False) -> TaskPage:
        """Live tasks of the team that match the query; ``raw``: the items are the stored rows'
        JSON (``msgspec.Raw``), for a response that embeds them as they are."""

    @abstractmethod
    def list_projects(self, team_id: str, q: ProjectQuery) -> Page:
        """Live projects of the team that match the query, each with its statistics."""

    @abstractmethod
    def project_statistics(self, team_id: str, project_id: str) -> ProjectStats: ...

    @abstractmethod
    def recent_activity(
        self, team_id: str, project_id: str, limit: int = 20
    ) -> list[ActivityRow]: ...

    @abstractmethod
    def task_ids_of_project(self, team_id: str, project_id: str) -> list[str]:
        """The project's live tasks."""

    def task_ids_at(
        self, team_id: str, project_id: str, at: int | datetime, limit: int
    ) -> list[str]:
        """The project's tasks alive at ``at`` (a position or a time): created by then and not
        yet deleted, deleted ones included (``tw_task_members``), oldest first, at most
        ``limit``."""
        raise NotImplementedError

    # ---- execution (projections/execution_rows.py) ----------------------------------------

    @abstractmethod
    def queued(self, limit: int = 200) -> list[QueueRow]:
        """Every team's queued executions (state queued), highest priority then oldest first."""

    @abstractmethod
    def in_flight(self, team_id: str | None = None) -> list[QueueRow]:
        """Queue rows of every state (of one team, or all), oldest first."""

    @abstractmethod
    def queue_row(self, task_id: str) -> QueueRow | None: ...

    @abstractmethod
    def hitl_items(self, team_id: str, q: HitlQuery) -> tuple[list[HitlRow], int]:
        """The team's items matching the query, newest first, and how many match in all."""

    def hitl_kinds(
        self, team_id: str, task_id: str, kinds: tuple[str, ...], limit: int
    ) -> dict[str, str]:
        """The task's items of these kinds (question, checkpoint, experience): id to kind,
        oldest first, at most ``limit`` (a timeline's items, without their rows)."""
        raise NotImplementedError

    def timeline(
        self,
        team_id: str,
        task_id: str,
        span: tuple[int, int],
        kinds: frozenset[str] | None,
        limit: int,
    ) -> list[tuple[int, str]]:
        """``(position, kind)`` of the task's own and its items' events in ``(after, upto]``
        (``tw_timeline``, kinds from ``projections/timeline.py``), of ``kinds`` (None: all),
        in log order, at most ``limit``."""
        raise NotImplementedError

    def timeline_span(self) -> tuple[int, int]:
        """``(start, applied)``: the index holds every event after ``start`` up to ``applied``,
        the position the read model has applied (``start`` is 0 unless the read model was
        migrated from before the index existed: it holds none of the events before it)."""
        return 0, self.position()

    @abstractmethod
    def hitl_due(self, now: float, limit: int = 100) -> list[HitlRow]:
        """Pending questions and checkpoints of every team whose deadline has passed."""

    @abstractmethod
    def output(
        self, team_id: str, task_id: str, after: int = 0, limit: int = 1000
    ) -> list[OutputRow]:
        """The task's output chunks after log position ``after``, in order."""

    # ---- costs (projections/costs.py) -------------------------------------------------------

    def cost_totals(self, team_id: str, q: CostQuery) -> CostTotals:
        """The team's usage the query covers, summed."""
        raise NotImplementedError

    def cost_groups(self, team_id: str, q: CostQuery, by: Grouping) -> list[CostGroup]:
        """Summed per day (in date order), or per model, project, agent, task or execution
        (costliest first)."""
        raise NotImplementedError

    def cost_rows(self, team_id: str, q: CostQuery) -> Page:
        """The rollup rows themselves (``CostRow``), newest day first."""
        raise NotImplementedError

    def task_slugs(self, team_id: str, task_ids: list[str]) -> dict[str, str | None]:
        """The slug of each of the team's tasks the read model still has, by id."""
        raise NotImplementedError

    # ---- KPIs (projections/kpis.py) ----------------------------------------------------------

    def kpi_counts(self, team_id: str, project_id: str | None) -> KpiCounts:
        """The team's (or one of its projects') live projects, live tasks per status, and the
        distinct models and providers that reported usage."""
        raise NotImplementedError

    # ---- analytics (projections/task_facts.py, projections/analytics.py) --------------------

    def project_figures(self, w: FactWindow) -> ProjectFigures:
        """One project's task facts over a window of UTC days, summed."""
        raise NotImplementedError

    @abstractmethod
    def ping(self) -> None:
        """Raises if the database is unreachable."""

    def refresh_statistics(self) -> None:
        """Tells the database's planner what the tables now hold, after many rows were written
        at once (``ProjectionRunner``: a rebuild or a long catch-up). Nothing by default: the
        in-memory views plan nothing, and SQLite's are read by plans that assume no statistics
        (``SqlTaskListing.keeps_statistics``)."""
        return

    # ---- quarantine (docs/operations.md, "Quarantine") ---------------------------------------

    def probe(self) -> None:
        """Raises unless the read model can be written now. After a failed ``apply`` it tells an
        outage (nothing can be written) from an event the views cannot take."""
        self.ping()

    def skip(self, position: int) -> None:
        """Moves the tracking position up to ``position`` if it is behind: the runner passes over
        an event it quarantined (every event before it is applied)."""
        raise NotImplementedError

    def apply_late(self, position: int, event: object) -> bool:
        """Applies one event behind the tracking position (a quarantined event a retry released)
        at most once; False if it was applied late before. The rows it touches change from
        their present state, as if it came last; the tracking position stays."""
        raise NotImplementedError

    @abstractmethod
    def close(self) -> None: ...
