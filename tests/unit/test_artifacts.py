"""A workspace read safely: every traversal trick is refused, listings and zips stay inside."""

from __future__ import annotations

import base64
import io
import os
import zipfile
from pathlib import Path
from urllib.parse import unquote

import pytest

from infrastructure.artifacts import (
    Entry,
    WorkspaceFileNotFoundError,
    WorkspaceFileTooLargeError,
    WorkspaceNotFoundError,
    WorkspacePathError,
    WorkspaceTooLargeError,
    read_file,
    tree,
    workspace_of,
    zip_stream,
)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    secret = tmp_path / "outside"
    secret.mkdir()
    (secret / "secret.txt").write_text("top secret")
    return secret


@pytest.fixture
def root(tmp_path: Path, outside: Path) -> Path:
    """A workspace with text, binary, nested files, .git, and symlinks in and out."""
    root = tmp_path / "workspaces" / "task" / "execution"
    (root / "src" / "lib").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "empty").mkdir()
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[remote] url = https://token@example.com/r.git")
    (root / "README.md").write_text("# Hello\n")
    (root / "src" / "main.py").write_text("print('héllo')\n")
    (root / "src" / "lib" / "util.py").write_text("X = 1\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    (root / "to-passwd").symlink_to("/etc/passwd")
    (root / "to-secret").symlink_to(outside / "secret.txt")
    (root / "out-dir").symlink_to(outside, target_is_directory=True)
    (root / "docs" / "readme-link").symlink_to("../README.md")
    (root / "src-link").symlink_to("src", target_is_directory=True)
    (root / "to-git").symlink_to(".git/config")
    (root / "dangling").symlink_to("nothing-here")
    return root


# ---- the workspace itself -------------------------------------------------------------------


def test_a_task_never_executed_has_no_workspace(tmp_path):
    with pytest.raises(WorkspaceNotFoundError):
        workspace_of(tmp_path, "task", None)


def test_an_execution_without_a_directory_has_no_workspace(tmp_path):
    with pytest.raises(WorkspaceNotFoundError):
        workspace_of(tmp_path, "task", "execution")


def test_the_workspace_is_the_execution_directory_of_the_task(tmp_path, root):
    assert workspace_of(tmp_path / "workspaces", "task", "execution") == root


# ---- reading one file -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "../x",
        "../outside/secret.txt",
        "a/../../x",
        "src/../../outside/secret.txt",
        "..",
        "/etc/passwd",
        "//etc/passwd",
        "\\etc\\passwd",
        "README.md\x00.png",
        "\x00",
        "",
        ".",
        "./",
        "src/..",
        "src/./..",
        ".git/config",
        "src/../.git/config",
        "a" * 5000,
    ],
)
def test_paths_that_could_leave_the_workspace_or_name_nothing_are_refused(root, path):
    with pytest.raises(WorkspacePathError) as refused:
        read_file(root, path)
    assert refused.value.details["field"] == "path"


def test_a_percent_encoded_dot_dot_arrives_decoded_and_is_refused(root):
    with pytest.raises(WorkspacePathError):
        read_file(root, unquote("%2e%2e/%2e%2e/etc/passwd"))


def test_a_still_encoded_dot_dot_is_only_a_name_that_does_not_exist(root):
    with pytest.raises(WorkspaceFileNotFoundError):
        read_file(root, "%2e%2e/etc/passwd")


@pytest.mark.parametrize("link", ["to-passwd", "to-secret", "out-dir/secret.txt", "to-git"])
def test_symlinks_that_resolve_outside_or_into_git_are_refused(root, link):
    with pytest.raises(WorkspacePathError) as refused:
        read_file(root, link)
    assert "secret" not in str(refused.value) and "/etc" not in str(refused.value)


def test_a_symlink_inside_pointing_inside_is_followed(root):
    assert read_file(root, "docs/readme-link").content == "# Hello\n"
    assert read_file(root, "src-link/lib/util.py").content == "X = 1\n"


def test_a_directory_is_refused(root):
    with pytest.raises(WorkspacePathError, match="directory"):
        read_file(root, "src")


def test_a_fifo_is_refused_without_blocking(root):
    os.mkfifo(root / "pipe")
    with pytest.raises(WorkspacePathError, match="regular file"):
        read_file(root, "pipe")


def test_missing_files_and_dangling_links_are_not_found(root):
    for path in ("nope.txt", "src/nope/deeper.py", "README.md/inside", "dangling"):
        with pytest.raises(WorkspaceFileNotFoundError):
            read_file(root, path)


def swap_after_check(monkeypatch, target: Path, replacement: Path) -> None:
    """The containment check passes, then ``target`` becomes a symlink to ``replacement``."""
    real = os.path.realpath

    def swapped(path):
        answer = real(path)
        if str(path).startswith(str(target)) and not target.is_symlink():
            target.rename(target.with_name("was-" + target.name))
            target.symlink_to(replacement)
        return answer

    monkeypatch.setattr(os.path, "realpath", swapped)


def test_a_directory_swapped_for_a_symlink_after_the_check_is_refused(root, outside, monkeypatch):
    (outside / "util.py").write_text("outside")
    swap_after_check(monkeypatch, root / "src" / "lib", outside)
    with pytest.raises((WorkspacePathError, WorkspaceFileNotFoundError)):  # ENOTDIR on Linux
        read_file(root, "src/lib/util.py")
    assert (root / "src" / "lib" / "util.py").read_text() == "outside"  # it was swapped


def test_a_file_swapped_for_a_symlink_after_the_check_is_refused(root, outside, monkeypatch):
    swap_after_check(monkeypatch, root / "README.md", outside / "secret.txt")
    with pytest.raises(WorkspacePathError, match="cannot be opened"):  # ELOOP
        read_file(root, "README.md")


def test_text_is_utf8_and_the_path_is_normalized(root):
    content = read_file(root, "./src//main.py")
    assert content.path == "src/main.py"
    assert content.encoding == "utf-8"
    assert content.content == "print('héllo')\n"
    assert content.size == len("print('héllo')\n".encode())


def test_binary_is_base64(root):
    content = read_file(root, "logo.png")
    assert content.encoding == "base64"
    assert base64.b64decode(content.content) == (root / "logo.png").read_bytes()
    assert content.size == 12


def test_invalid_utf8_without_nul_is_base64(root):
    (root / "latin1.txt").write_bytes("café".encode("latin-1"))
    assert read_file(root, "latin1.txt").encoding == "base64"


def test_a_file_at_the_limit_is_read_and_one_byte_more_is_refused(root):
    (root / "big.txt").write_bytes(b"a" * 1000)
    assert read_file(root, "big.txt", limit=1000).size == 1000
    with pytest.raises(WorkspaceFileTooLargeError) as refused:
        read_file(root, "big.txt", limit=999)
    assert refused.value.details == {"path": "big.txt", "size": 1000, "limit": 999}


def test_the_default_limit_is_500_kb(root):
    (root / "large.bin").write_bytes(b"\x00" * 500_001)
    with pytest.raises(WorkspaceTooLargeError):
        read_file(root, "large.bin")
    (root / "large.bin").write_bytes(b"\x00" * 500_000)
    assert read_file(root, "large.bin").size == 500_000


# ---- the listing ----------------------------------------------------------------------------


def test_the_tree_lists_dirs_and_files_with_sizes_sorted_without_git_or_links_out(root):
    listing = tree(root)
    assert listing.truncated is False
    assert listing.entries == [
        Entry(path="README.md", type="file", size=8),
        Entry(path="docs", type="dir", size=0),
        Entry(path="docs/readme-link", type="file", size=8),
        Entry(path="empty", type="dir", size=0),
        Entry(path="logo.png", type="file", size=12),
        Entry(path="src", type="dir", size=0),
        Entry(path="src-link", type="dir", size=0),
        Entry(path="src/lib", type="dir", size=0),
        Entry(path="src/lib/util.py", type="file", size=6),
        Entry(path="src/main.py", type="file", size=len("print('héllo')\n".encode())),
    ]


def test_the_tree_is_capped_in_entries_breadth_first(root):
    listing = tree(root, max_entries=3)
    assert listing.truncated is True
    assert [e.path for e in listing.entries] == ["README.md", "docs", "empty"]


def test_the_tree_is_capped_in_depth(root):
    listing = tree(root, max_depth=1)
    assert listing.truncated is True
    assert all("/" not in e.path for e in listing.entries)
    assert tree(root, max_depth=3).truncated is False


def test_empty_directories_at_the_depth_cap_do_not_truncate(tmp_path):
    (tmp_path / "a").mkdir()
    assert tree(tmp_path, max_depth=1).truncated is False


def test_a_symlink_loop_is_listed_once_not_followed(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "loop").symlink_to("..", target_is_directory=True)
    listing = tree(tmp_path)
    assert [e.path for e in listing.entries] == ["a"]  # the link resolves to the root itself


# ---- the zip --------------------------------------------------------------------------------


def unzip(chunks) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(chunks)))


def test_the_zip_holds_every_file_and_directory_inside_and_nothing_from_outside(root):
    archive = unzip(zip_stream(root))
    assert archive.testzip() is None
    assert sorted(archive.namelist()) == [
        "README.md",
        "docs/",
        "docs/readme-link",
        "empty/",
        "logo.png",
        "src/",
        "src/lib/",
        "src/lib/util.py",
        "src/main.py",
    ]
    assert archive.read("logo.png") == (root / "logo.png").read_bytes()
    assert archive.read("src/main.py") == (root / "src" / "main.py").read_bytes()
    assert archive.read("docs/readme-link") == b"# Hello\n"
    everything = b"".join(archive.read(n) for n in archive.namelist())
    assert b"top secret" not in everything and b"root:" not in everything
    assert b"token@" not in everything


def test_the_zip_includes_git_only_when_asked(root):
    names = unzip(zip_stream(root, include_git=True)).namelist()
    assert ".git/config" in names and "to-git" in names


def test_the_zip_streams_in_chunks(tmp_path):
    (tmp_path / "noise.bin").write_bytes(os.urandom(300_000))
    chunks = list(zip_stream(tmp_path))
    assert len(chunks) > 3
    assert max(len(c) for c in chunks) < 200_000
    assert unzip(chunks).read("noise.bin") == (tmp_path / "noise.bin").read_bytes()


def test_a_workspace_over_the_zip_cap_is_refused_before_anything_is_sent(root):
    with pytest.raises(WorkspaceTooLargeError) as refused:
        zip_stream(root, limit=10)
    assert refused.value.details["limit"] == 10
    assert not isinstance(refused.value, WorkspaceFileTooLargeError)


def test_a_workspace_that_grows_past_the_cap_while_streamed_ends_the_zip(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"a" * 10)
    chunks = zip_stream(tmp_path, limit=100)
    (tmp_path / "a.txt").write_bytes(b"a" * 1000)
    with pytest.raises(WorkspaceTooLargeError):
        list(chunks)


def test_an_empty_workspace_zips_to_an_empty_archive(tmp_path):
    assert unzip(zip_stream(tmp_path)).namelist() == []


def test_old_timestamps_still_zip(tmp_path):
    (tmp_path / "old.txt").write_text("old")
    os.utime(tmp_path / "old.txt", (0, 0))
    assert unzip(zip_stream(tmp_path)).read("old.txt") == b"old"
