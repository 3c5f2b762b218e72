"""A task's test_command, run after the agent: split like a shell would, but never run by one."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from infrastructure.agent.processes import ProcessResult, run_argv

TestRun = ProcessResult
UNPARSABLE = 2  # what a shell answers to a syntax error


def parse_test_command(command: str) -> list[str]:
    """The argv of a test command; ValueError when it is empty or unbalanced (check on submit)."""
    argv = shlex.split(command)
    if not argv:
        raise ValueError("the test command is empty")
    return argv


async def run_test_command(
    command: str,
    cwd: Path | str,
    env: Mapping[str, str],
    timeout: float,
    cap_bytes: int = 65_536,
) -> TestRun:
    """Run the command in the workspace; its process group is killed on timeout."""
    try:
        argv = parse_test_command(command)
    except ValueError as error:
        return TestRun(exit_code=UNPARSABLE, duration=0.0, output_tail=f"test command: {error}")
    return await run_argv(argv, cwd=cwd, env=env, timeout=timeout, cap_bytes=cap_bytes)
