"""``taskwarden analytics grant <role>``: lets a Postgres role read the ``analytics`` views.

The role must exist (``CREATE ROLE analyst LOGIN PASSWORD ...``, by the database's owner); it gets
USAGE on the schema and SELECT on its views (and on any view a later ``taskwarden migrate`` adds),
nothing on the ``tw_*`` tables. The views hold every team's rows (docs/costs.md, "SQL views for
BI tools"). SQLite has no such views: the command needs Postgres.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from infrastructure.settings import Settings


def add(commands: Any) -> None:
    analytics = commands.add_parser(
        "analytics", help="the read-only SQL views for BI tools (Postgres)"
    )
    actions = analytics.add_subparsers(dest="action", required=True)
    grant = actions.add_parser(
        "grant", help="let a Postgres role SELECT from the analytics views, and nothing else"
    )
    grant.add_argument("role", help="an existing Postgres role")


def run(settings: Settings, args: argparse.Namespace) -> int:
    import psycopg  # noqa: PLC0415

    from infrastructure.analytics_views import (  # noqa: PLC0415
        SCHEMA,
        AnalyticsMissingError,
        RoleNameError,
        UnknownRoleError,
        grant_analytics,
    )

    if not settings.uses_postgres or settings.database_url is None:
        print(
            "taskwarden analytics needs Postgres (TASKWARDEN_DATABASE_URL): "
            "the analytics views exist only there",
            file=sys.stderr,
        )
        return 2
    try:
        grant_analytics(settings.database_url, args.role)
    except RoleNameError as error:
        print(error, file=sys.stderr)
        return 2
    except (UnknownRoleError, AnalyticsMissingError, psycopg.Error) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"granted {args.role!r} SELECT on the {SCHEMA} views")
    return 0
