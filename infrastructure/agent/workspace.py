"""The directory an execution runs in: a fresh clone on a new branch, or an empty directory.

Workspaces live at <root>/<task_id>/<execution_id>; other code serves files from that layout. git is
run as a program with an argv, never through a shell, with prompts disabled, a timeout and a cap
on its output. Only https, ssh (also as user@host:path), and git URLs are cloned; file:// and local
paths only with allow_local=True. After the agent ran, git runs in the workspace with the agent's
scrubbed environment and with fsmonitor and hooks off, as the agent may have changed .git/config.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

import msgspec

from infrastructure.agent.environment import agent_environment
from infrastructure.agent.processes import ProcessResult, run_argv

REMOTE_SCHEMES = ("https", "ssh", "git")
SCP_LIKE = re.compile(r"^(?:[A-Za-z0-9._~-]+@)?[A-Za-z0-9.-]+:(?!//)")  # user@host:path
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
CREDENTIALS = re.compile(r"(://)[^/@\s]+@")
SAFE_CONFIG = ("-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null")


class WorkspaceError(Exception):
    """A workspace that could not be prepared or read."""


class Workspace(msgspec.Struct, frozen=True, kw_only=True):
    path: Path
    branch: str | None = None  # the branch the agent works on (None: not a git workspace)
    base_commit: str | None = None  # the commit it started from


def workspace_path(root: Path | str, task_id: str, execution_id: str) -> Path:
    """root / task_id / execution_id, refusing ids that would leave root."""
    for part in (task_id, execution_id):
        if part in ("", ".", "..") or any(c in part for c in "/\\\0"):
            raise WorkspaceError(f"not a usable workspace path segment: {part!r}")
    return Path(root) / task_id / execution_id


def redact(text: str) -> str:
    """Text without the credentials of any URL in it (https://user:token@host)."""
    return CREDENTIALS.sub(r"\1***@", text)


def check_repository_url(url: str, *, allow_local: bool = False) -> None:
    """Refuse URLs git would take as an option, run a helper for, or read from this machine."""
    if not url or url.startswith("-") or any(ord(c) < 0x20 or c == "\x7f" for c in url):
        raise WorkspaceError(f"refused repository URL {redact(url)!r}")
    if "::" in url:  # transport helpers such as ext::
        raise WorkspaceError(f"refused repository URL {redact(url)!r}: transport helpers")
    scheme = SCHEME.match(url)
    if scheme:
        name = scheme.group(1).lower()
        if name in REMOTE_SCHEMES or (name == "file" and allow_local):
            return
        raise WorkspaceError(f"refused repository URL {redact(url)!r}: scheme {name} not allowed")
    if SCP_LIKE.match(url):
        return
    if not allow_local:
        raise WorkspaceError(f"refused repository URL {redact(url)!r}: local paths not allowed")


def _git_env(base: Mapping[str, str], allow_local: bool) -> dict[str, str]:
    env = dict(base)
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="",
        SSH_ASKPASS="",
        GCM_INTERACTIVE="never",
        GIT_ALLOW_PROTOCOL=":".join(("https", "ssh", "git", *(("file",) if allow_local else ()))),
    )
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


class _Git:
    def __init__(self, env: Mapping[str, str], deadline: float, cap_bytes: int) -> None:
        self.env = env
        self.deadline = deadline
        self.cap_bytes = cap_bytes

    async def run(self, cwd: Path, *args: str) -> ProcessResult:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise WorkspaceError(f"git {args[0]}: out of time")
        ran = await run_argv(
            ["git", *SAFE_CONFIG, *args],
            cwd=cwd,
            env=self.env,
            timeout=remaining,
            cap_bytes=self.cap_bytes,
        )
        if ran.timed_out:
            raise WorkspaceError(f"git {args[0]} timed out")
        return ran

    async def check(self, cwd: Path, *args: str) -> str:
        ran = await self.run(cwd, *args)
        if ran.exit_code != 0:
            tail = redact(ran.output_tail.strip())[-2000:]
            raise WorkspaceError(f"git {args[0]} failed (exit {ran.exit_code}): {tail}")
        return ran.output_tail


async def _check_branch(git: _Git, cwd: Path, name: str) -> None:
    ran = await git.run(cwd, "check-ref-format", "--branch", name)
    if name.startswith("-") or ran.exit_code != 0:
        raise WorkspaceError(f"not a valid branch name: {name!r}")


async def prepare(
    path: Path | str,
    *,
    repository_url: str | None = None,
    base_branch: str | None = None,
    branch: str | None = None,
    timeout: float = 600.0,
    allow_local: bool = False,
    cap_bytes: int = 65_536,
    env: Mapping[str, str] | None = None,
) -> Workspace:
    """An empty directory at `path`, or a clone of `repository_url` at `base_branch` (its default
    branch if None) checked out on a new `branch` (if given). `env` (default: this process's) is
    what git runs with, for the operator's credential helpers and ssh keys."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise WorkspaceError(f"the workspace {path} already exists and is not empty")
    if not repository_url:
        path.mkdir(parents=True, exist_ok=True)
        return Workspace(path=path)
    check_repository_url(repository_url, allow_local=allow_local)
    git_env = _git_env(os.environ if env is None else env, allow_local)
    git = _Git(git_env, time.monotonic() + timeout, cap_bytes)
    path.parent.mkdir(parents=True, exist_ok=True)
    for name in (base_branch, branch):
        if name is not None:
            await _check_branch(git, path.parent, name)
    chosen = ("--branch", base_branch) if base_branch else ()
    try:
        await git.check(
            path.parent, "clone", "--single-branch", *chosen, "--", repository_url, str(path)
        )
        if branch:
            await git.check(path, "checkout", "--quiet", "-b", branch)
        current = (await git.check(path, "symbolic-ref", "--short", "HEAD")).strip()
        head = await git.run(path, "rev-parse", "--verify", "--quiet", "HEAD")
    except WorkspaceError:
        shutil.rmtree(path, ignore_errors=True)
        raise
    base_commit = head.output_tail.strip() if head.exit_code == 0 else None
    return Workspace(path=path, branch=current or None, base_commit=base_commit)


async def changed_files(
    workspace: Workspace, *, timeout: float = 60.0, env: Mapping[str, str] | None = None
) -> list[str]:
    """Files added, changed or deleted since the base commit, committed or not (untracked ones
    included), relative to the workspace; an empty list for a directory that is not a clone."""
    path = workspace.path
    if not (path / ".git").is_dir():
        return []
    scrubbed = agent_environment(os.environ if env is None else env, {})
    git_env = {**_git_env(scrubbed, False), "GIT_CEILING_DIRECTORIES": str(path.parent)}
    git = _Git(git_env, time.monotonic() + timeout, cap_bytes=16 * 1024 * 1024)
    status = await git.check(
        path, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames"
    )
    names = {entry[3:] for entry in status.split("\0") if len(entry) > 3}
    if workspace.base_commit:
        diff = await git.check(
            path, "diff", "--name-only", "-z", "--no-renames", workspace.base_commit
        )
        names.update(name for name in diff.split("\0") if name)
    return sorted(names)
