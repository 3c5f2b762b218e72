"""``taskwarden serve`` killed with SIGKILL while clients write, on SQLite and on Postgres.

Four client threads create tasks, each with an Idempotency-Key; the API is killed three times
while they do and started again. A client that got no answer sends the same request again once
the API is back. Afterwards every acknowledged task is in the store (by id, and in the listing
once the read model has reached the highest acknowledged position), no key made two tasks nor
was answered with two ids, and no position of the log was passed by a reader and filled later.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infrastructure.settings import Settings
from tests.faults.api import Api, environment
from tests.faults.checks import assert_no_write_lost_or_doubled
from tests.faults.log_tail import LogTail
from tests.faults.processes import Processes
from tests.faults.writers import Writers

pytestmark = pytest.mark.faults

CLIENTS = 4
PER_CLIENT = 40
KILLS = 3


@pytest.fixture(params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, workdir: Path, processes: Processes
) -> Iterator[tuple[dict[str, str], Settings]]:
    """The environment of the API and the test's own settings to read the same store; the
    processes are killed before a Postgres database is dropped."""
    data = workdir / "data"
    if request.param == "sqlite":
        yield environment(str(data)), Settings(data_dir=data)
        return
    url = request.getfixturevalue("postgres_url")
    env = environment(str(data), TASKWARDEN_DATABASE_URL=url)
    processes.run("migrate", env=env)
    yield env, Settings(data_dir=data, database_url=url)
    processes.close()


def test_acknowledged_writes_survive_sigkills_of_the_api_and_retried_keys_are_never_doubled(
    store: tuple[dict[str, str], Settings], processes: Processes
) -> None:
    env, settings = store
    server = processes.service("api", "serve", env=env).start()
    admin = Api(lambda: server.url).mint("admin")
    project, _ = admin.write("/api/projects/", {"name": "Killed under writes"})
    tail = LogTail(settings).start()
    writers = Writers(admin.mint("operator"), project["id"], clients=CLIENTS, per_client=PER_CLIENT)
    writers.start()
    try:
        for kill in range(1, KILLS + 1):
            writers.wait_acknowledged(CLIENTS * PER_CLIENT * kill // (KILLS + 1))
            processes.kill(server)
            server.start()
        writers.join()
    finally:
        writers.stop()
        tail.stop()
    statuses = writers.statuses()
    assert sum(n for s, n in statuses.items() if s.startswith("none")) > 0, statuses
    assert_no_write_lost_or_doubled(admin, writers, project["id"], allowed={201})
    whole = tail.whole()
    tail.close()
    unused = len(whole) and whole[-1] - len(whole)
    print(f"{writers.summary()}; {len(whole)} positions, {unused} numbers unused")
    assert tail.skipped(whole) == []
    if not settings.uses_postgres:
        assert whole == list(range(1, len(whole) + 1))  # SQLite: no hole at all
