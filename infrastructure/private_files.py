"""A private file generated once in the data dir (the JWT secret, the audit key), which the
processes starting together on a new data dir agree on."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def keep_first(path: Path, content: bytes) -> None:
    """Puts ``content`` at ``path`` unless another process put its own there first, which is
    then the one every process reads. The content is written whole into a file of its own,
    private from its creation (mode 0600), then linked into place: ``path`` never shows a part
    of it (``taskwarden serve --workers N`` starts its processes together; one read the JWT
    secret file its sibling had created and not yet written, and failed to start), and a link
    fails where a rename would replace a file another process already read."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(file.fileno(), 0o600)  # whatever the umask
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process's is there: kept
            os.link(staged, path)
    finally:
        staged.unlink(missing_ok=True)
