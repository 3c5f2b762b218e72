"""``taskwarden``: serve, migrate, history, projections."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence

from infrastructure.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskwarden", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the API (embedded mode migrates first)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    commands.add_parser("migrate", help="create the event store and read model tables")
    history = commands.add_parser("history", help="print a task's history from the event store")
    history.add_argument("task", help="task id or slug")
    history.add_argument("--team", default="default")
    projections = commands.add_parser("projections", help="run the projection runner on its own")
    projections.add_argument(
        "--rebuild",
        action="store_true",
        help="empty the read model, project the whole log again, and exit "
        "(stop every other runner and API process first)",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    return {
        "serve": _serve,
        "migrate": _migrate,
        "history": _history,
        "projections": _projections,
    }[args.command](settings, args)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn  # noqa: PLC0415

    from interfaces.http.app import create_app  # noqa: PLC0415

    host = args.host or settings.host
    port = args.port or settings.port
    # only the embedded mode creates its own tables; with Postgres run `taskwarden migrate` once
    app = create_app(settings, migrate_first=not settings.uses_postgres, bootstrap=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
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
    from interfaces.services import build  # noqa: PLC0415

    services = build(msgspec_replace(settings, run_projections=False))
    try:
        data = task_history(services.store, args.task, args.team)
    except NotFoundError as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        services.close()
    print(f"task {data['task_id']}")
    print(f"{'POSITION':>8}  {'VER':>3}  {'TIMESTAMP':<24}  {'ACTOR':<16}  EVENT")
    for e in data["history"]:
        print(
            f"{e['position'] or '':>8}  {e['version']:>3}  {e['timestamp']:<24}  "
            f"{(e['actor'] or '-')[:16]:<16}  {e['type']}  {_short(e['data'])}"
        )
    return 0


def _short(data: dict[str, object]) -> str:
    import json  # noqa: PLC0415

    text = json.dumps(data, default=str, separators=(",", ":"))
    return text if len(text) <= 80 else text[:77] + "..."


def _projections(settings: Settings, args: argparse.Namespace) -> int:
    from interfaces.services import build  # noqa: PLC0415

    if args.rebuild:
        return _rebuild(settings)
    services = build(msgspec_replace(settings, run_projections=True))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"projecting ({'postgres' if settings.uses_postgres else settings.data_dir})", flush=True)
    stop.wait()
    services.close()
    return 0


def _rebuild(settings: Settings) -> int:
    from interfaces.services import build  # noqa: PLC0415

    services = build(msgspec_replace(settings, run_projections=False, workers=0))
    try:
        services.read_model.reset()
        position = services.runner.catch_up()
    finally:
        services.close()
    print(f"rebuilt the read model up to position {position}", flush=True)
    return 0


def msgspec_replace(settings: Settings, **changes: object) -> Settings:
    import msgspec  # noqa: PLC0415

    return msgspec.structs.replace(settings, **changes)


if __name__ == "__main__":
    sys.exit(main())
