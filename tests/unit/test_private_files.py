"""The files generated once in a new data dir (the JWT secret, the audit key) when the processes
of ``taskwarden serve --workers N`` start together on it (infrastructure/private_files.py)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from infrastructure.audit_key import KEY_FILE, load_audit_key
from infrastructure.tokens import SECRET_FILE, load_secret
from tests.together import together

STARTERS = 4  # threads standing for the processes
ATTEMPTS = 200  # new data dirs


def _secret(data_dir: Path) -> object:
    return load_secret(None, data_dir)


def _audit_key(data_dir: Path) -> object:
    return load_audit_key(None, data_dir).key_id


@pytest.mark.parametrize(
    ("load", "name"), [(_secret, SECRET_FILE), (_audit_key, KEY_FILE)], ids=["jwt", "audit"]
)
def test_processes_starting_together_on_a_new_data_dir_agree_on_one_whole_file(
    tmp_path: Path, load: Callable[[Path], object], name: str
) -> None:
    """Each starter generates its own; the first one linked into place is kept and every
    starter reads it, never a part of it (a process once read the JWT secret file its sibling
    had created and not yet written, and failed to start: "the JWT secret must be at least 32
    bytes"). Nothing is left beside it, and it was private from its creation."""
    for attempt in range(ATTEMPTS):
        data_dir = tmp_path / f"data{attempt}"
        found = together(STARTERS, lambda data_dir=data_dir: load(data_dir))
        assert found == [load(data_dir)] * STARTERS, attempt
        assert [p.name for p in data_dir.iterdir()] == [name]
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
