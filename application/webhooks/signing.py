"""Signing a webhook request: Standard Webhooks and seed 000's headers, from the same secret.

Standard Webhooks (https://www.standardwebhooks.com): ``webhook-id``, ``webhook-timestamp``
(integer seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256>`` of
``{webhook-id}.{webhook-timestamp}.{body}``, keyed with the secret's base64 part decoded (the
``whsec_`` prefix only names the format).

Seed 000: ``X-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, keyed with the whole secret
as UTF-8 text (``whsec_...``, as GitHub's ``X-Hub-Signature-256`` is keyed with its secret),
``X-Delivery-ID`` (equal to ``webhook-id``) and ``X-Event-Type``.

While a rotated-out secret is still valid both secrets sign: ``webhook-signature`` lists both
signatures separated by a space (as the standard says), ``X-Signature-256`` both separated by
", " (RFC 9110 list syntax); a receiver accepts the request if any one matches. The newest
secret signs first.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's name, not a secret
SECRET_BYTES = 32  # the standard asks for 24 to 64 random bytes


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key of Standard Webhooks: the base64 after ``whsec_``."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64>`` of ``{id}.{timestamp}.{body}``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def body_signature(secret: str, body: bytes) -> str:
    """Seed 000's ``sha256=<hex>`` of the body, keyed with the secret's text."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(
    secrets_: Sequence[str],
    delivery_id: str,
    event_type: str,
    timestamp: int,
    body: bytes,
    user_agent: str = "Taskwarden-Webhooks",
) -> dict[str, str]:
    """Every header of one attempt; ``secrets_`` newest first (two during a rotation)."""
    if not secrets_:
        raise ValueError("a webhook request needs at least one secret")
    return {
        "Content-Type": "application/json",
        "User-Agent": user_agent,
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(s, delivery_id, timestamp, body) for s in secrets_
        ),
        "X-Signature-256": ", ".join(body_signature(s, body) for s in secrets_),
        "X-Delivery-ID": delivery_id,
        "X-Event-Type": event_type,
    }


def verify_standard(
    secret: str, headers: dict[str, str], body: bytes, now: int, tolerance: int = 300
) -> bool:
    """What a receiver does (tests, docs): a listed v1 signature matches, in time."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = int(lowered["webhook-timestamp"])
        message_id = lowered["webhook-id"]
        listed = lowered["webhook-signature"].split(" ")
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = standard_signature(secret, message_id, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in listed)


def verify_body(secret: str, header: str, body: bytes) -> bool:
    """What a seed 000 receiver does: one of the listed ``sha256=`` values matches."""
    expected = body_signature(secret, body)
    return any(hmac.compare_digest(expected, s.strip()) for s in header.split(","))
