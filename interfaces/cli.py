"""``taskwarden``: serve, migrate, history, projections, worker, relay, webhooks, quarantine,
analytics, audit."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from infrastructure import garbage_collection
from infrastructure.settings import Settings
from interfaces import cli_analytics, cli_audit, cli_quarantine


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskwarden", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API (embedded mode migrates first)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="API processes sharing the port (more than 1: Postgres and NATS; the first runs "
        "what the environment configures, the others the API only: docs/operations.md)",
    )
    commands.add_parser("migrate", help="create the event store and read model tables")
    history = commands.add_parser("history", help="print a task's timeline from the event store")
    history.add_argument("task", help="task id or slug")
    history.add_argument("--team", default="default")
    history.add_argument("--json", action="store_true", help="the whole answer as JSON")
    history.add_argument(
        "--include", default="", help="kinds, comma separated (docs/api.md: the task's history)"
    )
    projections = commands.add_parser("projections", help="run the projection runner on its own")
    projections.add_argument(
        "--rebuild",
        action="store_true",
        help="empty the read model, project the whole log again, and exit "
        "(stop every other runner and API process first)",
    )
    _add_worker(commands)
    commands.add_parser(
        "relay",
        help="publish the log's events to NATS (TASKWARDEN_NATS_URL) until SIGTERM or SIGINT",
    )
    commands.add_parser(
        "webhooks",
        help="send webhooks from the NATS durable consumer (run one) until SIGTERM or SIGINT",
    )
    cli_quarantine.add(commands)
    cli_analytics.add(commands)
    cli_audit.add(commands)
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    return {
        "serve": _serve,
        "migrate": _migrate,
        "history": _history,
        "projections": _projections,
        "worker": _worker,
        "relay": _relay,
        "webhooks": _webhooks,
        "quarantine": cli_quarantine.run,
        "analytics": cli_analytics.run,
        "audit": cli_audit.run,
    }[args.command](settings, args)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415

    from interfaces.bootstrap.replicas import refusal  # noqa: PLC0415
    from interfaces.http.app import create_app  # noqa: PLC0415
    from interfaces.http.server import server_options  # noqa: PLC0415
    from interfaces.http.supervisor import serve_processes  # noqa: PLC0415

    host = args.host or settings.host
    port = args.port or settings.port
    if (refused := refusal(settings, args.workers)) is not None:
        print(refused, file=sys.stderr)
        return 2
    if args.workers > 1:
        return serve_processes(settings, host, port, args.workers)
    # only the embedded mode creates its own tables; with Postgres run `taskwarden migrate` once
    app = create_app(
        settings, migrate_first=not settings.uses_postgres, bootstrap=True, settle=True
    )
    uvicorn.run(app, host=host, port=port, log_level="info", **server_options(settings))
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from interfaces.services import migrate  # noqa: PLC0415

    migrate(settings)
    where = "postgres" if settings.uses_postgres else str(settings.data_dir)
    print(f"migrated ({where})")
    return 0


def _history(settings: Settings, args: argparse.Namespace) -> int:
    from application.errors import NotFoundError  # noqa: PLC0415
    from application.history import task_history  # noqa: PLC0415
    from application.timeline import KINDS  # noqa: PLC0415
    from interfaces.services import build  # noqa: PLC0415

    words = [w.strip() for w in args.include.split(",") if w.strip()]
    if unknown := sorted(set(words) - set(KINDS)):
        print(f"unknown kinds {unknown}: include takes {', '.join(KINDS)}", file=sys.stderr)
        return 2
    services = build(msgspec_replace(settings, run_projections=False))
    try:
        data = task_history(services.store, args.task, args.team, services.read_model)
        if words:
            data["history"] = [e for e in data["history"] if e["kind"] in words]
    except NotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        services.close()
    if args.json:
        import json  # noqa: PLC0415

        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    print(f"task {data['task_id']}")
    print(f"{'POSITION':>8}  {'VER':>3}  {'TIMESTAMP':<27}  {'ACTOR':<24}  EVENT")
    for e in data["history"]:
        who = e["actor_name"] or e["actor"] or "-"
        if e["actor"] and e["actor_name"] and e["actor_name"] != e["actor"]:
            who = f"{e['actor_name']} ({e['actor']})"
        print(
            f"{e['position'] or '':>8}  {e['version']:>3}  {e['timestamp']:<27}  "
            f"{who[:24]:<24}  {e['type']}  {_short(e['data'])}"
        )
    return 0


def _short(data: dict[str, object]) -> str:
    import json  # noqa: PLC0415

    text = json.dumps(data, default=str, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


def _projections(settings: Settings, args: argparse.Namespace) -> int:
    from interfaces.bootstrap.projections import ProjectionsRole  # noqa: PLC0415

    if args.rebuild:
        return _rebuild(settings)
    role = ProjectionsRole.from_settings(settings)
    garbage_collection.settle()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"projecting ({'postgres' if settings.uses_postgres else settings.data_dir})", flush=True)
    stop.wait()
    role.stop()
    return 0


def _rebuild(settings: Settings) -> int:
    from interfaces.bootstrap.projections import ProjectionsRole  # noqa: PLC0415

    role = ProjectionsRole.from_settings(settings, follow=False)
    try:
        position = role.rebuild()
    finally:
        role.stop()
    print(f"rebuilt the read model up to position {position}", flush=True)
    return 0


# ---- worker -------------------------------------------------------------------------------------


def _add_worker(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run workers until SIGTERM or SIGINT: in this process against the store (with the "
        "sweeper), or against a server's REST API (--server)",
    )
    worker.add_argument("--count", type=int, default=None, help="workers (TASKWARDEN_WORKERS, 2)")
    worker.add_argument("--server", default=None, help="base URL of a Taskwarden server")
    worker.add_argument(
        "--token", default=None, help="an agent credential (else TASKWARDEN_WORKER_TOKEN)"
    )


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import logging  # noqa: PLC0415
    import os  # noqa: PLC0415

    from infrastructure import event_loop  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    count = args.count if args.count is not None else (settings.workers or 2)
    if count < 1:
        print("--count must be at least 1", file=sys.stderr)
        return 2
    if args.server is None:
        return event_loop.run(_local_workers(settings, count))
    token = args.token or os.environ.get("TASKWARDEN_WORKER_TOKEN")
    if not token:
        print("--server needs --token or TASKWARDEN_WORKER_TOKEN", file=sys.stderr)
        return 2
    return event_loop.run(_remote_workers(settings, args.server, token, count))


async def _stopped() -> None:
    """Returns on SIGTERM or SIGINT."""
    import asyncio  # noqa: PLC0415

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _local_workers(settings: Settings, count: int) -> int:
    """For Postgres deployments: workers and the sweeper beside the API processes. On stop, the
    agents are ended and the executions still held here recorded as failed (retried when
    attempts are left)."""
    from interfaces.bootstrap.worker import WorkerRole  # noqa: PLC0415

    role = WorkerRole.from_settings(settings, count)
    role.start()
    garbage_collection.settle()
    where = "postgres" if settings.uses_postgres else str(settings.data_dir)
    print(f"working: {count} workers and the sweeper ({where})", flush=True)
    try:
        await _stopped()
    finally:
        await role.stop()  # ends the agents and records what they held as failed
    print("stopped", flush=True)
    return 0


async def _remote_workers(settings: Settings, server: str, token: str, count: int) -> int:
    from interfaces.bootstrap.worker import RemoteWorkerRole  # noqa: PLC0415

    role = RemoteWorkerRole.from_settings(settings, server, token, count)
    role.start()
    garbage_collection.settle()
    print(f"working: {count} workers for {server}", flush=True)
    try:
        await _stopped()
    finally:
        released = await role.stop()  # any the pool could not record
    print(f"stopped; {released} executions recorded as failed", flush=True)
    return 0


# ---- relay --------------------------------------------------------------------------------------


def _relay(settings: Settings, args: argparse.Namespace) -> int:
    import logging  # noqa: PLC0415

    from infrastructure import event_loop  # noqa: PLC0415

    if not settings.nats_url:
        print(
            "taskwarden relay needs TASKWARDEN_NATS_URL (embedded mode relays in the API process)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return event_loop.run(_run_relay(settings))


async def _run_relay(settings: Settings) -> int:
    """Follows the log and publishes to the stream; on stop, at worst the last batch is published
    again by the next run (and dropped by the stream as a duplicate)."""
    from interfaces.bootstrap.relay import RelayRole  # noqa: PLC0415

    role = RelayRole.from_settings(settings)
    role.start()
    garbage_collection.settle()
    print(f"relaying to {settings.nats_url}, stream {settings.nats_stream}", flush=True)
    try:
        await _stopped()
    finally:
        await role.stop()
    print(f"stopped at position {role.relay.position}", flush=True)
    return 0


# ---- webhooks -----------------------------------------------------------------------------------


def _webhooks(settings: Settings, args: argparse.Namespace) -> int:
    import logging  # noqa: PLC0415

    from infrastructure import event_loop  # noqa: PLC0415

    if not settings.nats_url:
        print(
            "taskwarden webhooks needs TASKWARDEN_NATS_URL "
            "(with the in-process bus the API process sends)",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return event_loop.run(_run_webhooks(settings))


async def _run_webhooks(settings: Settings) -> int:
    """The queue of every webhook from the ``webhooks`` durable consumer; run one such process
    (one consumer keeps each webhook's order). An attempt cut short is made again next run."""
    from interfaces.bootstrap.webhooks import WebhooksRole  # noqa: PLC0415

    role = WebhooksRole.from_settings(settings)
    role.start()
    garbage_collection.settle()
    print(f"sending webhooks from {settings.nats_url}, stream {settings.nats_stream}", flush=True)
    try:
        await _stopped()
    finally:
        await role.stop()
    print("stopped sending webhooks", flush=True)
    return 0


def msgspec_replace(settings: Settings, **changes: object) -> Settings:
    import msgspec  # noqa: PLC0415

    return msgspec.structs.replace(settings, **changes)


if __name__ == "__main__":
    sys.exit(main())
