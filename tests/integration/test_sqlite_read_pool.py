"""The SQLite read model's connections: a bounded pool shared by every thread, not one connection
(and one page cache) per thread of the server (docs/performance.md, "Memory")."""

from __future__ import annotations

from pathlib import Path

from infrastructure.sqlite_views import POOL_SIZE, SqliteReadModel
from projections.rows import TaskQuery
from tests.together import together


def test_many_threads_share_at_most_the_pools_connections(tmp_path: Path) -> None:
    rm = SqliteReadModel(tmp_path / "views.sqlite3")
    rm.migrate()
    threads = POOL_SIZE * 4

    def read() -> list[int]:
        answers = []
        for _ in range(20):
            answers.append(len(rm.list_tasks("team-a", TaskQuery()).items))
            rm.position()
        return answers

    assert together(threads, read) == [[0] * 20] * threads
    assert 1 <= len(rm._connections) <= POOL_SIZE
    rm.close()
    assert rm._connections == []
    assert rm.position() == 0  # opens again after close


def test_a_pool_of_one_serves_threads_in_turn(tmp_path: Path) -> None:
    rm = SqliteReadModel(tmp_path / "views.sqlite3", pool_size=1)
    rm.migrate()
    assert together(8, rm.position) == [0] * 8
    assert len(rm._connections) == 1
    rm.close()
