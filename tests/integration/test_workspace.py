"""Workspaces: a real git repository cloned onto a new branch, or an empty directory."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infrastructure.agent.workspace import (
    Workspace,
    WorkspaceError,
    changed_files,
    check_repository_url,
    prepare,
    workspace_path,
)

IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A repository with main (README.md) and develop (README.md, app.py)."""
    repo = tmp_path / "origin"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    (repo / "README.md").write_text("# demo\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "--quiet", "-m", "first")
    git(repo, "checkout", "--quiet", "-b", "develop")
    (repo / "app.py").write_text("print('v1')\n")
    git(repo, "add", "app.py")
    git(repo, "commit", "--quiet", "-m", "app")
    git(repo, "checkout", "--quiet", "main")
    return repo


def test_the_workspace_of_an_execution_is_root_task_execution(tmp_path: Path) -> None:
    assert workspace_path(tmp_path, "t1", "e1") == tmp_path / "t1" / "e1"
    for task_id, execution_id in [("..", "e"), ("t", "a/b"), ("", "e"), ("t", ".")]:
        with pytest.raises(WorkspaceError):
            workspace_path(tmp_path, task_id, execution_id)


def test_a_clone_at_the_base_branch_lands_on_a_new_branch_and_lists_what_changed(
    tmp_path: Path, origin: Path
) -> None:
    path = workspace_path(tmp_path / "workspaces", "t1", "e1")
    workspace = run(
        prepare(
            path,
            repository_url=str(origin),
            base_branch="develop",
            branch="taskwarden/t1",
            allow_local=True,
            timeout=30,
        )
    )
    assert workspace == Workspace(
        path=path, branch="taskwarden/t1", base_commit=git(origin, "rev-parse", "develop")
    )
    assert (path / "app.py").read_text() == "print('v1')\n"
    assert git(path, "branch", "--show-current") == "taskwarden/t1"
    assert run(changed_files(workspace)) == []

    (path / "notes.txt").write_text("new\n")
    (path / "src").mkdir()
    (path / "src" / "deep.py").write_text("x = 1\n")
    (path / "app.py").write_text("print('v2')\n")
    assert run(changed_files(workspace)) == ["app.py", "notes.txt", "src/deep.py"]

    git(path, "add", "-A")
    git(path, "commit", "--quiet", "-m", "agent work")  # committed changes are still changes
    (path / "README.md").unlink()
    assert run(changed_files(workspace)) == ["README.md", "app.py", "notes.txt", "src/deep.py"]


def test_a_file_url_is_cloned_when_local_clones_are_allowed(tmp_path: Path, origin: Path) -> None:
    workspace = run(
        prepare(tmp_path / "ws", repository_url=origin.as_uri(), branch="work", allow_local=True)
    )
    assert workspace.branch == "work"
    assert workspace.base_commit == git(origin, "rev-parse", "main")  # the default branch
    assert not (tmp_path / "ws" / "app.py").exists()


def test_without_a_new_branch_the_agent_works_on_the_base_branch(
    tmp_path: Path, origin: Path
) -> None:
    workspace = run(
        prepare(
            tmp_path / "ws", repository_url=str(origin), base_branch="develop", allow_local=True
        )
    )
    assert workspace.branch == "develop"


def test_an_empty_workspace_is_an_empty_directory_with_no_changed_files(tmp_path: Path) -> None:
    git(tmp_path, "init", "--quiet")  # even inside someone else's repository
    path = workspace_path(tmp_path / "workspaces", "t1", "e1")
    workspace = run(prepare(path))
    assert workspace == Workspace(path=path)
    assert path.is_dir() and list(path.iterdir()) == []
    (path / "made.txt").write_text("by the agent\n")
    assert run(changed_files(workspace)) == []


def test_a_workspace_that_already_has_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "left.txt").write_text("over")
    with pytest.raises(WorkspaceError, match="not empty"):
        run(prepare(tmp_path / "ws"))


def test_an_unknown_base_branch_fails_clearly_and_leaves_nothing(
    tmp_path: Path, origin: Path
) -> None:
    with pytest.raises(WorkspaceError, match="(?s)git clone failed .*nope"):
        run(
            prepare(
                tmp_path / "ws", repository_url=str(origin), base_branch="nope", allow_local=True
            )
        )
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("branch", ["-b", "bad..name", "with space", "end.lock", ""])
def test_an_invalid_branch_name_is_refused(tmp_path: Path, origin: Path, branch: str) -> None:
    with pytest.raises(WorkspaceError, match="not a valid branch name"):
        run(prepare(tmp_path / "ws", repository_url=str(origin), branch=branch, allow_local=True))


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/repo.git",
        "ftp://example.com/repo.git",
        "ext::sh -c touch% /tmp/pwned",
        "fd::17",
        "--upload-pack=touch /tmp/pwned",
        "-oProxyCommand=x",
        "https://example.com/repo.git\nhttps://evil",
        "file:///srv/repo.git",
        "/srv/repo.git",
        "./repo",
    ],
)
def test_a_repository_url_with_a_refused_scheme_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(WorkspaceError, match="refused repository URL"):
        run(prepare(tmp_path / "ws", repository_url=url))
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo.git",
        "ssh://git@github.com/org/repo.git",
        "git://example.com/repo.git",
        "git@github.com:org/repo.git",
        "HTTPS://example.com/repo",
    ],
)
def test_remote_urls_are_accepted(url: str) -> None:
    check_repository_url(url)


def test_an_empty_url_is_no_repository_url() -> None:
    with pytest.raises(WorkspaceError, match="refused repository URL"):
        check_repository_url("")


def test_local_repositories_need_allow_local() -> None:
    for url in ("file:///srv/repo.git", "/srv/repo.git", "../repo"):
        check_repository_url(url, allow_local=True)
    with pytest.raises(WorkspaceError):
        check_repository_url("ext::sh", allow_local=True)


def test_a_failed_clone_does_not_reveal_the_credentials_in_its_url(tmp_path: Path) -> None:
    url = "https://robot:s3cr3t-t0ken@127.0.0.1:9/org/repo.git"  # nothing listens on port 9
    with pytest.raises(WorkspaceError) as failure:
        run(prepare(tmp_path / "ws", repository_url=url, timeout=20))
    assert "s3cr3t" not in str(failure.value)
    assert "git clone failed" in str(failure.value)


def test_reading_changes_runs_no_command_the_agent_planted_in_git_config(
    tmp_path: Path, origin: Path
) -> None:
    workspace = run(prepare(tmp_path / "ws", repository_url=str(origin), allow_local=True))
    planted = tmp_path / "planted"
    git(workspace.path, "config", "core.fsmonitor", f"touch {planted}; echo")
    (workspace.path / "new.txt").write_text("x")
    assert run(changed_files(workspace)) == ["new.txt"]
    assert not planted.exists()
