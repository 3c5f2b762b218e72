"""``taskwarden audit export|verify``: a signed, hash-chained export of the log, and its check
(docs/audit.md).

``export`` writes JSON lines to stdout (every team's events, or ``--team``'s; ``--from``/``--to``
positions, inclusive). ``verify FILE`` checks the chain and the head's signature, with the public
key given (``--public-key``: a PEM file, or the base64 ``GET /api/audit/key`` serves) or, without
it, this installation's own key; it prints one line and exits 0 when the file is intact, 1 with
the first problem and its position otherwise, 2 when it cannot check (no key, no file). A step
after the file's own check (``_checks``) is one function taking the verdict.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infrastructure.settings import Settings
from interfaces import cli_audit_store


def add(commands: Any) -> None:
    audit = commands.add_parser("audit", help="export the log as a signed hash chain, verify one")
    actions = audit.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write the export (JSON lines) to stdout")
    export.add_argument("--team", default=None, help="only this team's events")
    export.add_argument("--from", dest="first", type=_position, default=None, help="position")
    export.add_argument("--to", dest="last", type=_position, default=None, help="position")
    verify = actions.add_parser("verify", help="check an export's chain and signed head")
    verify.add_argument("file", type=Path, help="the export (audit.jsonl)")
    verify.add_argument(
        "--public-key",
        default=None,
        help="a PEM file or the base64 key of GET /api/audit/key (default: this installation's)",
    )
    cli_audit_store.add(actions, verify)  # --against-store, and check-store


def run(settings: Settings, args: argparse.Namespace) -> int:
    actions = {
        "export": _export,
        "verify": _verify,
        "check-store": cli_audit_store.check_store_command,
    }
    return actions[args.action](settings, args)


def _position(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError("a position is a non-negative integer")
    return int(text)


def _export(settings: Settings, args: argparse.Namespace) -> int:
    import msgspec  # noqa: PLC0415

    from application.audit.export import Scope, export  # noqa: PLC0415
    from interfaces.services import build  # noqa: PLC0415

    if args.first is not None and args.last is not None and args.first > args.last:
        print("--from must not be after --to", file=sys.stderr)
        return 2
    services = build(msgspec.structs.replace(settings, run_projections=False))
    try:
        out = sys.stdout.buffer
        for chunk in export(
            services.store,
            services.audit_key,
            Scope(team=args.team, first=args.first, last=args.last),
        ):
            out.write(chunk)
        out.flush()
    finally:
        services.close()
    return 0


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from application.audit.verify import verify  # noqa: PLC0415
    from infrastructure.audit_key import AuditKeyError  # noqa: PLC0415

    try:
        key = _public_key(settings, args.public_key)
        with args.file.open("rb") as lines:
            verdict = verify(lines, key)
    except (AuditKeyError, OSError) as error:
        print(f"cannot verify: {error}", file=sys.stderr)
        return 2
    for check in _checks(args):
        verdict = check(settings, args, verdict)
    print(verdict.summary(), file=sys.stdout if verdict.intact else sys.stderr)
    return 0 if verdict.intact else 1


def _checks(args: argparse.Namespace) -> list[Callable[[Settings, argparse.Namespace, Any], Any]]:
    """Further checks of a verdict, in order (each returns the verdict, with its problem)."""
    return [cli_audit_store.against_store] if getattr(args, "against_store", False) else []


def _public_key(settings: Settings, given: str | None) -> Any:
    from infrastructure.audit_key import PublicKey, load_audit_key  # noqa: PLC0415

    if given is None:
        return load_audit_key(settings.audit_key_file, settings.data_dir, create=False).public
    path = Path(given)
    return PublicKey.from_text(path.read_text(encoding="ascii") if path.is_file() else given)
