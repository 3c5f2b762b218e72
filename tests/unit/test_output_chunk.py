"""Given an execution's output, when a chunk is written, then one event under a derived id, and a
chunk sent twice is refused by the store (domain/output.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError
from hypothesis import given
from hypothesis import strategies as st

from application.ledger import Ledger
from domain.output import OutputChunk, chunk_id
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings


def new_chunk(
    execution_id: str = "execution-1", seq: int = 1, text: str = "hello\n"
) -> OutputChunk:
    return OutputChunk(
        team_id="team-1",
        project_id="project-1",
        task_id="task-1",
        execution_id=execution_id,
        seq=seq,
        stream="stdout",
        text=text,
    )


def test_a_chunk_id_is_the_same_for_the_same_execution_and_sequence() -> None:
    assert chunk_id("execution-1", 7) == chunk_id("execution-1", 7)
    assert chunk_id("execution-1", 7).version == 5  # a name-based UUID, not a random one


@given(
    first=st.tuples(st.text(max_size=20), st.integers(min_value=-1, max_value=10**9)),
    second=st.tuples(st.text(max_size=20), st.integers(min_value=-1, max_value=10**9)),
)
def test_chunk_ids_differ_whenever_the_execution_or_the_sequence_differs(
    first: tuple[str, int], second: tuple[str, int]
) -> None:
    assert (chunk_id(*first) == chunk_id(*second)) == (first == second)


def test_chunk_ids_of_neighbouring_sequences_and_executions_differ() -> None:
    ids = {chunk_id(e, s) for e in ("execution-1", "execution-2", "execution-1:1") for s in (1, 2)}
    assert len(ids) == 6


def test_writing_a_chunk_records_one_event_under_the_derived_id() -> None:
    chunk = new_chunk("execution-1", 3, "line\n")
    [written] = chunk.collect_events()
    assert type(written).__name__ == "Written"
    assert chunk.id == written.originator_id == chunk_id("execution-1", 3)
    assert chunk.version == 1
    assert (chunk.execution_id, chunk.seq, chunk.stream, chunk.text) == (
        "execution-1",
        3,
        "stdout",
        "line\n",
    )
    assert (chunk.team_id, chunk.project_id, chunk.task_id) == ("team-1", "project-1", "task-1")


@pytest.fixture(params=["in memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """The in-memory store of the unit tests and the SQLite store of the embedded mode."""
    if request.param == "in memory":
        yield Application[Any]()
        return
    ledger = Ledger(env=ledger_env(Settings(data_dir=tmp_path), create_tables=True))
    yield ledger
    ledger.close()


def test_a_written_chunk_replays_from_the_store(app: Any) -> None:
    chunk = new_chunk()
    app.save(chunk)
    stored = app.recorder.select_events(chunk.id)
    assert [e.topic for e in stored] == ["domain.output:OutputChunk.Written"]
    assert app.repository.get(chunk_id("execution-1", 1)).__dict__ == chunk.__dict__


@pytest.mark.parametrize("text", ["hello\n", "a different text"], ids=["same", "different"])
def test_a_chunk_sent_twice_is_refused_by_the_store_and_the_first_is_kept(
    app: Any, text: str
) -> None:
    app.save(new_chunk(seq=1, text="hello\n"))
    with pytest.raises(IntegrityError):
        app.save(new_chunk(seq=1, text=text))
    assert len(app.recorder.select_events(chunk_id("execution-1", 1))) == 1
    assert app.repository.get(chunk_id("execution-1", 1)).text == "hello\n"


def test_chunks_of_other_sequences_and_executions_are_stored_side_by_side(app: Any) -> None:
    chunks = [new_chunk("execution-1", 1), new_chunk("execution-1", 2), new_chunk("execution-2", 1)]
    for chunk in chunks:
        app.save(chunk)
    for chunk in chunks:
        assert app.repository.get(chunk.id).seq == chunk.seq
