"""The scripted agent and other programs run through AgentProcess: real processes, no mocks."""

from __future__ import annotations

import asyncio
import json
import os
import select
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from infrastructure.agent.adapters import adapter
from infrastructure.agent.batcher import Chunk, OutputBatcher
from infrastructure.agent.catalog import load_agents, render
from infrastructure.agent.environment import agent_environment
from infrastructure.agent.process import MAX_LINE_BYTES, AgentProcess, AgentStartError
from infrastructure.agent.protocol import (
    Answer,
    Checkpoint,
    Decision,
    Experience,
    Message,
    Output,
    Phase,
    Progress,
    Question,
    Result,
    Usage,
)
from infrastructure.agent.test_command import run_test_command

TIMEOUT = 120  # no test waits this long unless something is broken (CI machines are loaded)
PATIENCE = 30.0  # seconds a process may take to react on a loaded machine; waits end when it does


def run(coroutine: Awaitable[Any]) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, TIMEOUT)

    return asyncio.run(bounded())


def say(text: str) -> Output:
    return Output(stream="stdout", text=text)


async def start_scripted(
    tmp_path: Path, script: list[dict] | None, *, attempt: int = 1, cap: int | None = None
) -> AgentProcess:
    workspace = tmp_path / "workspace"
    workspace.mkdir(exist_ok=True)
    task_file = tmp_path / "task.json"
    task = {
        "id": "t1",
        "title": "Demo task",
        "description": "",
        "metadata": {"script": script} if script is not None else {},
        "attempt": attempt,
        "workspace": str(workspace),
    }
    task_file.write_text(json.dumps(task))
    spec = load_agents(None)["scripted"]
    argv = render(
        spec, {"prompt": "Demo task", "workspace": str(workspace), "task_file": str(task_file)}
    )
    env = agent_environment(os.environ, {**spec.env, "TASKWARDEN_TASK_FILE": str(task_file)})
    return await AgentProcess.start(
        argv, workspace, env, adapter(spec.adapter), output_cap_bytes=cap
    )


async def start_program(code: str, *, stdin: bool = True, cap: int | None = None) -> AgentProcess:
    argv = [sys.executable, "-c", code]
    return await AgentProcess.start(
        argv, Path.cwd(), dict(os.environ), adapter("protocol"), stdin=stdin, output_cap_bytes=cap
    )


async def collect(proc: AgentProcess) -> tuple[list[Message], int]:
    messages = [m async for m in proc.messages()]
    return messages, await proc.wait()


async def until(messages: AsyncIterator[Message], check: Callable[[Message], bool]) -> Message:
    async for message in messages:
        if check(message):
            return message
    raise AssertionError("the agent's output ended first")


def gone(pid: int, timeout: float = PATIENCE) -> bool:
    """Whether the process has exited (a zombie counts), waiting on a pidfd up to `timeout`:
    a SIGKILLed process may still be finishing its exit when its pipes are already closed."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([fd], [], [], timeout)
        return bool(readable)
    finally:
        os.close(fd)


def test_the_scripted_agents_messages_arrive_in_order(tmp_path: Path) -> None:
    script = [
        {"say": "starting"},
        {"phase": "analysis", "status": "started"},
        {"progress": 25, "message": "reading"},
        {"write": {"path": "src/fix.py", "content": "print('fixed')\n"}},
        {"phase": "analysis", "status": "completed"},
        {"usage": {"model": "scripted", "input_tokens": 10, "output_tokens": 4, "cost_usd": 0.5}},
        {"experience": {"title": "Read first", "content": "Read the code before editing."}},
        {"progress": 100},
        {"result": {"summary": "Fixed it", "pr_url": "https://example.com/pr/7"}},
    ]

    async def scenario() -> tuple[list[Message], int]:
        return await collect(await start_scripted(tmp_path, script))

    messages, code = run(scenario())
    assert code == 0
    assert messages == [
        say("starting"),
        Phase(name="analysis", status="started"),
        Progress(percentage=25, message="reading"),
        Phase(name="analysis", status="completed"),
        Usage(model="scripted", input_tokens=10, output_tokens=4, cost_usd=0.5),
        Experience(title="Read first", content="Read the code before editing."),
        Progress(percentage=100),
        Result(summary="Fixed it", pr_url="https://example.com/pr/7"),
    ]
    assert (tmp_path / "workspace" / "src" / "fix.py").read_text() == "print('fixed')\n"


def test_without_a_script_the_agent_says_the_title(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Message], int]:
        return await collect(await start_scripted(tmp_path, None))

    assert run(scenario()) == ([say("Demo task")], 0)


def test_a_question_waits_for_its_answer(tmp_path: Path) -> None:
    script = [{"ask": "Which database?", "options": ["postgres", "sqlite"], "default": "sqlite"}]

    async def scenario() -> tuple[Question, list[Message], int]:
        proc = await start_scripted(tmp_path, script)
        messages = proc.messages()
        question = await until(messages, lambda m: isinstance(m, Question))
        assert isinstance(question, Question)
        assert await proc.send(Answer(question_id=question.id, response="postgres"))
        rest = [m async for m in messages]
        return question, rest, await proc.wait()

    question, rest, code = run(scenario())
    assert question == Question(
        id="q1", question="Which database?", options=("postgres", "sqlite"), default="sqlite"
    )
    assert (rest, code) == ([say("answer: postgres")], 0)


@pytest.mark.parametrize(
    ("decision", "on_reject", "said", "exit_code"),
    [
        (Decision(checkpoint_id="c1", approved=True), None, "approved", 0),
        (
            Decision(checkpoint_id="c1", approved=False, reason="too risky"),
            None,
            "rejected: too risky",
            3,
        ),
        (
            Decision(checkpoint_id="c1", approved=False, reason="later"),
            "continue",
            "rejected: later",
            0,
        ),
    ],
)
def test_a_checkpoint_waits_for_its_decision(
    tmp_path: Path, decision: Decision, on_reject: str | None, said: str, exit_code: int
) -> None:
    step: dict[str, Any] = {"checkpoint": "deploy", "description": "Deploy to staging"}
    if on_reject:
        step["on_reject"] = on_reject
    script = [step, {"say": "after"}]

    async def scenario() -> tuple[Checkpoint, list[Message], int]:
        proc = await start_scripted(tmp_path, script)
        messages = proc.messages()
        checkpoint = await until(messages, lambda m: isinstance(m, Checkpoint))
        await proc.send(decision)
        rest = [m async for m in messages]
        return checkpoint, rest, await proc.wait()  # type: ignore[return-value]

    checkpoint, rest, code = run(scenario())
    assert checkpoint == Checkpoint(id="c1", action="deploy", description="Deploy to staging")
    assert rest == ([say(said), say("after")] if exit_code == 0 else [say(said)])
    assert code == exit_code


def test_the_agent_fails_on_the_attempts_its_script_names(tmp_path: Path) -> None:
    script = [{"fail_on_attempt": 1}, {"say": "succeeded"}]

    async def scenario(attempt: int) -> tuple[list[Message], int]:
        return await collect(await start_scripted(tmp_path, script, attempt=attempt))

    assert run(scenario(1)) == ([say("failing on attempt 1")], 1)
    assert run(scenario(2)) == ([say("succeeded")], 0)


def test_cancel_ends_the_agent_and_everything_it_started(tmp_path: Path) -> None:
    script = [{"spawn_sleeper": 60}, {"sleep": 60}]

    async def scenario() -> tuple[int, int, list[Message]]:
        proc = await start_scripted(tmp_path, script)
        messages = proc.messages()
        spawned = await until(messages, lambda m: isinstance(m, Output) and "sleeper" in m.text)
        sleeper = int(spawned.text.split()[-1])  # type: ignore[union-attr]
        assert not gone(sleeper, timeout=0)
        code = await proc.terminate(grace=PATIENCE, reason="user asked", notice_grace=PATIENCE)
        rest = [m async for m in messages]  # ends: nothing holds the agent's pipes any more
        return sleeper, code, rest

    sleeper, code, rest = run(scenario())
    assert code == 130  # the agent read the cancel notice and stopped on its own
    assert rest == [say("cancelled")]
    assert gone(sleeper)


def test_terminate_signals_the_whole_group_when_the_agent_cannot_read_a_notice(
    tmp_path: Path,
) -> None:
    code = (
        "import subprocess, time;"
        "p = subprocess.Popen(['sleep', '60']);"
        "print(p.pid, flush=True);"
        "time.sleep(60)"
    )

    async def scenario() -> tuple[int, int]:
        proc = await start_program(code, stdin=False)
        messages = proc.messages()
        first = await until(messages, lambda m: isinstance(m, Output))
        exit_code = await proc.terminate(grace=PATIENCE)
        [m async for m in messages]
        return int(first.text), exit_code  # type: ignore[union-attr]

    sleeper, exit_code = run(scenario())
    assert exit_code == -15
    assert gone(sleeper)


def test_an_agent_ignoring_sigterm_is_killed_after_the_grace_period() -> None:
    code = (
        "import signal, sys, time;"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print('ready', flush=True);"
        "sys.stdin.read(0);"
        "time.sleep(60)"
    )

    async def scenario() -> int:
        proc = await start_program(code)
        messages = proc.messages()
        await until(messages, lambda m: m == say("ready"))
        exit_code = await proc.terminate(grace=0.3, notice_grace=0.1)
        [m async for m in messages]
        return exit_code

    assert run(scenario()) == -9


def test_an_agent_that_exits_leaves_nothing_of_its_group_behind(tmp_path: Path) -> None:
    async def scenario() -> tuple[list[Message], int]:
        return await collect(await start_scripted(tmp_path, [{"spawn_sleeper": 60}, {"exit": 0}]))

    messages, code = run(scenario())
    assert code == 0
    assert gone(int(messages[0].text.split()[-1]))  # type: ignore[union-attr]


def test_a_terminated_agent_is_terminated_once() -> None:
    async def scenario() -> tuple[int, int, bool]:
        proc = await start_program("print('bye')")
        _, code = await collect(proc)
        again = await proc.terminate(grace=0.1)
        return code, again, await proc.send(Answer(question_id=None, response="late"))

    assert run(scenario()) == (0, 0, False)


def test_a_program_that_does_not_speak_the_protocol_is_plain_text() -> None:
    code = "import sys; print('hi'); print('{not json'); print('oops', file=sys.stderr)"

    async def scenario() -> tuple[list[Message], int]:
        return await collect(await start_program(code))

    messages, exit_code = run(scenario())
    assert exit_code == 0
    assert sorted(messages, key=lambda m: m.stream) == [  # type: ignore[union-attr]
        Output(stream="stderr", text="oops"),
        say("hi"),
        say("{not json"),
    ]


def test_a_very_long_line_is_split_not_fatal() -> None:
    size = 2 * MAX_LINE_BYTES + 10
    code = f"import sys; sys.stdout.write('é' * {size // 2} + '\\n' + 'end\\n')"

    async def scenario() -> tuple[list[Message], int]:
        return await collect(await start_program(code))

    messages, exit_code = run(scenario())
    texts = [m.text for m in messages]  # type: ignore[union-attr]
    assert exit_code == 0
    assert texts[-1] == "end"
    assert "".join(texts[:-1]) == "é" * (size // 2)
    assert all(len(t.encode()) <= MAX_LINE_BYTES for t in texts)


def test_output_over_the_cap_is_dropped_but_protocol_messages_still_arrive() -> None:
    code = (
        "import json\n"
        "for i in range(1000): print('x' * 99)\n"
        "print(json.dumps({'type': 'result', 'summary': 'done'}))\n"
    )
    cap = 5_000

    async def scenario() -> tuple[list[Message], list[Chunk], AgentProcess, OutputBatcher]:
        chunks: list[Chunk] = []

        async def store(batch: list[Chunk]) -> None:
            chunks.extend(batch)

        batcher = OutputBatcher(store, cap_bytes=cap)
        proc = await start_program(code, cap=cap)
        messages = []
        async for message in proc.messages():
            messages.append(message)
            if isinstance(message, Output):
                await batcher.add(message.stream, message.text + "\n")
        await batcher.close()
        await proc.wait()
        return messages, chunks, proc, batcher

    messages, chunks, proc, batcher = run(scenario())
    assert messages[-1] == Result(summary="done")
    assert proc.output_bytes > cap and proc.output_bytes + proc.dropped_output_bytes == 99_000
    markers = [c for c in chunks if c.stream == "system"]
    assert markers == [chunks[-1]] and markers[0].text == "[output truncated at 5000 bytes]"
    assert sum(len(c.text) for c in chunks if c.stream == "stdout") == cap
    assert batcher.truncated


def test_a_missing_program_cannot_start(tmp_path: Path) -> None:
    async def scenario() -> None:
        await AgentProcess.start(["no-such-agent-xyz"], tmp_path, dict(os.environ), adapter("text"))

    with pytest.raises(AgentStartError, match="no-such-agent-xyz"):
        run(scenario())


def test_wait_until_a_deadline_returns_none_while_the_agent_runs() -> None:
    async def scenario() -> tuple[int | None, int]:
        proc = await start_program("import time; time.sleep(60)", stdin=False)
        early = await proc.wait_until(asyncio.get_running_loop().time() + 0.05)
        return early, await proc.terminate(grace=PATIENCE)

    assert run(scenario()) == (None, -15)


def test_a_test_command_reports_its_exit_code_and_output_tail(tmp_path: Path) -> None:
    program = "import sys; print('x' * 100); print('tests: 1 failed'); sys.exit(1)"
    command = f'{sys.executable} -c "{program}"'

    async def scenario():
        return await run_test_command(command, tmp_path, dict(os.environ), timeout=10, cap_bytes=20)

    result = run(scenario())
    assert (result.exit_code, result.timed_out) == (1, False)
    assert result.output_tail == "xxx\ntests: 1 failed\n"  # the last 20 bytes
    assert result.duration > 0


def test_a_test_command_is_never_run_by_a_shell(tmp_path: Path) -> None:
    async def scenario():
        return await run_test_command(
            "echo safe; touch pwned", tmp_path, dict(os.environ), timeout=10
        )

    result = run(scenario())
    assert result.exit_code == 0 and result.output_tail == "safe; touch pwned\n"
    assert not (tmp_path / "pwned").exists()


def test_a_test_command_over_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    code = (
        "import subprocess, time; p = subprocess.Popen(['sleep', '60']);"
        "print(p.pid, flush=True); time.sleep(60)"
    )

    async def scenario():
        return await run_test_command(
            f'{sys.executable} -c "{code}"', tmp_path, dict(os.environ), timeout=3
        )  # long enough for a loaded machine to start Python and print the child's pid

    result = run(scenario())
    assert result.timed_out and result.exit_code == -15
    assert gone(int(result.output_tail.split()[0]))


@pytest.mark.parametrize(
    ("command", "code"), [("", 2), ("pytest 'unbalanced", 2), ("no-such-tool-xyz", 127)]
)
def test_a_test_command_that_cannot_run_says_why(tmp_path: Path, command: str, code: int) -> None:
    async def scenario():
        return await run_test_command(command, tmp_path, dict(os.environ), timeout=10)

    result = run(scenario())
    assert result.exit_code == code and result.output_tail
