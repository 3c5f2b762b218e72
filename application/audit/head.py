"""The head of the log: the newest digest the event store wrote with a transaction, its position,
and when the event there was recorded (docs/audit.md, "Anchoring a head").

An auditor notes it (or publishes it) and later proves that nothing up to that position changed:
an export of the whole log carries the same hash at that position, and ``taskwarden audit verify
--against-store`` recomputes the chain from the stored rows.
"""

from __future__ import annotations

from typing import Any

from application.audit.chain import GENESIS
from application.store import Store
from domain.values import rfc3339


def audit_head(store: Store) -> dict[str, Any]:
    """``{"position", "digest", "at"}``; before any event, position 0, the chain's ``GENESIS``
    and no time."""
    found = store.digest_head()
    if found is None:
        return {"position": 0, "digest": GENESIS, "at": None}
    position, digest = found
    return {"position": position, "digest": digest, "at": _recorded_at(store, position)}


def _recorded_at(store: Store, position: int) -> str | None:
    """The time of the event at ``position``; None if it is not there or cannot be read (the
    check says which: ``application.audit.digests``)."""
    notification = store.notification_at(position)
    if notification is None:
        return None
    try:
        event = store.decode(notification)
    except Exception:  # noqa: BLE001 - a head is still a head without its time
        return None
    return rfc3339(getattr(event, "timestamp", None))
