"""The KPI counts (projections/kpis.py) in SQL, shared by SQLite and Postgres: the team's live
projects, its tasks per status (the tasks of a deleted project left the listings with it) and the
distinct models and providers in its cost rollups (``tw_costs``), all narrowed to one project when
asked. Each is one indexed aggregate over the team's rows."""

from __future__ import annotations

from infrastructure.sql_backend import SqlBackend
from projections.costs import UNKNOWN
from projections.kpis import KpiCounts


class SqlKpiViews(SqlBackend):
    """Mixed into SqlReadModel, which supplies the cursors and the backend's placeholders."""

    def kpi_counts(self, team_id: str, project_id: str | None) -> KpiCounts:
        narrow, more = ("", []) if project_id is None else (" AND project_id = ?", [project_id])
        one = "" if project_id is None else " AND id = ?"
        projects = f"SELECT COUNT(*) FROM tw_projects WHERE team_id = ?{one}"  # noqa: S608
        statuses = (
            "SELECT status, COUNT(*) FROM tw_tasks WHERE team_id = ? "  # noqa: S608
            f"AND project_id IN (SELECT id FROM tw_projects WHERE team_id = ?){narrow} "
            "GROUP BY status"
        )
        used = (
            "SELECT COUNT(DISTINCT CASE WHEN model <> ? THEN model END), "  # noqa: S608
            "COUNT(DISTINCT CASE WHEN provider <> ? THEN provider END) "
            f"FROM tw_costs WHERE team_id = ?{narrow}"
        )
        with self._reading() as cur:
            n_projects = self._run(cur, projects, [team_id, *more]).fetchone()[0]
            counted = self._run(cur, statuses, [team_id, team_id, *more]).fetchall()
            models, providers = self._run(cur, used, [UNKNOWN, UNKNOWN, team_id, *more]).fetchone()
        return KpiCounts(
            projects=int(n_projects),
            statuses={str(status): int(n) for status, n in counted},
            models=int(models),
            providers=int(providers),
        )
