"""Opens the read model the settings ask for: SQLite in the data directory, or Postgres."""

from __future__ import annotations

from infrastructure.settings import Settings
from projections.read_model import ReadModel

SQLITE_FILE = "views.sqlite3"


def open_read_model(settings: Settings) -> ReadModel:
    """Opens, never migrates: tables are created by the explicit migrate step."""
    if settings.uses_postgres:
        from infrastructure.postgres_views import PostgresReadModel  # noqa: PLC0415

        return PostgresReadModel(
            settings.database_url or "", timeout=settings.database_timeout_seconds
        )
    from infrastructure.sqlite_views import SqliteReadModel  # noqa: PLC0415

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteReadModel(settings.data_dir / SQLITE_FILE)
