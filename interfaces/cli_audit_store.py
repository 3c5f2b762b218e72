"""The live store in ``taskwarden audit`` (docs/audit.md, "Anchoring a head"):

- ``verify FILE --against-store``: after the file's own check, its records against the stored
  rows at the same positions (and, for an export of the whole log, its hashes against the digests
  the store wrote at those positions), then the stored rows against those digests;
- ``check-store``: the stored rows against the digests, without a file.

Each prints one line and exits 0 when nothing differs, 1 with the first position that does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from infrastructure.settings import Settings


def add(actions: Any, verify: argparse.ArgumentParser) -> None:
    verify.add_argument(
        "--against-store",
        action="store_true",
        help="also compare the file with the live store and the store with its digests",
    )
    actions.add_parser(
        "check-store", help="check the stored events against the digests written with them"
    )


def check_store_command(settings: Settings, args: argparse.Namespace) -> int:
    from application.audit.digests import check_store  # noqa: PLC0415

    store = _open_store(settings)
    try:
        found = check_store(store)
        head = store.digest_head()
    finally:
        store.close()
    if found is not None:
        print(f"store: {found}", file=sys.stderr)
        return 1
    position, digest = head or (0, "")
    print(f"intact: every stored event up to position {position} as digested, head {digest}")
    return 0


def against_store(settings: Settings, args: argparse.Namespace, verdict: Any) -> Any:
    """The verdict of ``verify`` with the store's problem, if the file had none."""
    from application.audit.digests import check_store, compare_with_store  # noqa: PLC0415
    from application.audit.verify import Finding  # noqa: PLC0415

    if not verdict.intact:
        return verdict
    header = _header(args.file)
    whole_log = header.get("team") is None and (header.get("from") or 1) == 1
    lines: dict[int, int] = {}
    store = _open_store(settings)
    try:
        found = compare_with_store(store, _records(args.file, lines), whole_log=whole_log)
        if found is None:
            found = check_store(store)
    finally:
        store.close()
    if found is None:
        return verdict
    line = lines.get(found.position, 0)
    problem = Finding(kind="store", position=found.position, line=line, reason=str(found))
    return msgspec.structs.replace(verdict, problem=problem)


def _header(path: Path) -> dict[str, Any]:
    with path.open("rb") as lines:
        found = msgspec.json.decode(lines.readline() or b"{}")
    return found if isinstance(found, dict) else {}


def _records(path: Path, lines: dict[int, int]) -> Iterator[dict[str, Any]]:
    """The record lines of an intact export (the verifier read it), noting each one's line."""
    with path.open("rb") as raw:
        for number, line in enumerate(raw, 1):
            fields = msgspec.json.decode(line)
            if isinstance(fields, dict) and "kind" not in fields:
                lines[fields.get("position", 0)] = number
                yield fields


def _open_store(settings: Settings) -> Any:
    from application.committer import Committer  # noqa: PLC0415
    from application.ledger import Ledger  # noqa: PLC0415
    from application.store import Store  # noqa: PLC0415
    from infrastructure.clock import SystemClock  # noqa: PLC0415
    from infrastructure.event_store import ledger_env  # noqa: PLC0415

    ledger = Ledger(env=ledger_env(settings, create_tables=False))
    return Store(ledger, Committer(ledger), clock=SystemClock())
