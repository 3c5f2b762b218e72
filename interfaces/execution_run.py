"""One execution, start to end: workspace, agent process, reports, people's answers, the result.

Three things run at once: the agent's messages are pumped to the backend (output batched, other
messages reported in order), a watcher heartbeats (lease, cancel, decisions written back to the
agent, the timeout), and the run waits for the process to end. The end is recorded only once the
process group is gone.

The watcher heartbeats every ``POLL_RUNNING`` seconds, or at once when the run's ``nudge`` is set:
a local worker's pool sets it when a cancel of the task is published
(``interfaces/execution_host.py``), so the cancel reaches the agent without waiting for the next
heartbeat. The nudge only says "look now": whether to stop is the heartbeat's answer, as always.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from application.limits import storable
from application.scheduler import Claim
from infrastructure.agent.adapters import adapter
from infrastructure.agent.batcher import OutputBatcher
from infrastructure.agent.catalog import AgentSpec, render
from infrastructure.agent.environment import agent_environment
from infrastructure.agent.process import AgentProcess, AgentStartError
from infrastructure.agent.protocol import (
    Answer,
    Checkpoint,
    Decision,
    Notice,
    Output,
    Question,
    Result,
    Say,
)
from infrastructure.agent.test_command import run_test_command
from infrastructure.agent.workspace import (
    Workspace,
    WorkspaceError,
    changed_files,
    prepare,
    workspace_path,
)
from infrastructure.settings import Settings
from interfaces.worker_backend import Backend

log = logging.getLogger("taskwarden.worker")

GRACE_SECONDS = 5.0
POLL_RUNNING = 0.5  # seconds between heartbeats while the agent works
POLL_WAITING = 0.2  # while it waits on a person: answers reach it quickly
CLONE_TIMEOUT = 600.0
PR_URL = re.compile(r"https://[\w.-]+/[\w.-]+/[\w.-]+/(?:pull|merge_requests)/\d+")


@dataclass
class RunState:
    waiting_on: str | None = None  # our id of the question or checkpoint the agent waits on
    agent_item_id: str | None = None  # the agent's own id for it, echoed in the reply
    cancelled: bool = False
    timed_out: bool = False
    lost: bool = False
    result: Result | None = None
    pr_url: str | None = None
    errors: list[str] = field(default_factory=list)
    noticed: set[str] = field(default_factory=set)  # notices the agent was sent


def agent_name(claim: Claim, settings: Settings) -> str:
    chosen = claim.options.get("agent") or claim.metadata.get("agent")
    return str(chosen) if chosen else settings.default_agent


def branch_name(claim: Claim) -> str | None:
    if not claim.repository_url:
        return None
    return f"taskwarden/{claim.slug or claim.task_id[:8]}-{claim.attempt}"


def prompt(claim: Claim) -> str:
    return f"{claim.title}\n\n{claim.description}".strip()


@dataclass(frozen=True)
class Pace:
    """When the watcher heartbeats: every ``running`` seconds while the agent works, ``waiting``
    while it waits on a person, and at once when ``nudge`` is set (then cleared)."""

    running: float = POLL_RUNNING
    waiting: float = POLL_WAITING
    nudge: asyncio.Event | None = None

    async def wait(self, waiting_on: str | None) -> None:
        seconds = self.waiting if waiting_on else self.running
        if self.nudge is None:
            await asyncio.sleep(seconds)
            return
        # not asyncio.wait_for: on 3.11 it can lose a cancel (cpython gh-86296)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.nudge.wait()
        self.nudge.clear()


async def run_execution(
    claim: Claim,
    backend: Backend,
    settings: Settings,
    agents: dict[str, AgentSpec],
    pace: Pace | None = None,
) -> None:
    """Runs the claimed execution and reports its end; never raises for the agent's failures."""
    pace = pace or Pace()
    started = time.monotonic()
    name = agent_name(claim, settings)
    spec = agents.get(name)
    if spec is None:
        await _finish(backend, claim, "failed", {"error": f"unknown agent {name!r}"})
        return
    path = workspace_path(settings.workspaces, claim.task_id, claim.execution_id)
    try:
        workspace = await prepare(
            path,
            repository_url=claim.repository_url,
            base_branch=claim.base_branch,
            branch=branch_name(claim),
            timeout=CLONE_TIMEOUT,
            allow_local=settings.allow_local_repositories,
        )
    except WorkspaceError as error:
        await _finish(backend, claim, "failed", {"error": f"workspace: {error}", "agent": name})
        return
    task_file = _write_task_file(claim, workspace.path)
    values = {
        "prompt": prompt(claim),
        "workspace": str(workspace.path),
        "task_file": str(task_file),
        "python": sys.executable,
    }
    env = agent_environment(os.environ, spec.env) | {
        "TASKWARDEN_TASK_FILE": str(task_file),
        "TASKWARDEN_TASK_ID": claim.task_id,
        "TASKWARDEN_EXECUTION_ID": claim.execution_id,
    }
    try:
        process = await AgentProcess.start(
            render(spec, values),
            workspace.path,
            env,
            adapter(spec.adapter),
            output_cap_bytes=settings.output_cap_bytes,
            stdin=spec.stdin,
        )
    except AgentStartError as error:
        await _finish(backend, claim, "failed", {"error": str(error), "agent": name})
        return
    state = RunState()
    exit_code = await _supervise(claim, backend, settings, process, state, pace)
    if state.lost:
        log.warning("execution %s was recovered elsewhere; not reporting", claim.execution_id)
        return
    outcome, result = await _outcome(claim, settings, workspace, env, exit_code, state, started)
    result |= {"agent": name, "output_bytes": process.output_bytes}
    await _finish(backend, claim, outcome, result)


async def _supervise(  # noqa: PLR0913
    claim: Claim,
    backend: Backend,
    settings: Settings,
    process: AgentProcess,
    state: RunState,
    pace: Pace,
) -> int:
    async def flush(chunks: list[Any]) -> None:  # no NUL: no Postgres text column holds one
        await backend.output(claim, [(c.seq, c.stream, storable(c.text)) for c in chunks])

    batcher = OutputBatcher(flush, cap_bytes=settings.output_cap_bytes)
    pump = asyncio.ensure_future(_pump(claim, backend, process, batcher, state))
    watch = asyncio.ensure_future(_watch(claim, backend, process, state, pace))
    try:
        exit_code = await process.wait()
        await pump  # the rest of its output, in order
    except asyncio.CancelledError:  # the worker is stopping: the agent must not outlive it
        with contextlib.suppress(Exception):
            await asyncio.shield(process.terminate(GRACE_SECONDS, reason="worker stopping"))
        raise
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await watch
        with contextlib.suppress(Exception):
            await batcher.close()
    return exit_code


async def _pump(
    claim: Claim, backend: Backend, process: AgentProcess, batcher: OutputBatcher, st: RunState
) -> None:
    async for message in process.messages():
        try:
            if isinstance(message, Output | Say):
                stream = message.stream if isinstance(message, Output) else "stdout"
                st.pr_url = st.pr_url or _pr_url(message.text)
                await batcher.add(stream, message.text + "\n")  # a line, without its newline
            elif isinstance(message, Result):
                st.result = message
            else:
                await _report(claim, backend, batcher, message, st)
        except Exception as error:  # noqa: BLE001 - one bad report must not stop the run
            log.warning("execution %s: report failed: %s", claim.execution_id, error)
            st.errors.append(str(error))


async def _report(
    claim: Claim, backend: Backend, batcher: OutputBatcher, message: Any, st: RunState
) -> None:
    await batcher.flush()  # the output before a message is stored before it
    body = msgspec.to_builtins(message)
    item_id = await backend.report(claim, body)
    if isinstance(message, Question | Checkpoint):
        st.waiting_on, st.agent_item_id = item_id, message.id


async def _watch(
    claim: Claim, backend: Backend, process: AgentProcess, st: RunState, pace: Pace
) -> None:
    """Heartbeats until cancelled; ends the agent on cancel, on timeout, or when the lease is
    lost. Time spent waiting on a person does not count toward the timeout."""
    budget = float(claim.options.get("timeout") or 3600)
    last = time.monotonic()
    while True:
        await pace.wait(st.waiting_on)
        now = time.monotonic()
        if st.waiting_on is None:
            budget -= now - last
        last = now
        try:
            beat = await backend.heartbeat(claim, st.waiting_on)
        except Exception as error:  # noqa: BLE001 - the store may be down a moment: try again
            log.warning("execution %s: heartbeat failed: %s", claim.execution_id, error)
            continue
        if beat.notice is not None and beat.notice not in st.noticed and not beat.lost:
            st.noticed.add(beat.notice)
            await process.send(Notice(kind="budget", message=beat.notice))
        if beat.lost:
            st.lost = True
        elif beat.cancel_requested:
            st.cancelled = True
        elif budget <= 0:
            st.timed_out = True
        if st.lost or st.cancelled or st.timed_out:
            await process.terminate(GRACE_SECONDS, reason=_why(st))
            return
        if beat.reply is not None and st.waiting_on is not None:
            await process.send(_reply(beat.reply, st.agent_item_id))
            st.waiting_on = st.agent_item_id = None


def _why(st: RunState) -> str:
    if st.cancelled:
        return "cancelled"
    return "timed out" if st.timed_out else "the lease was lost"


def _reply(reply: dict[str, Any], agent_id: str | None) -> Answer | Decision:
    if reply["type"] == "answer":
        return Answer(question_id=agent_id or reply["question_id"], response=reply["response"])
    return Decision(
        checkpoint_id=agent_id or reply["checkpoint_id"],
        approved=reply["approved"],
        reason=reply.get("reason"),
    )


async def _outcome(
    claim: Claim,
    settings: Settings,
    workspace: Workspace,
    env: dict[str, str],
    exit_code: int,
    st: RunState,
    started: float,
) -> tuple[str, dict[str, Any]]:
    result: dict[str, Any] = {
        "exit_code": exit_code,
        "branch": workspace.branch,
        "base_commit": workspace.base_commit,
        "summary": st.result.summary if st.result else None,
        "pr_url": (st.result.pr_url if st.result else None) or st.pr_url,
        "data": dict(st.result.data) if st.result else {},
    }
    if st.errors:
        result["report_errors"] = st.errors[:10]
    with contextlib.suppress(WorkspaceError, OSError):
        result["changed_files"] = await changed_files(workspace)
    if st.cancelled:
        outcome = "cancelled"
    elif st.timed_out:
        outcome = "timed_out"
    elif exit_code != 0:
        outcome = "failed"
    else:
        outcome = await _tests(claim, workspace, env, result)
    result["duration"] = round(time.monotonic() - started, 3)
    return outcome, result


async def _tests(
    claim: Claim, workspace: Workspace, env: dict[str, str], result: dict[str, Any]
) -> str:
    if not claim.test_command:
        return "completed"
    run = await run_test_command(
        claim.test_command,
        workspace.path,
        env,
        timeout=float(claim.options.get("timeout") or 3600),
    )
    result["test"] = {"command": claim.test_command, **msgspec.to_builtins(run)}
    return "completed" if run.exit_code == 0 else "failed"


def _write_task_file(claim: Claim, workspace: Path) -> Path:
    """Beside the workspace, not in it: the agent's changes stay its own."""
    path = workspace.parent / f"{workspace.name}.task.json"
    body = {
        "id": claim.task_id,
        "execution_id": claim.execution_id,
        "title": claim.title,
        "description": claim.description,
        "metadata": claim.metadata,
        "attempt": claim.attempt,
        "workspace": str(workspace),
        "repository_url": claim.repository_url,
        "base_branch": claim.base_branch,
    }
    path.write_text(json.dumps(body))
    path.chmod(0o600)
    return path


def _pr_url(text: str) -> str | None:
    found = PR_URL.search(text)
    return found.group(0) if found else None


async def _finish(backend: Backend, claim: Claim, outcome: str, result: dict[str, Any]) -> None:
    try:
        await backend.finish(claim, outcome, result)
    except Exception as error:  # noqa: BLE001 - the lease sweep recovers it
        log.warning("execution %s: recording the end failed: %s", claim.execution_id, error)
