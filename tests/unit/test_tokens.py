"""Access tokens (infrastructure/tokens.py): HS256 only, iss/aud/exp/iat/sub required, and the
secret at least 32 bytes, generated once and kept private when none is configured.

``forgeries`` builds the attacks by hand (base64 and HMAC, no JWT library), so that nothing the
library would refuse to produce is left untested; the HTTP tests reuse it.
"""

from __future__ import annotations

import base64
import hmac
import json
import stat
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from application.ports import InvalidTokenError
from infrastructure.tokens import (
    AUDIENCE,
    ISSUER,
    SECRET_FILE,
    JwtCodec,
    VerifiedTokens,
    load_secret,
)

SECRET = b"s" * 32
# a real RSA public key: the one a confused verifier might use as an HMAC secret
RSA_PUBLIC_KEY = b"""-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt1F1zjPvt3YsATduq3jy
M2pqxL9ax5YKOSdQyDN71wic7LUbowzSRO3eRtUJhyJacSnS2NkOrwNPfVIa9I7a
t1xVzwwFQ8V4+eQ8UgWsgy3eqqnSmCYnG8PWcYe1p+PnmLbqp7/HFx3deqBNmNim
6MONfFLJvJEFJ21TxxQh9cctxLagvkPijOqVnCPaUwKxDmcsv/ZnWzkAMcpwJPon
DS8d5271iAftzreT/Coaq91b7Xp53I4D5AKk51htq6Pi06AQzh5zif1KqSblniMX
+RpWuU23BTxZRazWoHrIpsOg7Y4cIbAm3Mas9FNR2oC37mRQSdC6KquOEIQQ/Cp1
rwIDAQAB
-----END PUBLIC KEY-----
"""
HS256 = {"alg": "HS256", "typ": "JWT"}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def signed(
    key: bytes, header: dict[str, Any], payload: dict[str, Any], digest: str = "sha256"
) -> str:
    """A JWT whose signature is an HMAC over header and payload with ``key``."""
    signing_input = f"{_segment(header)}.{_segment(payload)}"
    signature = hmac.new(key, signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def valid_claims(claims: dict[str, Any]) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 900, **claims}


def without(payload: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != name}


def forgeries(secret: bytes, claims: dict[str, Any]) -> dict[str, str]:
    """Tokens for ``claims`` that a correct verifier keyed with ``secret`` must all refuse."""
    good = valid_claims(claims)
    now = int(time.time())
    genuine = signed(secret, HS256, good)
    head, _, signature = genuine.split(".")
    escalated = {**good, "role": "admin", "team": "someone-else", "sub": "token:forged"}
    return {
        "alg none": f"{_segment({'alg': 'none', 'typ': 'JWT'})}.{_segment(good)}.",
        "alg none with a valid HMAC": signed(secret, {"alg": "none"}, good),
        "alg None capitalised": f"{_segment({'alg': 'None'})}.{_segment(good)}.",
        "HS256 keyed with the RSA public key": signed(RSA_PUBLIC_KEY, HS256, good),
        "RS256 header and a made-up signature": (
            f"{_segment({'alg': 'RS256', 'typ': 'JWT'})}.{_segment(good)}.{_b64(bytes(256))}"
        ),
        "RS256 header over a valid HMAC": signed(secret, {"alg": "RS256", "typ": "JWT"}, good),
        "HS512 with the right secret": signed(secret, {"alg": "HS512"}, good, "sha512"),
        "expired": signed(secret, HS256, {**good, "iat": now - 3600, "exp": now - 60}),
        "wrong audience": signed(secret, HS256, {**good, "aud": "another-api"}),
        "wrong issuer": signed(secret, HS256, {**good, "iss": "evil"}),
        "missing exp": signed(secret, HS256, without(good, "exp")),
        "missing iat": signed(secret, HS256, without(good, "iat")),
        "missing sub": signed(secret, HS256, without(good, "sub")),
        "missing iss": signed(secret, HS256, without(good, "iss")),
        "missing aud": signed(secret, HS256, without(good, "aud")),
        "tampered payload": f"{head}.{_segment(escalated)}.{signature}",
        "signature stripped": f"{head}.{_segment(good)}.",
        "wrong secret": signed(b"w" * 32, HS256, good),
        "garbage": "not-a-token",
        "three garbage segments": "a.b.c",
        "empty segments": "..",
    }


CLAIMS = {"sub": "user:123", "typ": "access"}
ATTACKS = forgeries(SECRET, CLAIMS)


def test_an_issued_token_reads_back_with_issuer_audience_and_a_15_minute_life() -> None:
    codec = JwtCodec(SECRET)
    claims = codec.read(codec.issue({"sub": "user:1", "typ": "access"}))
    assert claims["sub"] == "user:1" and claims["typ"] == "access"
    assert claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 900 == codec.access_ttl
    assert jwt.get_unverified_header(codec.issue({"sub": "x"}))["alg"] == "HS256"


def test_two_tokens_for_the_same_claims_have_distinct_ids() -> None:
    codec = JwtCodec(SECRET)
    first, second = (codec.read(codec.issue({"sub": "user:1"})) for _ in range(2))
    assert first["jti"] != second["jti"]


def test_a_token_issued_at_a_given_time_with_a_given_id_is_issued_again_byte_for_byte() -> None:
    """A refresh token sent again within its grace gets the very access token of its first use."""
    codec = JwtCodec(SECRET)
    at = time.time() - 10
    first = codec.issue({"sub": "user:1", "typ": "access"}, at=at, jti="0123456789abcdef")
    assert codec.issue({"sub": "user:1", "typ": "access"}, at=at, jti="0123456789abcdef") == first
    claims = codec.read(first)
    assert (claims["iat"], claims["jti"]) == (int(at), "0123456789abcdef")


def test_a_derived_secret_depends_on_the_purpose_the_material_and_the_server_secret() -> None:
    codec = JwtCodec(SECRET)
    derived = codec.derive("refresh-rotation", "family.secret")
    assert derived == codec.derive("refresh-rotation", "family.secret")
    assert len(derived) == 43 and base64.urlsafe_b64decode(derived + "=")
    others = {
        codec.derive("refresh-access-jti", "family.secret"),
        codec.derive("refresh-rotation", "family.secret2"),
        JwtCodec(b"t" * 32).derive("refresh-rotation", "family.secret"),
    }
    assert derived not in others and len(others) == 3


def test_a_hand_built_token_with_the_right_secret_is_accepted() -> None:
    """The control for the attacks below: the forging helpers build valid tokens when honest."""
    assert JwtCodec(SECRET).read(signed(SECRET, HS256, valid_claims(CLAIMS)))["sub"] == "user:123"


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_forged_tokens_are_refused(attack: str) -> None:
    with pytest.raises(InvalidTokenError):
        JwtCodec(SECRET).read(ATTACKS[attack])


def test_a_token_expired_beyond_the_leeway_is_refused_and_one_within_it_is_not() -> None:
    now = int(time.time())
    codec = JwtCodec(SECRET)
    late = signed(SECRET, HS256, {**valid_claims(CLAIMS), "iat": now - 900, "exp": now - 30})
    just = signed(SECRET, HS256, {**valid_claims(CLAIMS), "iat": now - 900, "exp": now - 1})
    with pytest.raises(InvalidTokenError, match="expired"):
        codec.read(late)
    assert codec.read(just)["sub"] == "user:123"


def test_a_secret_under_32_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        JwtCodec(b"s" * 31)
    assert JwtCodec(b"s" * 32).access_ttl == 900


def test_a_configured_secret_is_used_as_given_and_nothing_is_written(tmp_path: Path) -> None:
    assert load_secret("c" * 40, tmp_path / "data") == b"c" * 40
    assert not (tmp_path / "data").exists()


def test_without_a_configured_secret_one_is_generated_once_and_kept_private(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    first = load_secret(None, data_dir)
    second = load_secret(None, data_dir)
    kept = data_dir / SECRET_FILE
    assert first == second
    assert len(first) >= 32
    assert kept.read_text(encoding="ascii").strip().encode() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    token = JwtCodec(first).issue({"sub": "user:1"})
    assert JwtCodec(second).read(token)["sub"] == "user:1"


def test_secrets_generated_in_different_data_dirs_differ(tmp_path: Path) -> None:
    assert load_secret(None, tmp_path / "a") != load_secret(None, tmp_path / "b")


class _Verifier:
    """A fake ``verify``: claims by token, refusing unknown ones, counting the calls."""

    def __init__(self, claims: dict[str, dict[str, Any]]) -> None:
        self.claims = claims
        self.calls = 0

    def __call__(self, token: str) -> dict[str, Any]:
        self.calls += 1
        if token not in self.claims:
            raise InvalidTokenError("unknown")
        return dict(self.claims[token])


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_verified_again_only_once_its_expiry_or_the_max_age_passes() -> None:
    verify = _Verifier({"short": {"sub": "a", "exp": 1_030}, "long": {"sub": "b", "exp": 9_000}})
    clock = _Clock(1_000.0)
    tokens = VerifiedTokens(verify, max_age=60, clock=clock)
    for _ in range(3):
        assert tokens.read("short")["sub"] == "a" and tokens.read("long")["sub"] == "b"
    assert verify.calls == 2
    clock.now = 1_030.0  # the short one's exp: verified again (and refused, were it expired)
    tokens.read("short")
    tokens.read("long")
    assert verify.calls == 3
    clock.now = 1_060.0  # the long one's max age
    tokens.read("long")
    assert verify.calls == 4


def test_a_refused_token_is_never_remembered_and_a_caller_cannot_change_the_remembered_claims() -> (
    None
):
    verify = _Verifier({"good": {"sub": "a", "exp": 2_000}})
    tokens = VerifiedTokens(verify, clock=_Clock(1_000.0))
    for _ in range(2):
        with pytest.raises(InvalidTokenError):
            tokens.read("forged")
    assert verify.calls == 2 and len(tokens) == 0
    tokens.read("good")["sub"] = "admin"
    assert tokens.read("good")["sub"] == "a"


def test_the_remembered_tokens_stay_within_the_size_the_expired_going_first() -> None:
    claims = {f"t{i}": {"sub": str(i), "exp": 1_010 if 5 <= i < 10 else 5_000} for i in range(30)}
    verify = _Verifier(claims)
    clock = _Clock(1_000.0)
    tokens = VerifiedTokens(verify, size=10, clock=clock)
    for i in range(10):
        tokens.read(f"t{i}")
    clock.now = 1_020.0  # t5 to t9 expired: they make the room, the older t0 to t4 stay
    for i in range(10, 15):
        tokens.read(f"t{i}")
    calls = verify.calls
    for i in range(5):
        tokens.read(f"t{i}")
    assert verify.calls == calls and len(tokens) == 10
    for i in range(15, 30):
        tokens.read(f"t{i}")
        assert len(tokens) <= 10


def test_a_codec_that_verified_a_token_still_refuses_every_forgery_of_it() -> None:
    codec = JwtCodec(SECRET)
    genuine = signed(SECRET, HS256, valid_claims(CLAIMS))
    assert codec.read(genuine)["sub"] == codec.read(genuine)["sub"] == "user:123"
    for attack in ATTACKS.values():
        with pytest.raises(InvalidTokenError):
            codec.read(attack)
