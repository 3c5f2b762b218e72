"""``taskwarden quarantine list|retry``: the quarantined events of every team, from the store.

The CLI sees every entry (those of events whose team is not known too), as ``X-Admin-Key`` does
over HTTP. A retry is a request recorded in the store; the process that runs the consumer
processes the position again within a few seconds (docs/operations.md, "Quarantine").
"""

from __future__ import annotations

import argparse
import getpass
import sys
import uuid
from typing import Any

from infrastructure.settings import Settings


def add(commands: Any) -> None:
    quarantine = commands.add_parser(
        "quarantine", help="list the events consumers passed over, or ask for a retry"
    )
    actions = quarantine.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="every quarantined event, oldest first")
    listing.add_argument("--consumer", default=None, help="projections, relay, webhooks, ...")
    listing.add_argument("--team", default=None, help="only this team's events")
    retry = actions.add_parser("retry", help="ask the consumer to process the event again")
    retry.add_argument("ref", help="the entry's id, or the event's position")
    retry.add_argument("--consumer", default=None, help="when several quarantined the position")


def run(settings: Settings, args: argparse.Namespace) -> int:
    import msgspec  # noqa: PLC0415

    from application.errors import NotFoundError  # noqa: PLC0415
    from application.quarantine import EVERY_TEAM, entry_data  # noqa: PLC0415
    from domain.errors import DomainError  # noqa: PLC0415
    from interfaces.services import build  # noqa: PLC0415

    services = build(msgspec.structs.replace(settings, run_projections=False))
    try:
        service = services.quarantine
        if args.action == "list":
            entries = service.entries(args.consumer, args.team or EVERY_TEAM)
            _table([entry_data(e) for e in entries])
            return 0
        actor = f"cli:{getpass.getuser()}"
        entry, position = service.request_retry(
            args.ref, actor, f"cli-{uuid.uuid4().hex[:12]}", args.consumer
        )
    except (NotFoundError, DomainError) as error:
        print(error, file=sys.stderr)
        return 1
    finally:
        services.close()
    print(f"retry of {entry.consumer} at position {entry.position} requested ({position})")
    return 0


def _table(entries: list[dict[str, Any]]) -> None:
    print(f"{'POSITION':>8}  {'CONSUMER':<12}  {'STATUS':<15}  {'TEAM':<12}  {'ERROR':<20}  ID")
    for e in entries:
        print(
            f"{e['position']:>8}  {e['consumer'][:12]:<12}  {e['status']:<15}  "
            f"{(e['team_id'] or '-')[:12]:<12}  {e['error_type'][:20]:<20}  {e['id']}"
        )
