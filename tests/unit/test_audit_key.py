"""The audit signing key: generated once into the data dir (0600) or read from the configured
file, never shown; public keys read from PEM or base64, anything else refused."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from application.audit.keys import public_key_data
from infrastructure.audit_key import KEY_FILE, AuditKeyError, PublicKey, load_audit_key


def test_a_key_is_generated_once_into_the_data_dir_readable_by_its_owner_only(tmp_path):
    first = load_audit_key(None, tmp_path / "data")
    again = load_audit_key(None, tmp_path / "data")
    assert first.key_id == again.key_id
    assert (tmp_path / "data" / KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert [p.name for p in (tmp_path / "data").iterdir()] == [KEY_FILE]  # no partial file left
    assert load_audit_key(None, tmp_path / "other").key_id != first.key_id


def test_the_key_id_is_the_first_16_hex_digits_of_the_sha256_of_the_raw_public_key(tmp_path):
    key = load_audit_key(None, tmp_path)
    assert key.key_id == hashlib.sha256(key.public.raw).hexdigest()[:16]
    assert len(key.public.raw) == 32


def test_a_configured_key_file_is_used_and_never_generated(tmp_path):
    generated = load_audit_key(None, tmp_path / "a")
    configured = load_audit_key(tmp_path / "a" / KEY_FILE, tmp_path / "b")
    assert configured.key_id == generated.key_id
    assert not (tmp_path / "b").exists()
    with pytest.raises(AuditKeyError, match="no audit key"):
        load_audit_key(tmp_path / "missing.pem", tmp_path / "b")


def test_the_local_key_is_not_created_when_only_read(tmp_path):
    with pytest.raises(AuditKeyError, match="no audit key"):
        load_audit_key(None, tmp_path, create=False)
    assert not (tmp_path / KEY_FILE).exists()


def test_a_file_that_is_not_an_ed25519_private_key_is_refused(tmp_path):
    (tmp_path / "text.pem").write_text("not a key")
    with pytest.raises(AuditKeyError, match="not an unencrypted PEM"):
        load_audit_key(tmp_path / "text.pem", tmp_path)
    ec = generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ec.pem").write_bytes(ec)
    with pytest.raises(AuditKeyError, match="not an Ed25519"):
        load_audit_key(tmp_path / "ec.pem", tmp_path)


def test_the_private_key_never_shows_in_its_representation(tmp_path):
    key = load_audit_key(None, tmp_path)
    pem = (tmp_path / KEY_FILE).read_text()
    body = "".join(pem.splitlines()[1:-1])
    assert body not in repr(key) and body not in str(public_key_data(key.public))
    assert repr(key) == f"AuditKey(key_id={key.key_id!r})"


def test_the_served_public_key_reads_back_from_pem_and_from_base64(tmp_path):
    key = load_audit_key(None, tmp_path)
    served = public_key_data(key.public)
    assert served["algorithm"] == "Ed25519" and served["key_id"] == key.key_id
    for text in (served["public_key_pem"], served["public_key_base64"]):
        public = PublicKey.from_text(text)
        assert public.key_id == key.key_id
        assert public.verify(key.sign(b"head"), b"head")
        assert not public.verify(key.sign(b"head"), b"other head")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        base64.b64encode(b"short").decode(),
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
    ],
)
def test_a_public_key_that_is_not_ed25519_pem_or_base64_is_refused(text):
    with pytest.raises(AuditKeyError):
        PublicKey.from_text(text)


def test_an_ec_public_key_in_pem_is_refused():
    pem = (
        generate_private_key(SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(AuditKeyError, match="not an Ed25519"):
        PublicKey.from_text(pem.decode())
