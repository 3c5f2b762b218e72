"""The ``analytics`` views for BI tools (infrastructure/analytics_views.py) on real Postgres:
``taskwarden migrate`` creates them with every column documented, and ``taskwarden analytics grant
<role>`` lets a role read them and nothing else; a bad or unknown role, a database not migrated
and SQLite are refused with a clear message."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from infrastructure.analytics_views import (
    SCHEMA,
    VIEWS,
    AnalyticsMissingError,
    RoleNameError,
    UnknownRoleError,
    grant_analytics,
)
from infrastructure.settings import Settings
from interfaces.cli import main
from interfaces.services import migrate

DOCS = Path(__file__).resolve().parents[2] / "docs" / "costs.md"


@pytest.fixture
def migrated(postgres_url: str, tmp_path: Path) -> str:
    migrate(Settings(data_dir=tmp_path / "data", database_url=postgres_url))
    return postgres_url


@pytest.fixture
def cli_env(postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TASKWARDEN_DATABASE_URL", postgres_url)


def create_role(admin: str, database: str, name: str) -> Iterator[str]:
    """A login role of the test's own, dropped afterwards with what it was granted in
    ``database`` (roles belong to the server, not to the test's database)."""
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(database, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def analyst(postgres_admin_url: str, postgres_url: str) -> Iterator[str]:
    yield from create_role(postgres_admin_url, postgres_url, f"tw_analyst_{secrets.token_hex(4)}")


def as_role(url: str, role: str) -> psycopg.Connection:
    return psycopg.connect(make_conninfo(url, user=role), autocommit=True)


def columns_of(url: str) -> dict[str, list[tuple[str, str | None]]]:
    """Each view of the schema: its columns in order, with their comments."""
    statement = """
        SELECT c.relname, a.attname, col_description(c.oid, a.attnum)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = %s AND c.relkind = 'v' ORDER BY c.relname, a.attnum"""
    found: dict[str, list[tuple[str, str | None]]] = {}
    with psycopg.connect(url) as conn:
        for view, column, comment in conn.execute(statement, [SCHEMA]).fetchall():
            found.setdefault(view, []).append((column, comment))
    return found


def test_migrate_creates_every_view_with_its_columns_documented_and_again_changes_nothing(
    migrated: str, tmp_path: Path
):
    expected = {v.name: [(c, m) for c, m in v.columns.items()] for v in VIEWS}
    assert columns_of(migrated) == expected
    migrate(Settings(data_dir=tmp_path / "data", database_url=migrated))
    assert columns_of(migrated) == expected
    with psycopg.connect(migrated) as conn:
        for view in VIEWS:
            about = conn.execute(
                "SELECT obj_description(%s::regclass, 'pg_class')", [f"{SCHEMA}.{view.name}"]
            ).fetchone()
            assert about == (view.about,)


def test_the_docs_list_every_view_and_every_column():
    text = DOCS.read_text()
    section = text[text.index("## SQL views for BI tools") :]
    for view in VIEWS:
        start = section.index(f"### `{SCHEMA}.{view.name}`")
        end = section.find("\n### ", start + 1)
        documented = re.findall(r"^\| `(\w+)` \|", section[start : end if end > 0 else None], re.M)
        assert documented == list(view.columns), view.name


def test_a_granted_role_reads_every_view_and_none_of_the_tables(migrated, analyst, cli_env):
    with as_role(migrated, analyst) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM analytics.cost_daily")
    assert main(["analytics", "grant", analyst]) == 0
    assert main(["analytics", "grant", analyst]) == 0  # again: nothing changes
    with psycopg.connect(migrated) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
    assert "tw_costs" in tables and "tw_tasks" in tables
    with as_role(migrated, analyst) as conn:
        for view in VIEWS:
            conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(SCHEMA, view.name)))
        for table in tables:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE analytics.projects SET name = 'x'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM analytics.costs")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE VIEW analytics.mine AS SELECT 1 AS one")


def test_a_view_a_later_migrate_adds_is_readable_by_a_role_granted_before(
    migrated, analyst, cli_env
):
    assert main(["analytics", "grant", analyst]) == 0
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute("CREATE VIEW analytics.later AS SELECT team_id FROM tw_projects")
    with as_role(migrated, analyst) as conn:
        assert conn.execute("SELECT * FROM analytics.later").fetchall() == []


def test_a_role_name_is_quoted_as_an_identifier_never_formatted_into_the_sql(
    postgres_admin_url, migrated, cli_env
):
    odd = f'ana "lyst"; DROP TABLE tw_tasks; -- {secrets.token_hex(3)}'
    made = create_role(postgres_admin_url, migrated, odd)
    role = next(made)
    try:
        assert main(["analytics", "grant", role]) == 0
        with as_role(migrated, role) as conn:
            assert conn.execute("SELECT count(*) FROM analytics.task_facts").fetchone() == (0,)
        with psycopg.connect(migrated) as conn:
            assert conn.execute("SELECT count(*) FROM tw_tasks").fetchone() == (0,)
    finally:
        next(made, None)


@pytest.mark.parametrize("name", ["", "x" * 64, "a\x00b", "public", "PUBLIC", "none"])
def test_a_name_that_is_no_role_name_is_refused_before_any_sql(migrated, cli_env, capsys, name):
    with pytest.raises(RoleNameError):
        grant_analytics("postgresql://nobody@127.0.0.1:1/none", name)  # never connects
    assert main(["analytics", "grant", name]) == 2
    assert "role" in capsys.readouterr().err


def test_an_unknown_role_is_a_clear_error_and_exit_1(migrated, cli_env, capsys):
    missing = f"tw_nobody_{secrets.token_hex(4)}"
    with pytest.raises(UnknownRoleError):
        grant_analytics(migrated, missing)
    assert main(["analytics", "grant", missing]) == 1
    assert f"no role '{missing}'" in capsys.readouterr().err


def test_before_migrate_the_grant_says_to_run_migrate(postgres_url, analyst, cli_env, capsys):
    with pytest.raises(AnalyticsMissingError):
        grant_analytics(postgres_url, analyst)
    assert main(["analytics", "grant", analyst]) == 1
    assert "taskwarden migrate" in capsys.readouterr().err


def test_on_sqlite_the_command_says_it_needs_postgres(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("TASKWARDEN_DATABASE_URL", raising=False)
    assert main(["analytics", "grant", "analyst"]) == 2
    assert "needs Postgres" in capsys.readouterr().err
