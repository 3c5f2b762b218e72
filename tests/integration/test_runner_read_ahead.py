"""The projection runner reads the next full batch ahead while it applies one (SQLite and
Postgres): what it applies is what it would have applied batch after batch, an event that cannot
be decoded in a batch read ahead is quarantined in its place, and a batch read ahead from a
position the views have passed meanwhile is not used."""

from __future__ import annotations

from projections.runner import ProjectionRunner
from tests.integration.test_projection_quarantine import guarded, titles
from tests.integration.views_world import BOB, world
from tests.poison import unknown_topic_row


def test_poison_in_a_batch_read_ahead_is_quarantined_and_the_rest_applied(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        for n in range(4):
            w.task(theirs, f"before {n}", by=BOB)
        position, _ = unknown_topic_row(w.ledger, "team-a")
        for n in range(4):
            w.task(theirs, f"after {n}", by=BOB)
        runner, service = guarded(w)
        runner._batch = 2  # noqa: SLF001 - many full batches: each one after the first read ahead
        assert runner.catch_up() == w.ledger.max_position()
        assert len(titles(w, "team-b")) == 8
        assert [e.position for e in service.entries()] == [position]
        assert runner._reader is not None  # noqa: SLF001 - it did read ahead
        runner.stop()
        assert runner._reader is None  # noqa: SLF001


def test_a_batch_read_ahead_from_a_passed_position_is_read_again(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        theirs = w.project("Theirs", by=BOB)
        for n in range(6):
            w.task(theirs, f"task {n}", by=BOB)
        other = w.open_read_model()
        runner = ProjectionRunner(w.store, w.read_model, batch=2)
        w.runners.append(runner)
        applying = runner._isolating  # noqa: SLF001

        def another_runner_moves_on_first(pairs, after=None):
            # another process applies everything before this batch is written: this runner's
            # batch is passed over, and the batch it read ahead starts behind the views
            ProjectionRunner(w.store, other, batch=1000).catch_up()
            return applying(pairs, after)

        runner._isolating = another_runner_moves_on_first  # type: ignore[method-assign]  # noqa: SLF001
        assert runner.catch_up() == w.ledger.max_position()
        assert w.read_model.position() == w.ledger.max_position()
        assert sorted(titles(w, "team-b")) == [f"task {n}" for n in range(6)]
