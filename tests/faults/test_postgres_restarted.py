"""Postgres stopped (fast shutdown) and started again while clients write through one API.

The server is the test's own (never the machine's shared one). While it is down, requests are
answered 503 in the envelope, never a 500 and never later than the client's timeout; the API
process keeps running, and once Postgres is back the same process writes again (the clients'
retries, with the same Idempotency-Keys, go through) and its read model catches up. Every
acknowledged write is there afterwards and no key made two tasks.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.faults.api import Api, environment, wait_for
from tests.faults.checks import assert_no_write_lost_or_doubled
from tests.faults.private_postgres import PrivatePostgres
from tests.faults.processes import Processes
from tests.faults.writers import Writers

pytestmark = pytest.mark.faults

CLIENTS = 4
PER_CLIENT = 40
OUTAGES = 2
STEP = 40  # writes allowed in each outage's turn; the last 30 are under way as Postgres stops
REFUSED_PER_OUTAGE = 8  # 503s the clients must have had before Postgres comes back


def test_a_postgres_outage_under_writes_answers_503_and_loses_no_acknowledged_write(
    workdir: Path, processes: Processes, private_postgres: PrivatePostgres
) -> None:
    with psycopg.connect(private_postgres.admin_url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE taskwarden")
    url = private_postgres.admin_url.rsplit("/", 1)[0] + "/taskwarden"
    env = environment(str(workdir / "data"), TASKWARDEN_DATABASE_URL=url)
    processes.run("migrate", env=env)
    server = processes.service("api", "serve", env=env).start()
    admin = Api(lambda: server.url).mint("admin")
    project, _ = admin.write("/api/projects/", {"name": "Postgres restarted"})
    operator = admin.mint("operator")
    writers = Writers(operator, project["id"], clients=CLIENTS, per_client=PER_CLIENT, allowed=0)
    writers.start()
    try:
        for outage in range(1, OUTAGES + 1):
            writers.wait_acknowledged(writers.allow_more(STEP) - 30)
            private_postgres.stop()
            refused = REFUSED_PER_OUTAGE * outage
            wait_for(
                lambda n=refused: writers.statuses()["503 DATABASE_ERROR"] >= n,
                f"{refused} answers 503 DATABASE_ERROR while Postgres is down",
            )
            private_postgres.start()
        writers.allow(None)
        writers.join()
    finally:
        writers.stop()
    print(writers.summary())
    assert server.alive() and server.starts == 1, "the API had to be restarted"
    assert_no_write_lost_or_doubled(admin, writers, project["id"], allowed={201, 503})
    answered = set(writers.statuses())
    assert answered <= {"201", "503 DATABASE_ERROR"}, answered
