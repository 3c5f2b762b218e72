"""The command runner with real processes, a real file system and a real event store
(``infrastructure/program_runner.py``, ``application/programs/runs.py``)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from application.committer import Committer
from application.ledger import Ledger
from application.programs import runs
from application.programs.registry import ProgramRegistry
from application.store import Store
from domain.errors import RuleViolationError
from domain.program_run import ProgramRun, output_id
from domain.values import Actor
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.program_runner import (
    Output,
    Prepared,
    Program,
    environment,
    prepare,
    refused_name,
    working_directory,
)
from infrastructure.settings import Settings

ADMIN = Actor(id="user:admin-1", team_id="team-1", request_id="req-1")
AT = datetime(2025, 1, 1, tzinfo=UTC)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def eventually_dead(pid: int, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


# ---- where it runs --------------------------------------------------------------------------


def test_the_working_directory_defaults_to_the_root_which_is_created(tmp_path):
    root = tmp_path / "workspaces"
    real, relative = working_directory(root, None)
    assert real == root.resolve() and relative == "."
    assert working_directory(root, "  ")[1] == "."


def test_a_working_directory_inside_the_root_is_resolved_to_its_real_path(tmp_path):
    root = tmp_path / "ws"
    (root / "a" / "b").mkdir(parents=True)
    (root / "link").symlink_to(root / "a")  # a symlink that stays inside is fine
    assert working_directory(root, "a/b") == ((root / "a" / "b").resolve(), "a/b")
    assert working_directory(root, "link/b") == ((root / "a" / "b").resolve(), "a/b")
    assert working_directory(root, str(root / "a"))[1] == "a"  # absolute, but inside


@pytest.mark.parametrize(
    "wanted",
    ["..", "a/../..", "a/..", "/etc", "/", "escape", "escape/inner", "loop", "missing", "file"],
)
def test_a_working_directory_outside_the_root_or_not_a_directory_is_refused(tmp_path, wanted):
    root = tmp_path / "ws"
    (root / "a").mkdir(parents=True)
    (root / "file").write_text("x")
    outside = tmp_path / "outside"
    (outside / "inner").mkdir(parents=True)
    (root / "escape").symlink_to(outside)
    (root / "loop").symlink_to(root / "loop")
    with pytest.raises(RuleViolationError) as refused:
        working_directory(root, wanted)
    assert refused.value.details == {"field": "working_directory"}


# ---- with what environment ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "API_KEY",
        "MY_APIKEY",
        "DB_PASSWORD",
        "PGPASS",
        "SSH_AUTH_SOCK",
        "SESSION_COOKIE",
        "PRIVATE_THING",
        "SENTRY_DSN",
        "DATABASE_URL",
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "BASH_ENV",
        "BASH_FUNC_x%%",
        "ENV",
        "PATH",
        "HOME",
        "PYTHONPATH",
        "NODE_OPTIONS",
        "GIT_SSH_COMMAND",
        "GIT_CONFIG_COUNT",
        "TASKWARDEN_ADMIN_KEY",
        "lower",
        "1STARTS_WITH_DIGIT",
        "HAS-DASH",
        "",
    ],
)
def test_secret_like_reserved_or_malformed_names_are_refused(name):
    assert refused_name(name)


@pytest.mark.parametrize(
    "name", ["NODE_ENV", "CI", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "RUST_LOG", "_PRIVATE_NOT"]
)
def test_plain_names_pass(name):
    assert not refused_name(name) or name == "_PRIVATE_NOT"


def test_the_environment_is_the_server_base_plus_the_requested_variables():
    server = {"PATH": "/bin", "HOME": "/home/tw", "LANG": "en_US.UTF-8", "SECRET": "no", "X": "1"}
    built = environment({"NODE_ENV": "test"}, server)
    assert built == {"PATH": "/bin", "HOME": "/home/tw", "LANG": "en_US.UTF-8", "NODE_ENV": "test"}
    assert environment({}, {}) == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/",
        "LANG": "C.UTF-8",
    }


def test_any_refused_name_refuses_the_whole_environment_and_names_them_all_but_no_value():
    with pytest.raises(RuleViolationError) as refused:
        environment({"NODE_ENV": "x", "GITHUB_TOKEN": "ghp_value", "LD_PRELOAD": "/x.so"}, {})
    assert refused.value.details == {
        "field": "environment",
        "names": ["GITHUB_TOKEN", "LD_PRELOAD"],
    }
    assert "ghp_value" not in str(refused.value)
    with pytest.raises(RuleViolationError):
        environment({"NODE_ENV": "a\x00b"}, {})


def test_prepare_refuses_an_empty_command_or_nul_bytes(tmp_path):
    for argv in ([], [""], ["echo", "a\x00b"]):
        with pytest.raises(RuleViolationError):
            prepare(tmp_path, argv, None, {})
    ready = prepare(tmp_path, ["echo"], None, {"CI": "1"})
    assert ready.env_names == ["CI"] and ready.relative == "."


# ---- what it writes -------------------------------------------------------------------------


def test_output_keeps_the_cap_then_a_marker_and_counts_everything():
    output = Output(cap=10)
    output.add("stdout", b"12345678", AT)
    output.add("stdout", b"abcdef", AT)
    output.add("stderr", b"more", AT)
    chunks = output.chunks()
    assert "".join(c["content"] for c in chunks) == (
        "12345678ab\n[output truncated: over 10 bytes]\n"
    )
    assert output.output_bytes == 18 and output.truncated


def test_reads_close_together_merge_and_streams_stay_apart():
    output = Output()
    output.add("stdout", b"a\n", AT)
    output.add("stdout", b"b\n", AT)
    output.add("stderr", b"e\n", AT)
    output.add("stdout", b"c\n", AT.replace(second=5))
    assert [(c["stream"], c["content"]) for c in output.chunks()] == [
        ("stdout", "a\nb\n"),
        ("stderr", "e\n"),
        ("stdout", "c\n"),
    ]
    assert output.chunks()[0]["timestamp"] == "2025-01-01T00:00:00.000000Z"


def test_a_character_split_between_reads_is_decoded_whole_and_bad_bytes_are_replaced():
    output = Output()
    snowman = "☃".encode()
    output.add("stdout", snowman[:1], AT)
    output.add("stdout", snowman[1:] + b"\xff", AT)
    output.add("stdout", b"\xe2", AT)
    output.close()
    assert "".join(c["content"] for c in output.chunks()) == "☃\ufffd\ufffd"


# ---- the process ----------------------------------------------------------------------------


def started(tmp_path: Path, *argv: str) -> Prepared:
    return prepare(tmp_path, list(argv), None, {})


def test_a_program_runs_in_its_own_group_and_its_output_is_read(tmp_path):
    async def scenario() -> tuple[Any, ...]:
        script = "echo out; echo err >&2; sleep 0.5; exit 4"
        program = await Program.start(started(tmp_path, "sh", "-c", script))
        assert os.getpgid(program.pid) == program.pid != os.getpgid(0)
        assert await program.wait(30)
        await program.finish()
        return program.returncode, program.chunks()

    code, chunks = asyncio.run(scenario())
    assert code == 4
    assert {(c["stream"], c["content"]) for c in chunks} == {
        ("stdout", "out\n"),
        ("stderr", "err\n"),
    }


def test_a_program_that_does_not_exist_is_a_rule_violation(tmp_path):
    async def scenario() -> None:
        await Program.start(started(tmp_path, "./no-such-program"))

    with pytest.raises(RuleViolationError) as refused:
        asyncio.run(scenario())
    assert refused.value.details == {"field": "command"}


def test_stop_ends_the_whole_group_and_kill_follows_a_refused_term(tmp_path):
    script = "trap '' TERM; sleep 60 & echo $!; wait"

    async def scenario() -> tuple[int, int, int]:
        program = await Program.start(started(tmp_path, "sh", "-c", script))
        while not program.chunks():
            await asyncio.sleep(0.01)
        child = int(program.chunks()[0]["content"])
        code = await program.stop(grace=0.5)
        await program.finish()
        return program.pid, child, code

    leader, child, code = asyncio.run(scenario())
    assert code == -9  # the shell ignored TERM; its child did not
    assert eventually_dead(leader) and eventually_dead(child)


def test_background_children_do_not_outlive_their_command(tmp_path):
    async def scenario() -> int:
        program = await Program.start(
            started(tmp_path, "sh", "-c", "sleep 60 >/dev/null & echo $!")
        )
        assert await program.wait(30)
        await program.finish()
        return int(program.chunks()[0]["content"])

    assert eventually_dead(asyncio.run(scenario()))


# ---- the registry, with a real event store --------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    ledger = Ledger(env=ledger_env(Settings(data_dir=tmp_path / "data"), create_tables=True))
    committer = Committer(ledger)
    yield Store(ledger, committer, clock=SystemClock())
    committer.close()
    ledger.close()


def recorder(store: Store, argv: list[str], timeout: float = 30) -> Any:
    def record(pid: int) -> tuple[ProgramRun, int]:
        return runs.record_started(
            store,
            ADMIN,
            command=" ".join(argv),
            argv=argv,
            working_directory=".",
            timeout=timeout,
            environment=[],
            pid=pid,
            host="test",
        )

    return record


async def until_ended(store: Store, run: ProgramRun, seconds: float = 30.0) -> ProgramRun:
    deadline = time.monotonic() + seconds
    while True:
        current = await asyncio.to_thread(store.load, ProgramRun, run.id, "team-1", "command")
        if current.status != "running":
            return current
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


def test_a_cancel_recorded_by_another_api_process_stops_the_program(store, tmp_path):
    """The registry that started it finds the request in the store on its next look."""
    registry = ProgramRegistry(store, grace=1.0, poll=0.1)
    argv = ["sleep", "60"]

    async def scenario() -> ProgramRun:
        run, _ = await registry.start(
            lambda: Program.start(started(tmp_path, *argv)), recorder(store, argv)
        )
        await asyncio.to_thread(runs.request_cancel, store, str(run.id), ADMIN)
        return await until_ended(store, run)

    ended = asyncio.run(scenario())
    assert ended.status == "cancelled" and ended.exit_code == -15 and ended.cancel_requested
    assert eventually_dead(ended.pid)


def test_the_end_and_the_output_are_recorded_together(store, tmp_path):
    registry = ProgramRegistry(store, poll=0.1)
    argv = ["echo", "hello"]

    async def scenario() -> ProgramRun:
        run, position = await registry.start(
            lambda: Program.start(started(tmp_path, *argv)), recorder(store, argv)
        )
        assert position > 0 and registry.live(run.id) is not None
        ended = await until_ended(store, run)
        assert registry.live(run.id) is None
        return ended

    ended = asyncio.run(scenario())
    assert ended.status == "completed" and ended.exit_code == 0 and ended.output_bytes == 6
    chunks = runs.stored_output(store, ended)
    assert [c["content"] for c in chunks] == ["hello\n"]
    history = runs.history_data(store, "team-1", 1, 10)
    assert history["total"] == 1 and history["items"][0]["status"] == "completed"
    assert runs.history_data(store, "team-2", 1, 10)["total"] == 0


def test_a_large_output_is_stored_in_several_events_and_read_back_whole(store, tmp_path):
    registry = ProgramRegistry(store, poll=0.1)
    argv = ["python3", "-c", "import sys; sys.stdout.write('y' * 400_000)"]

    async def scenario() -> ProgramRun:
        run, _ = await registry.start(
            lambda: Program.start(started(tmp_path, *argv)), recorder(store, argv)
        )
        return await until_ended(store, run)

    ended = asyncio.run(scenario())
    assert ended.output_bytes == 400_000 and not ended.truncated
    chunks = runs.stored_output(store, ended)
    assert "".join(c["content"] for c in chunks) == "y" * 400_000
    stored = list(store.ledger.events.get(output_id(ended.id)))
    assert len(stored) >= 4 and type(stored[1]).__name__ == "Appended"


def test_a_program_that_cannot_be_recorded_is_killed(store, tmp_path):
    registry = ProgramRegistry(store)
    pids: list[int] = []

    async def spawn() -> Program:
        program = await Program.start(started(tmp_path, "sleep", "60"))
        pids.append(program.pid)
        return program

    def broken(pid: int) -> tuple[ProgramRun, int]:
        raise OSError("the store is down")

    async def scenario() -> None:
        await registry.start(spawn, broken)

    with pytest.raises(OSError):
        asyncio.run(scenario())
    assert eventually_dead(pids[0])


def test_a_run_whose_watcher_is_cancelled_is_killed_and_not_recorded(store, tmp_path):
    """The server stopping: the program dies with it; the run reads lost after its deadline."""
    registry = ProgramRegistry(store)
    argv = ["sleep", "60"]

    async def scenario() -> ProgramRun:
        run, _ = await registry.start(
            lambda: Program.start(started(tmp_path, *argv)), recorder(store, argv)
        )
        watcher, program = registry._live[run.id].watcher, registry.live(run.id)
        assert watcher is not None and program is not None
        watcher.cancel()
        await asyncio.wait({watcher})
        assert await program.wait(30)
        return run

    run = asyncio.run(scenario())
    assert eventually_dead(run.pid)
    assert store.load(ProgramRun, run.id, "team-1", "command").status == "running"
