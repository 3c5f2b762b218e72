"""Agent output, stored as chunks: each its own one-event aggregate.

A chunk's id is derived from its execution and sequence number, so a chunk sent twice (a remote
worker retrying a request) is refused by the store instead of stored twice, and writing a chunk
never needs the execution's earlier output loaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from domain.place import IN_TASK, Placed

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/output")
STREAMS = frozenset({"stdout", "stderr", "system"})


def chunk_id(execution_id: str, seq: int) -> UUID:
    return uuid5(_NAMESPACE, f"{execution_id}:{seq}")


class OutputChunk(Placed):
    class Event(Placed.Event):
        PLACE = IN_TASK
        project_id: str
        task_id: str

    if TYPE_CHECKING:  # what @event makes, which the type checker does not see
        Written: ClassVar[type[Aggregate.Created]]

    @staticmethod
    def create_id(
        team_id: str,
        project_id: str,
        task_id: str,
        execution_id: str,
        seq: int,
        stream: str,
        text: str,
    ) -> UUID:
        return chunk_id(execution_id, seq)

    @event("Written")
    def __init__(
        self,
        team_id: str,
        project_id: str,
        task_id: str,
        execution_id: str,
        seq: int,
        stream: str,
        text: str,
    ) -> None:
        self.team_id = team_id
        self.project_id = project_id
        self.task_id = task_id
        self.execution_id = execution_id
        self.seq = seq
        self.stream = stream
        self.text = text
