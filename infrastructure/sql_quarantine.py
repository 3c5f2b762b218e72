"""What the projection runner needs of the SQL views to pass over an event and to apply it late.

- ``probe``: a write the views can always take (the tracking row set to itself), in the write
  transaction: it fails while the database cannot be written (down, renamed, out of disk), and
  succeeds when only the event's own rows cannot be written.
- ``skip``: the tracking position moves past a quarantined event, never backwards.
- ``apply_late``: a released event applied behind the tracking position, once: a marker row
  ``late:<position>`` in ``tw_tracking`` goes with it (``reset`` empties it with the rest).
"""

from __future__ import annotations

from typing import Any

TRACKING = "views"
UPSERT = (
    "INSERT INTO tw_tracking (name, position) VALUES (?, ?) "
    "ON CONFLICT (name) DO UPDATE SET position = excluded.position"
)


class QuarantineWrites:
    """Mixed into ``SqlReadModel`` (infrastructure/sql_views.py), whose helpers it uses."""

    _writing: Any
    _run: Any
    _stored_position: Any
    _write_events: Any

    def probe(self) -> None:
        with self._writing() as cur:
            self._run(cur, "UPDATE tw_tracking SET position = position WHERE name = ?", [TRACKING])

    def skip(self, position: int) -> None:
        with self._writing() as cur:
            if self._stored_position(cur) < position:
                self._run(cur, UPSERT, [TRACKING, position])

    def apply_late(self, position: int, event: object) -> bool:
        marker = f"late:{position}"
        with self._writing() as cur:
            found = self._run(cur, "SELECT 1 FROM tw_tracking WHERE name = ?", [marker])
            if found.fetchone() is not None:
                return False
            # the tracking position stays where it is
            self._write_events(cur, [(position, event)], keep=self._stored_position(cur))
            self._run(cur, UPSERT, [marker, position])
            return True
