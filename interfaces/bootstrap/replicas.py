"""What each of the processes of ``taskwarden serve --workers N`` runs, and when N > 1 is refused.

The first process (index 0) is the api role exactly as the environment configures it: the
projection runner (``TASKWARDEN_RUN_PROJECTIONS``), and the relay, the webhook queue and
in-process workers when their settings ask for them. Every other process is API-only: no
projection runner, no relay, no webhook queue, no workers, no admin bootstrap. Each process has
its own Store and committer (the event table's lock orders their transactions into one log) and
answers ``?min_position=`` by reading the shared read model's tracking position
(``ProjectionRunner.wait_for``), so a write answered by one process is read by another.

N > 1 needs what the processes must share outside of themselves:

- Postgres (``TASKWARDEN_DATABASE_URL``): the event store, the read model, and the rate limits
  (``infrastructure/rate_limit_postgres.py``). In the embedded mode (SQLite, or the events in
  memory) the rate limiter is in each process's memory, so N processes would allow N times the
  limits; and SQLite takes one writer at a time anyway.
- NATS (``TASKWARDEN_NATS_URL``): the in-process bus lives in one process, so a WebSocket client
  of another process would get no live events, and the webhook queue would have one consumer per
  process.
"""

from __future__ import annotations

import msgspec

from infrastructure.settings import Settings

MAX_WORKERS = 64


def refusal(settings: Settings, workers: int) -> str | None:
    """Why ``--workers`` cannot be served with these settings (None: it can)."""
    if workers < 1 or workers > MAX_WORKERS:
        return f"--workers must be between 1 and {MAX_WORKERS}"
    if workers == 1:
        return None
    if not settings.uses_postgres:
        return (
            "--workers > 1 needs Postgres (TASKWARDEN_DATABASE_URL): in the embedded mode the "
            "rate limits are kept in each process's memory and SQLite has one writer at a time; "
            "run one process (docs/operations.md, 'Several processes')"
        )
    if not settings.nats_url:
        return (
            "--workers > 1 needs NATS (TASKWARDEN_NATS_URL): the in-process bus serves one "
            "process, so WebSocket clients of the others would get no live events "
            "(docs/operations.md, 'Several processes')"
        )
    return None


def replica_settings(settings: Settings, index: int) -> Settings:
    """Process ``index``'s settings: the first one's own, the others' API-only."""
    if index == 0:
        return settings
    return msgspec.structs.replace(
        settings, run_projections=False, run_relay=False, run_webhooks=False, workers=0
    )
