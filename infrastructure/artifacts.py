"""A task's workspace, read safely: a listing, one file, a zip stream; nothing outside the root.

Every path is resolved (``os.path.realpath``) and must stay inside the workspace, so a symlink
inside pointing inside is followed and one pointing outside is refused (or left out of listings
and zips). Files are then opened component by component from a descriptor of the root with
``O_NOFOLLOW``, so a directory or file swapped for a symlink after the check is refused too.
``.git`` is never listed nor served (a clone's ``.git/config`` may hold credentials); a zip
includes it only when asked.
"""

from __future__ import annotations

import base64
import os
import stat
import time
import zipfile
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import msgspec

MAX_FILE_BYTES = 500_000
MAX_ZIP_BYTES = 200 * 1024 * 1024
MAX_PATH_LENGTH = 4096
CHUNK = 64 * 1024
GIT = ".git"

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO must not block the open
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class WorkspaceError(Exception):
    """Base of the refusals below; ``details`` goes into the error envelope."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class WorkspaceNotFoundError(WorkspaceError):
    """The task was never executed, or its execution left no directory."""


class WorkspacePathError(WorkspaceError):
    """The requested path is not a regular file inside the workspace."""


class WorkspaceFileNotFoundError(WorkspaceError):
    """Nothing at that path inside the workspace."""


class WorkspaceTooLargeError(WorkspaceError):
    """A workspace over the zip limit."""


class WorkspaceFileTooLargeError(WorkspaceTooLargeError):
    """A file over the read limit."""


class Entry(msgspec.Struct, frozen=True, kw_only=True, order=True):
    path: str
    type: Literal["file", "dir"]
    size: int


class Tree(msgspec.Struct, frozen=True, kw_only=True):
    entries: list[Entry]
    truncated: bool


class FileContent(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    size: int
    encoding: Literal["utf-8", "base64"]
    content: str


class _Found(msgspec.Struct, frozen=True):
    entry: Entry
    real: str  # the resolved path, inside the root
    descend: bool  # a real directory (a symlinked one is listed, not entered)


def workspace_of(workspaces: Path, task_id: str, execution_id: str | None) -> Path:
    """``<workspaces>/<task_id>/<execution_id>``, which must exist."""
    if execution_id is None:
        raise WorkspaceNotFoundError(f"task {task_id} was never executed", task_id=task_id)
    root = Path(workspaces) / task_id / execution_id
    if not root.is_dir():
        raise WorkspaceNotFoundError(f"task {task_id} has no workspace", task_id=task_id)
    return root


# ---- a listing --------------------------------------------------------------------------------


def tree(root: Path, max_entries: int = 5000, max_depth: int = 32) -> Tree:
    """Directories and files (sizes in bytes), sorted by path, breadth first up to the caps."""
    entries: list[Entry] = []
    truncated = False
    for found in _walk(os.path.realpath(root), max_depth, include_git=False):
        if found is None or len(entries) == max_entries:
            truncated = True
            break
        entries.append(found.entry)
    return Tree(entries=sorted(entries), truncated=truncated)


def _walk(root_real: str, max_depth: int, *, include_git: bool) -> Iterator[_Found | None]:
    """What the workspace holds, breadth first; None last if deeper directories hold more."""
    level: deque[tuple[str, str]] = deque([("", root_real)])
    for _ in range(max_depth):
        deeper: deque[tuple[str, str]] = deque()
        for prefix, directory in level:
            for item in _listing(directory, include_git):
                found = _classify(root_real, prefix + item.name, item, include_git)
                if found is None:
                    continue
                yield found
                if found.descend:
                    deeper.append((found.entry.path + "/", found.real))
        level = deeper
        if not level:
            return
    if any(_listing(directory, include_git) for _, directory in level):
        yield None


def _listing(directory: str, include_git: bool) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as items:
            return sorted((i for i in items if include_git or i.name != GIT), key=lambda i: i.name)
    except OSError:  # vanished or unreadable meanwhile: nothing to show
        return []


def _classify(
    root_real: str, path: str, item: os.DirEntry[str], include_git: bool
) -> _Found | None:
    """A directory or a regular file inside the root; None for anything else."""
    try:
        if item.is_symlink():
            real = os.path.realpath(item.path)
            if _below(root_real, real, include_git) is None:
                return None
            info = os.stat(real)
        else:
            real = item.path
            info = item.stat(follow_symlinks=False)
    except OSError:  # broken link, vanished
        return None
    if stat.S_ISDIR(info.st_mode):
        return _Found(Entry(path=path, type="dir", size=0), real, not item.is_symlink())
    if stat.S_ISREG(info.st_mode):
        return _Found(Entry(path=path, type="file", size=info.st_size), real, False)
    return None


def _below(root_real: str, real: str, include_git: bool) -> list[str] | None:
    """The components of ``real`` under the root; None if outside it, the root, or in .git."""
    if real == root_real or os.path.commonpath([root_real, real]) != root_real:
        return None
    parts = os.path.relpath(real, root_real).split(os.sep)
    if not include_git and GIT in parts:
        return None
    return parts


# ---- one file ---------------------------------------------------------------------------------


def read_file(root: Path, relative: str, limit: int = MAX_FILE_BYTES) -> FileContent:
    """One regular file of the workspace: utf-8 text, or base64 for anything binary."""
    parts = _components(relative)
    root_real = os.path.realpath(root)
    inside = _below(root_real, os.path.realpath(os.path.join(root_real, *parts)), False)
    if inside is None:
        raise WorkspacePathError("path leads outside the workspace", field="path", path=relative)
    path = "/".join(parts)
    fd = _open_inside(root_real, inside, relative)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise WorkspacePathError("path is a directory", field="path", path=path)
        if not stat.S_ISREG(info.st_mode):
            raise WorkspacePathError("path is not a regular file", field="path", path=path)
        if info.st_size > limit:
            raise _too_large(path, info.st_size, limit)
        data = _read(fd, limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew meanwhile
        raise _too_large(path, len(data), limit)
    encoding, content = _encoded(data)
    return FileContent(path=path, size=len(data), encoding=encoding, content=content)


def _components(relative: str) -> list[str]:
    """The names of a relative path; refuses what could leave the root or names nothing."""
    reason = None
    if not relative:
        reason = "path is required"
    elif len(relative) > MAX_PATH_LENGTH:
        reason = f"path is longer than {MAX_PATH_LENGTH} characters"
    elif "\x00" in relative:
        reason = "path contains a NUL byte"
    elif relative.startswith(("/", "\\")) or os.path.isabs(relative):
        reason = "path must be relative to the workspace"
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if reason is None and ".." in parts:
        reason = "path may not contain '..'"
    elif reason is None and not parts:
        reason = "path names the workspace itself"
    elif reason is None and GIT in parts:
        reason = ".git is not served"
    if reason is not None:
        raise WorkspacePathError(reason, field="path", path=relative)
    return parts


def _open_inside(root_real: str, parts: list[str], relative: str) -> int:
    """Opens root/parts walking from the root's descriptor, refusing any symlink on the way."""
    directory = os.open(root_real, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        for part in parts[:-1]:
            flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
            below = os.open(part, flags, dir_fd=directory)
            os.close(directory)
            directory = below
        flags = os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK | _O_CLOEXEC
        return os.open(parts[-1], flags, dir_fd=directory)
    except (FileNotFoundError, NotADirectoryError):
        raise WorkspaceFileNotFoundError("no such file in the workspace", path=relative) from None
    except OSError as error:  # ELOOP: swapped for a symlink after the check; EACCES
        raise WorkspacePathError(
            f"path cannot be opened ({os.strerror(error.errno or 0)})", field="path", path=relative
        ) from None
    finally:
        os.close(directory)


def _read(fd: int, most: int) -> bytes:
    chunks = []
    while most > 0 and (chunk := os.read(fd, min(CHUNK, most))):
        chunks.append(chunk)
        most -= len(chunk)
    return b"".join(chunks)


def _encoded(data: bytes) -> tuple[Literal["utf-8", "base64"], str]:
    if b"\x00" not in data:
        try:
            return "utf-8", data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return "base64", base64.b64encode(data).decode("ascii")


def _too_large(path: str | None, size: int, limit: int) -> WorkspaceTooLargeError:
    if path is None:
        message = f"the workspace is over {limit} bytes"
        return WorkspaceTooLargeError(message, size=size, limit=limit)
    message = f"{path} is over {limit} bytes"
    return WorkspaceFileTooLargeError(message, path=path, size=size, limit=limit)


# ---- a zip ------------------------------------------------------------------------------------


def zip_stream(
    root: Path, *, include_git: bool = False, limit: int = MAX_ZIP_BYTES, max_depth: int = 64
) -> Iterator[bytes]:
    """Plans the zip now (refusing a workspace over ``limit`` bytes before anything is sent),
    and returns an iterator that writes it chunk by chunk, never holding it whole in memory."""
    root_real = os.path.realpath(root)
    found = [f for f in _walk(root_real, max_depth, include_git=include_git) if f is not None]
    size = sum(f.entry.size for f in found)
    if size > limit:
        raise _too_large(None, size, limit)
    return _ZipWriter(root_real, limit, include_git).chunks(found)


class _Sink:
    """An unseekable file for zipfile: what it writes is taken away after each step."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        """Part of what ZipFile asks of a file; it closes only files it opened itself."""

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class _ZipWriter:
    def __init__(self, root_real: str, limit: int, include_git: bool) -> None:
        self.root_real = root_real
        self.limit = limit
        self.include_git = include_git
        self.written = 0
        self.sink = _Sink()

    def chunks(self, found: list[_Found]) -> Iterator[bytes]:
        with zipfile.ZipFile(self.sink, "w", zipfile.ZIP_DEFLATED) as archive:
            for item in found:
                if item.entry.type == "dir":
                    if item.descend:  # a symlinked directory is there under its real path
                        archive.mkdir(item.entry.path)
                else:
                    yield from self._file(archive, item)
                if self.sink.buffer:
                    yield self.sink.take()
        yield self.sink.take()

    def _file(self, archive: zipfile.ZipFile, item: _Found) -> Iterator[bytes]:
        parts = _below(self.root_real, os.path.realpath(item.real), self.include_git)
        if parts is None:  # moved out since the plan
            return
        try:
            fd = _open_inside(self.root_real, parts, item.entry.path)
        except WorkspaceError:  # vanished or swapped for a symlink since the plan: left out
            return
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                return
            entry = zipfile.ZipInfo(item.entry.path, _zip_time(info.st_mtime))
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = (info.st_mode & 0xFFFF) << 16
            entry.file_size = info.st_size
            with archive.open(entry, "w") as target:
                while chunk := os.read(fd, CHUNK):
                    self.written += len(chunk)
                    if self.written > self.limit:  # grew while streamed: end the download
                        raise _too_large(None, self.written, self.limit)
                    target.write(chunk)
                    if len(self.sink.buffer) >= CHUNK:
                        yield self.sink.take()
        finally:
            os.close(fd)


def _zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    """Zip times start in 1980."""
    moment = time.localtime(max(mtime, 315_532_800 + 86_400))
    return (moment[0], moment[1], moment[2], moment[3], moment[4], moment[5])
