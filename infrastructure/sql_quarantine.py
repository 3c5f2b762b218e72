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

from projections.batch import affected_ids, evolve_batch
from projections.rows import ProjectRow, TaskRow

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
    _load: Any
    _load_execution: Any
    _write: Any
    _write_facts: Any
    _write_members: Any
    _write_timeline: Any

    def probe(self) -> None:
        with self._writing() as cur:
            self._run(
                cur, "UPDATE tw_tracking SET position = position WHERE name = ?", [TRACKING]
            )

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
            stored = self._stored_position(cur)
            events = [(position, event)]
            task_ids, project_ids = affected_ids(events)
            changes = evolve_batch(
                events,
                self._load(cur, "tw_tasks", task_ids, TaskRow),
                self._load(cur, "tw_projects", project_ids, ProjectRow),
                self._load_execution(cur, events),
            )
            changes.position = stored  # the tracking position stays where it is
            self._write(cur, changes)
            self._write_facts(cur, events)
            self._write_members(cur, events)
            self._write_timeline(cur, events)
            self._run(cur, UPSERT, [marker, position])
            return True
