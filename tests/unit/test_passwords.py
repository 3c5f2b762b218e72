"""scrypt password hashes (infrastructure/passwords.py)."""

from __future__ import annotations

import pytest

from infrastructure.passwords import ScryptHasher

# small parameters keep the unit tests fast; the format records them, so verify still works
FAST = ScryptHasher(n=2**10, r=8, p=1)


def test_a_hash_verifies_its_password_and_records_the_scrypt_parameters() -> None:
    encoded = FAST.hash("correct horse battery")
    assert encoded.startswith("scrypt$1024$8$1$")
    assert "correct horse battery" not in encoded
    assert FAST.verify("correct horse battery", encoded)


def test_a_wrong_password_does_not_verify() -> None:
    encoded = FAST.hash("correct horse battery")
    assert not FAST.verify("correct horse batterz", encoded)
    assert not FAST.verify("", encoded)


def test_hashes_are_salted_so_the_same_password_hashes_differently() -> None:
    first, second = FAST.hash("same password"), FAST.hash("same password")
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert FAST.verify("same password", first) and FAST.verify("same password", second)


def test_a_hash_made_with_other_parameters_still_verifies() -> None:
    encoded = ScryptHasher(n=2**11, r=4, p=1).hash("pw")
    assert FAST.verify("pw", encoded)


def test_the_default_parameters_meet_the_owasp_minimum() -> None:
    hasher = ScryptHasher()
    assert (hasher.n, hasher.r, hasher.p) == (2**14, 8, 1)


@pytest.mark.parametrize(
    "encoded",
    [
        "",
        "plaintext",
        "bcrypt$1024$8$1$c2FsdA$ZGlnZXN0",
        "scrypt$1024$8$1$c2FsdA",
        "scrypt$1024$8$1$***$ZGlnZXN0",
        "scrypt$1024$8$1$c2FsdA$a$b",
        "scrypt$x$8$1$c2FsdA$ZGlnZXN0",
        "scrypt$1000$8$1$c2FsdA$ZGlnZXN0",
        "scrypt$1099511627776$8$1$c2FsdA$ZGlnZXN0",
        "scrypt$1024$8$1$a$ZGlnZXN0",  # bad base64 salt
    ],
)
def test_a_malformed_encoded_value_is_false_not_an_exception(encoded: str) -> None:
    assert FAST.verify("pw", encoded) is False
