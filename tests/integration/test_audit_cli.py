"""``taskwarden audit export|verify`` in process, on an embedded (SQLite) store: the export
verifies with the installation's key and with the served public key; a tampered file exits 1
naming the position, a key or file it cannot use exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infrastructure.audit_key import KEY_FILE, load_audit_key
from infrastructure.settings import Settings
from interfaces.cli import main
from interfaces.services import migrate
from tests.builders import a_task
from tests.stores import open_store


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Five events of team-1 and team-2 in an embedded store the CLI reads."""
    data = tmp_path / "data"
    for name in ("TASKWARDEN_DATABASE_URL", "TASKWARDEN_AUDIT_KEY_FILE", "TASKWARDEN_MEMORY_STORE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TASKWARDEN_DATA_DIR", str(data))
    settings = Settings(data_dir=data)
    migrate(settings)
    store = open_store(settings, create_tables=False)
    try:
        for n, team in enumerate(["team-1", "team-2", "team-1", "team-2", "team-1"]):
            store.commit(a_task(team_id=team, title=f"task {n}"))
    finally:
        store.close()
    return data


def run(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> tuple[int, bytes, bytes]:
    code = main(["audit", *argv])
    out, err = capsysbinary.readouterr()
    return code, out, err


def exported(capsysbinary, tmp_path: Path, *argv: str) -> Path:
    code, out, _ = run(capsysbinary, "export", *argv)
    assert code == 0
    path = tmp_path / "audit.jsonl"
    path.write_bytes(out)
    return path


def test_an_export_verifies_with_the_installations_own_key(data_dir, tmp_path, capsysbinary):
    path = exported(capsysbinary, tmp_path)
    assert len(path.read_bytes().splitlines()) == 7  # header, five records, head
    code, out, _ = run(capsysbinary, "verify", str(path))
    assert code == 0
    assert out.startswith(b"intact: 5 records of every team, positions 1 to 5")
    assert (data_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_a_team_export_with_a_range_verifies_with_the_public_key_as_base64_or_pem(
    data_dir, tmp_path, capsysbinary
):
    path = exported(capsysbinary, tmp_path, "--team", "team-1", "--from", "2", "--to", "5")
    records = [json.loads(line) for line in path.read_bytes().splitlines()[1:-1]]
    assert [r["position"] for r in records] == [3, 5]
    public = load_audit_key(None, data_dir).public
    pem = tmp_path / "public.pem"
    pem.write_text(public.pem)
    for key in (public.base64, str(pem)):
        code, out, _ = run(capsysbinary, "verify", str(path), "--public-key", key)
        assert code == 0, out
        assert b"2 records of team-1, positions 2 to 5" in out


def test_a_tampered_export_exits_1_naming_the_position(data_dir, tmp_path, capsysbinary):
    path = exported(capsysbinary, tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:3] + lines[4:]))  # position 3 dropped
    code, out, err = run(capsysbinary, "verify", str(path))
    assert (code, out) == (1, b"")
    assert err.startswith(b"removed: position 3 is missing") and err.count(b"\n") == 1


def test_another_installations_key_exits_1(data_dir, tmp_path, capsysbinary):
    path = exported(capsysbinary, tmp_path)
    other = load_audit_key(None, tmp_path / "elsewhere").public.base64
    code, _, err = run(capsysbinary, "verify", str(path), "--public-key", other)
    assert code == 1 and err.startswith(b"signature: the head is signed by key")


def test_what_cannot_be_checked_exits_2(data_dir, tmp_path, capsysbinary):
    path = exported(capsysbinary, tmp_path)
    code, _, err = run(capsysbinary, "verify", str(tmp_path / "missing.jsonl"))
    assert code == 2 and err.startswith(b"cannot verify")
    code, _, err = run(capsysbinary, "verify", str(path), "--public-key", "not-a-key")
    assert code == 2 and b"not an Ed25519 public key" in err
    (data_dir / KEY_FILE).unlink()
    code, _, err = run(capsysbinary, "verify", str(path))
    assert code == 2 and b"no audit key" in err
    assert not (data_dir / KEY_FILE).exists()  # verify never creates a key


def test_a_bad_range_exits_2(data_dir, capsysbinary):
    code, out, err = run(capsysbinary, "export", "--from", "5", "--to", "2")
    assert (code, out) == (2, b"") and b"--from must not be after --to" in err
    with pytest.raises(SystemExit) as exited:
        main(["audit", "export", "--from", "-1"])
    assert exited.value.code == 2
