"""README's "Postgres mode" as real processes: ``migrate`` once, then ``serve``, ``relay`` and
``webhooks`` (and any more, such as ``worker``) on one database and one NATS server, with webhooks
allowed to reach a receiver on 127.0.0.1, and an admin's Api to the server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.faults.api import Api, environment
from tests.faults.processes import Processes, Service


@dataclass
class Deployment:
    env: dict[str, str]
    server: Service
    relay: Service
    sender: Service
    admin: Api


def postgres_mode(
    processes: Processes, workdir: Path, database_url: str, nats_url: str, **settings: str
) -> Deployment:
    env = environment(
        str(workdir / "data"),
        TASKWARDEN_DATABASE_URL=database_url,
        TASKWARDEN_NATS_URL=nats_url,
        TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8",
        **settings,
    )
    processes.run("migrate", env=env)
    server = processes.service("api", "serve", env=env).start()
    relay = processes.service("relay", "relay", env=env).start()
    sender = processes.service("webhooks", "webhooks", env=env).start()
    admin = Api(lambda: server.url).mint("admin")
    return Deployment(env, server, relay, sender, admin)
