"""The projection runner: batches, resumption, racing runners, a crash in the middle of a batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from projections.read_model import ReadModel
from projections.runner import CATCH_UP_GROWTH, ProjectionRunner
from tests.integration.views_world import (
    World,
    all_tasks,
    assert_rows_match_aggregates,
    world,
)

ROOT = Path(__file__).resolve().parents[2]
WAIT = 30.0  # seconds a loaded machine may take to apply what was written


class CountingReadModel(ReadModel):
    """A real read model that remembers the size of every batch it was given."""

    def __init__(self, inner: ReadModel) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def apply(self, events, after=None):
        self.batches.append(len(events))
        return self.inner.apply(events, after)

    def migrate(self):
        self.inner.migrate()

    def position(self):
        return self.inner.position()

    def list_tasks(self, team_id, q):
        return self.inner.list_tasks(team_id, q)

    def list_projects(self, team_id, q):
        return self.inner.list_projects(team_id, q)

    def project_statistics(self, team_id, project_id):
        return self.inner.project_statistics(team_id, project_id)

    def recent_activity(self, team_id, project_id, limit=20):
        return self.inner.recent_activity(team_id, project_id, limit)

    def task_ids_of_project(self, team_id, project_id):
        return self.inner.task_ids_of_project(team_id, project_id)

    def ping(self):
        self.inner.ping()

    def close(self):
        self.inner.close()

    def reset(self):
        self.inner.reset()

    def queued(self, limit=200):
        return self.inner.queued(limit)

    def in_flight(self, team_id=None):
        return self.inner.in_flight(team_id)

    def queue_row(self, task_id):
        return self.inner.queue_row(task_id)

    def hitl_items(self, team_id, q):
        return self.inner.hitl_items(team_id, q)

    def hitl_due(self, now, limit=100):
        return self.inner.hitl_due(now, limit)

    def output(self, team_id, task_id, after=0, limit=1000):
        return self.inner.output(team_id, task_id, after, limit)


def fill(w: World, tasks: int, project: str | None = None) -> str:
    """A project with ``tasks`` tasks, some updated, executed, cancelled or deleted."""
    project = project or w.project("Load")
    for n in range(tasks):
        task = w.task(project, f"task {n}", tags=[f"t{n % 3}"])
        if n % 2:
            w.update(task, title=f"task {n} renamed", priority="high")
        if n % 5 == 0:
            w.execute(task)
        elif n % 7 == 3:
            w.delete(task)
    return project


def assert_complete(w: World, read_model: ReadModel, project: str) -> None:
    """Exactly one row per live task, right counts, no activity lost or doubled."""
    assert read_model.position() == w.ledger.max_position()
    rows = all_tasks(read_model, "team-a")
    assert sorted(r.id for r in rows) == sorted(w.live_task_ids())
    assert_rows_match_aggregates(w, read_model, "team-a")
    stats = read_model.project_statistics("team-a", project)
    assert stats.total_tasks == len(rows)
    assert stats.queued_tasks == sum(r.status == "queued" for r in rows)
    activity = read_model.recent_activity("team-a", project, limit=100_000)
    assert len({a.position for a in activity}) == len(activity) == w.expected_activity()


def test_catch_up_applies_the_log_in_batches(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        project = fill(w, 10)
        counting = CountingReadModel(w.read_model)
        head = w.ledger.max_position()
        assert w.runner(counting, batch=4).catch_up() == head
        assert sum(counting.batches) == head
        # far behind, each full batch doubles the next, up to CATCH_UP_GROWTH times the batch
        grown = [min(4 * 2**i, 4 * CATCH_UP_GROWTH) for i in range(len(counting.batches))]
        assert counting.batches[:-1] == grown[:-1] and counting.batches[-1] <= grown[-1]
        assert len(counting.batches) < head / 4
        assert_complete(w, w.read_model, project)


def test_views_reset_by_another_process_are_applied_again_from_the_start(tmp_path, database_url):
    """A runner reads on from where its last catch-up left the views, without asking them; the
    apply checks that under its lock, so views another process reset meanwhile (a rebuild) are
    filled again from the first event, not from where this runner was."""
    with world(tmp_path, database_url) as w:
        project = fill(w, 6)
        runner = w.runner()
        assert runner.catch_up() == w.ledger.max_position()
        w.open_read_model().reset()  # as another process's rebuild does
        w.task(project, "after the reset")
        assert runner.catch_up() == w.ledger.max_position()
        assert_complete(w, w.read_model, project)


def test_applying_the_same_events_twice_changes_nothing(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        project = fill(w, 4)
        notifications = w.ledger.recorder.select_notifications(0, 1_000)
        events = [(n.id, w.ledger.mapper.to_domain_event(n)) for n in notifications]
        head = w.read_model.apply(events)
        assert w.read_model.apply(events) == head
        assert w.read_model.apply(events[:3]) == head
        assert_complete(w, w.read_model, project)


def test_a_new_runner_resumes_where_the_last_one_stopped(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        project = fill(w, 6)
        w.runner(batch=5).catch_up()
        fill(w, 6, project)
        resumed = w.runner(w.open_read_model(), batch=5)
        assert resumed.catch_up() == w.ledger.max_position()
        assert resumed.catch_up() == w.ledger.max_position()
        assert_complete(w, w.read_model, project)


def test_two_runners_racing_apply_each_event_once(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        project = fill(w, 30)
        runners = [w.runner(w.open_read_model(), batch=3) for _ in range(2)]
        errors: list[BaseException] = []

        def run(runner: ProjectionRunner) -> None:
            try:
                runner.catch_up()
            except BaseException as error:  # noqa: BLE001 - reported by the test
                errors.append(error)

        threads = [threading.Thread(target=run, args=(r,)) for r in runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert_complete(w, w.read_model, project)


def test_the_background_runner_follows_commits(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        runner = w.runner()
        w.committer.on_commit(runner.poke)
        runner.start()
        project = w.project("Live")
        position = w.update(w.task(project, "first"), title="first, renamed")
        assert runner.wait_for(position, timeout=WAIT)
        assert runner.position >= position
        assert [r.title for r in all_tasks(w.read_model, "team-a")] == ["first, renamed"]
        runner.stop()


def test_waiting_for_a_position_never_written_times_out(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        runner = w.runner()
        runner.start()
        assert runner.wait_for(w.ledger.max_position() + 1, timeout=0.2) is False
        runner.stop()


def test_wait_for_sees_positions_applied_by_another_runner(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        fill(w, 2)
        idle = w.runner()  # never started
        w.runner(w.open_read_model()).catch_up()
        assert idle.wait_for(w.ledger.max_position(), timeout=WAIT)


def test_a_failing_read_model_does_not_kill_the_runner(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        flaky = CountingReadModel(w.read_model)
        real_apply = flaky.apply
        failures = [RuntimeError("database went away")]

        def apply(events, after=None):
            if failures:
                raise failures.pop()
            return real_apply(events, after)

        flaky.apply = apply  # type: ignore[method-assign]
        runner = w.runner(flaky)
        runner.start()
        w.task(w.project("P"), "survives")
        position = w.ledger.max_position()
        runner.poke(position)
        assert runner.wait_for(position, timeout=WAIT)
        assert [r.title for r in all_tasks(w.read_model, "team-a")] == ["survives"]


CHILD = """
import sys
import time
from pathlib import Path
from application.committer import Committer
from application.ledger import Ledger
from application.store import Store
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings
from infrastructure.views import open_read_model
from projections.runner import CATCH_UP_GROWTH, ProjectionRunner

settings = Settings(data_dir=Path(sys.argv[1]), database_url=sys.argv[2] or None)
ledger = Ledger(env=ledger_env(settings, create_tables=False))
read_model = open_read_model(settings)
apply = read_model.apply
hold_after = int(sys.argv[3])
applied = [0]

def loud(events, after=None):
    if applied[0] >= hold_after:  # a batch read and not written: the parent kills us here
        print("holding", flush=True)
        time.sleep(3600)
    applied[0] = apply(events, after)
    return applied[0]

read_model.apply = loud
store = Store(ledger, Committer(ledger), clock=SystemClock())
ProjectionRunner(store, read_model, batch=3).catch_up()
print("done", flush=True)
"""


def test_a_runner_killed_mid_batch_loses_and_doubles_nothing(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        project = fill(w, 40)
        head = w.ledger.max_position()
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), database_url or "", str(head // 4)],
            cwd=ROOT,
            env=os.environ | {"PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "holding"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        assert child.returncode == -signal.SIGKILL
        survivor = w.open_read_model()
        assert 0 < survivor.position() < head
        assert w.runner(survivor, batch=7).catch_up() == head
        assert_complete(w, survivor, project)


def test_each_team_is_projected_apart(tmp_path, database_url):
    with world(tmp_path, database_url) as w:
        fill(w, 3)
        w.runner().catch_up()
        assert all_tasks(w.read_model, "team-b") == []
        assert len(all_tasks(w.read_model, "team-a")) == len(w.live_task_ids())
