"""Webhook signatures against the published test vectors, and during a secret rotation."""

from __future__ import annotations

import base64

from application.webhooks.signing import (
    SECRET_PREFIX,
    body_signature,
    new_secret,
    secret_key,
    signed_headers,
    standard_signature,
    verify_body,
    verify_standard,
)

# Standard Webhooks' published vector (standard-webhooks/standard-webhooks,
# libraries/python/tests/test_webhooks.py, test_sign_function)
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_PAYLOAD = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# GitHub's published vector (docs.github.com, "Validating webhook deliveries": X-Hub-Signature-256)
GH_SECRET = "It's a Secret to Everybody"
GH_PAYLOAD = b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_the_standard_webhooks_signature_matches_the_published_vector():
    assert standard_signature(SW_SECRET, SW_ID, SW_TIMESTAMP, SW_PAYLOAD) == SW_SIGNATURE


def test_the_body_signature_matches_githubs_published_vector():
    assert body_signature(GH_SECRET, GH_PAYLOAD) == GH_SIGNATURE


def test_a_receiver_verifies_the_published_vectors():
    headers = {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_SIGNATURE,
    }
    assert verify_standard(SW_SECRET, headers, SW_PAYLOAD, now=SW_TIMESTAMP + 10)
    assert not verify_standard(SW_SECRET, headers, SW_PAYLOAD + b" ", now=SW_TIMESTAMP)
    assert not verify_standard(SW_SECRET, headers, SW_PAYLOAD, now=SW_TIMESTAMP + 301)
    assert verify_body(GH_SECRET, GH_SIGNATURE, GH_PAYLOAD)
    assert not verify_body(GH_SECRET, GH_SIGNATURE, b"Hello, World?")


def test_a_new_secret_is_whsec_and_32_random_bytes_in_base64():
    secret = new_secret()
    assert secret.startswith(SECRET_PREFIX)
    assert len(secret_key(secret)) == 32
    assert base64.b64encode(secret_key(secret)).decode() == secret.removeprefix(SECRET_PREFIX)
    assert new_secret() != secret


def test_the_headers_carry_both_schemes_and_one_delivery_id():
    body = b'{"type":"task.completed"}'
    headers = signed_headers([SW_SECRET], "d-1", "task.completed", SW_TIMESTAMP, body)
    assert headers["webhook-id"] == headers["X-Delivery-ID"] == "d-1"
    assert headers["webhook-timestamp"] == str(SW_TIMESTAMP)
    assert headers["X-Event-Type"] == "task.completed"
    assert headers["Content-Type"] == "application/json"
    assert headers["webhook-signature"] == standard_signature(SW_SECRET, "d-1", SW_TIMESTAMP, body)
    assert headers["X-Signature-256"] == body_signature(SW_SECRET, body)


def test_during_a_rotation_both_secrets_sign_and_either_verifies():
    new, old = new_secret(), new_secret()
    body = b'{"n":1}'
    headers = signed_headers([new, old], "d-2", "task.created", SW_TIMESTAMP, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert headers["X-Signature-256"].count("sha256=") == 2
    for secret in (new, old):
        assert verify_standard(secret, headers, body, now=SW_TIMESTAMP)
        assert verify_body(secret, headers["X-Signature-256"], body)
    stranger = new_secret()
    assert not verify_standard(stranger, headers, body, now=SW_TIMESTAMP)
    assert not verify_body(stranger, headers["X-Signature-256"], body)
