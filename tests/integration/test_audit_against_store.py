"""``taskwarden audit verify FILE --against-store`` and ``taskwarden audit check-store`` on SQLite
and Postgres: an intact store and export pass; a row rewritten in the database after the export,
or before it, is reported with its position (exit 1, one line)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from infrastructure.event_store import EVENTS_FILE
from infrastructure.settings import Settings
from interfaces.cli import main
from interfaces.services import migrate
from tests.builders import a_task
from tests.stores import open_store

TEAMS = ["team-1", "team-2", "team-1", "team-2", "team-1", "team-2"]


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Six events, one per commit, of two teams, in a store the CLI reads."""
    data = tmp_path / "data"
    for name in ("TASKWARDEN_DATABASE_URL", "TASKWARDEN_AUDIT_KEY_FILE", "TASKWARDEN_MEMORY_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(data))
    if database_url:
        monkeypatch.setenv("TASKWARDEN_DATABASE_URL", database_url)
    settings = Settings(data_dir=data, database_url=database_url)
    migrate(settings)
    store = open_store(settings, create_tables=False)
    try:
        for n, team in enumerate(TEAMS):
            store.commit(a_task(team_id=team, title=f"task {n}"))
        store.commit(*[a_task(team_id="team-1", title=f"batch {n}") for n in range(3)])  # 7-9
    finally:
        store.close()
    return settings


def run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    out, err = capsysbinary.readouterr()
    return code, out.decode(), err.decode()


def exported(capsysbinary, tmp_path: Path, *argv: str) -> Path:
    code, out, _ = run(capsysbinary, "export", *argv)
    assert code == 0
    path = tmp_path / f"audit{len(list(tmp_path.glob('audit*')))}.jsonl"
    path.write_text(out)
    return path


def rewrite(settings: Settings, position: int, old: bytes, new: bytes) -> None:
    """An edit of one stored row, straight in the database."""
    if settings.uses_postgres:
        with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
            conn.execute(
                "UPDATE taskwarden_events SET state = "
                "convert_to(replace(convert_from(state, 'UTF8'), %s, %s), 'UTF8') "
                "WHERE notification_id = %s",
                (old.decode(), new.decode(), position),
            )
        return
    with sqlite3.connect(settings.data_dir / EVENTS_FILE) as conn:
        (state,) = conn.execute(
            "SELECT state FROM stored_events WHERE rowid = ?", (position,)
        ).fetchone()
        assert old in state
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?",
            (state.replace(old, new), position),
        )


def test_an_intact_store_and_export_pass(settings, tmp_path, capsysbinary):
    code, out, _ = run(capsysbinary, "check-store")
    assert code == 0
    assert out.startswith("intact: every stored event up to position 9 as digested")
    for argv in ((), ("--team", "team-2"), ("--from", "3")):
        path = exported(capsysbinary, tmp_path, *argv)
        code, out, err = run(capsysbinary, "verify", str(path), "--against-store")
        assert code == 0, err
        assert out.startswith("intact:")


def test_a_row_rewritten_after_the_export_is_found_at_its_position(
    settings, tmp_path, capsysbinary
):
    whole = exported(capsysbinary, tmp_path)
    team = exported(capsysbinary, tmp_path, "--team", "team-2")
    rewrite(settings, 4, b"task 3", b"task X")
    for path in (whole, team):
        code, out, err = run(capsysbinary, "verify", str(path))
        assert code == 0  # the file alone is intact: it is the store that changed
        code, out, err = run(capsysbinary, "verify", str(path), "--against-store")
        assert code == 1
        assert err.count("\n") == 1
        assert err.startswith("store: position 4: the stored event differs from the exported")
    code, _, err = run(capsysbinary, "check-store")
    assert code == 1
    assert err.startswith("store: position 4: the stored events at positions 4 are not")


def test_a_row_rewritten_before_the_export_is_found_by_the_digests(
    settings, tmp_path, capsysbinary
):
    rewrite(settings, 2, b"task 1", b"task Y")
    whole = exported(capsysbinary, tmp_path)  # carries the rewritten row, and chains it
    code, _, err = run(capsysbinary, "verify", str(whole), "--against-store")
    assert code == 1
    assert err.startswith("store: position 2: the export's hash differs from the store's digest")
    team = exported(capsysbinary, tmp_path, "--team", "team-1")  # not the whole log's hashes
    code, _, err = run(capsysbinary, "verify", str(team), "--against-store")
    assert code == 1
    assert err.startswith("store: position 2: the stored events at positions 2 are not")


def test_a_row_of_a_group_commit_is_found_within_its_transaction(settings, tmp_path, capsysbinary):
    whole = exported(capsysbinary, tmp_path)
    rewrite(settings, 8, b"batch 1", b"batch Z")
    code, _, err = run(capsysbinary, "check-store")
    assert code == 1
    assert err.startswith("store: position 9: the stored events at positions 7 to 9 are not")
    code, _, err = run(capsysbinary, "verify", str(whole), "--against-store")
    assert code == 1
    assert err.startswith("store: position 8: the stored event differs")  # the file says which
