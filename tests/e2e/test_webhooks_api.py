"""The webhook endpoints through HTTP: the secret shown once, URL rules, another team's 404,
changes, test pings to a real receiver (signed, verifiable), rotation, deliveries, redelivery."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from application.webhooks.signing import verify_body, verify_standard
from domain.values import Actor
from tests.e2e.conftest import Api, make_settings, token
from tests.webhook_receiver import Receiver, receiving


@pytest.fixture
def settings(tmp_path, database_url):  # the receiver listens on 127.0.0.1
    base = make_settings(tmp_path, database_url)
    return msgspec.structs.replace(base, webhook_allowed_networks=("127.0.0.0/8",))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


def create(api: Api, **fields: Any) -> dict[str, Any]:
    body = {"url": "https://hooks.example.com/taskwarden", **fields}
    return api.ok("POST", "/api/webhooks", 201, json=body)["data"]


def verified(secret: str, request: Any) -> bool:
    now = int(time.time())
    return verify_standard(secret, request.headers, request.body, now) and verify_body(
        secret, request.header("X-Signature-256"), request.body
    )


# ---- management ---------------------------------------------------------------------------


def test_an_admin_creates_a_webhook_and_sees_its_secret_only_in_that_answer(api):
    created = create(api, events=["task.*", "project.created"], description="CI")
    secret = created.pop("secret")
    assert secret.startswith("whsec_")
    assert created["events"] == ["task.*", "project.created"]
    assert created["enabled"] is True and created["disabled_reason"] is None
    hook = created["id"]
    answers = [
        api.client.get(f"/api/webhooks/{hook}"),
        api.client.get("/api/webhooks"),
        api.client.patch(f"/api/webhooks/{hook}", json={"description": "CD"}),
        api.client.get(f"/api/webhooks/{hook}/deliveries"),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert secret not in answer.text and '"secret"' not in answer.text
    listed = answers[1].json()["data"]
    assert listed["total"] == 1 and listed["items"][0]["id"] == hook
    assert answers[2].json()["data"]["description"] == "CD"


def test_the_events_default_to_everything(api):
    assert create(api)["events"] == ["*"]


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "https://user:pw@hooks.example.com/x",
        "https://127.0.0.2.nip/x#frag",
        "https://10.0.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/x",
        "https://[fd00::1]/x",
        "ftp://hooks.example.com/x",
    ],
)
def test_urls_that_are_not_https_or_reach_inside_are_refused(api, url):
    error = api.error("POST", "/api/webhooks", 422, "VALIDATION_ERROR", json={"url": url})
    assert error["details"]["field"] == "url"


# issue 10: URLs the sender could not use (D3), that crashed the check (D4), and special-purpose
# addresses Python's is_global called global (D8)
UNUSABLE = [
    "https://a..b/",
    "https://☃.com/",
    f"https://{'a' * 64}.example.com/",
    "https://[v1.x]/",
    "https://１２７.0.0.1/",
    "https://[::1",
    "https://a]/",
    "https://192.0.0.8/",
    "https://192.88.99.1/",
    "https://[3fff::1]/",
]


def test_a_url_the_sender_could_not_use_is_refused_at_create_and_at_change(api):
    hook = create(api)
    path = f"/api/webhooks/{hook['id']}"
    for url in UNUSABLE:
        created = api.error("POST", "/api/webhooks", 422, "VALIDATION_ERROR", json={"url": url})
        changed = api.error("PATCH", path, 422, "VALIDATION_ERROR", json={"url": url})
        assert created["details"]["field"] == changed["details"]["field"] == "url", url
        assert created["message"] == changed["message"] and created["message"].startswith("url ")
    assert api.ok("GET", path)["data"]["url"] == hook["url"]
    assert api.ok("GET", "/api/webhooks")["data"]["total"] == 1


def test_a_ping_to_a_stored_url_the_sender_cannot_use_answers_a_failed_attempt(api):
    """A webhook stored before the URL rules (here: written past them, into the store)."""
    hook = create(api)
    store = api.role.services.store
    webhook = store.ledger.repository.get(uuid.UUID(hook["id"]))
    webhook.update({"url": "https://a..b/"}, Actor(id="legacy", team_id="default", request_id="r"))
    store.commit(webhook)
    answer = api.ok("POST", f"/api/webhooks/{hook['id']}/test")["data"]
    assert answer["status"] == "failed" and answer["response_code"] is None
    assert answer["error"].startswith("invalid url: url host has an empty label")
    listed = api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries")["data"]
    assert listed["items"][0]["history"] == [answer["attempt"]]


def test_a_local_receiver_inside_the_allowed_networks_may_be_plain_http(api):
    assert create(api, url="http://127.0.0.1:9/hook")["url"] == "http://127.0.0.1:9/hook"


def test_event_filters_are_checked(api):
    for events in (["tsk.*"], ["task"], [], ["*.created"]):
        body = {"url": "https://hooks.example.com/x", "events": events}
        error = api.error("POST", "/api/webhooks", 422, "VALIDATION_ERROR", json=body)
        assert error["details"].get("field") == "events" or "events" in error["message"]


def test_a_change_is_checked_versioned_and_can_disable_and_enable(api):
    hook = create(api)
    path = f"/api/webhooks/{hook['id']}"
    api.error("PATCH", path, 422, "VALIDATION_ERROR", json={"url": "https://10.1.1.1/x"})
    changed = api.ok("PATCH", path, json={"url": "https://other.example.com/in"})["data"]
    assert changed["url"] == "https://other.example.com/in"
    stale = {"If-Match": str(hook["version"])}
    api.error("PATCH", path, 409, "VERSION_CONFLICT", json={"description": "x"}, headers=stale)
    off = api.ok("PATCH", path, json={"enabled": False})["data"]
    assert off["enabled"] is False and off["disabled_reason"] == "disabled by an administrator"
    on = api.ok("PATCH", path, json={"enabled": True})["data"]
    assert on["enabled"] is True and on["disabled_reason"] is None


def test_a_deleted_webhook_is_gone(api):
    hook = create(api)
    deleted = api.ok("DELETE", f"/api/webhooks/{hook['id']}")["data"]
    assert deleted["webhook_id"] == hook["id"]
    api.error("GET", f"/api/webhooks/{hook['id']}", 404, "WEBHOOK_NOT_FOUND")
    assert api.ok("GET", "/api/webhooks")["data"]["total"] == 0


def test_another_teams_webhook_answers_404_as_a_missing_one(api):
    hook = create(api)
    other = {"Authorization": f"Bearer {token(api.client, team='team-b')}"}
    for ref in (hook["id"], str(uuid.uuid4()), "not-a-uuid"):
        base = f"/api/webhooks/{ref}"
        requests = [
            ("GET", base, None),
            ("PATCH", base, {"description": "mine"}),
            ("DELETE", base, None),
            ("POST", base + "/test", None),
            ("POST", base + "/rotate-secret", None),
            ("GET", base + "/deliveries", None),
            ("POST", f"{base}/deliveries/{uuid.uuid4()}/redeliver", None),
        ]
        for method, path, body in requests:
            answer = api.client.request(method, path, json=body, headers=other)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "WEBHOOK_NOT_FOUND"
    assert api.ok("GET", f"/api/webhooks/{hook['id']}")["data"]["version"] == hook["version"]
    listed = api.client.get("/api/webhooks", headers=other).json()["data"]
    assert listed == {"items": [], "total": 0}


# ---- pings, rotation, deliveries ----------------------------------------------------------


def test_a_test_ping_reaches_the_receiver_signed_and_is_listed(api, receiver):
    hook = create(api, url=receiver.url("/ping"))
    answer = api.ok("POST", f"/api/webhooks/{hook['id']}/test")["data"]
    assert answer["status"] == "succeeded" and answer["kind"] == "test"
    assert answer["attempt"]["response_code"] == 204 and answer["attempt"]["number"] == 1
    assert answer["attempt"]["duration"] >= 0 and answer["next_attempt_at"] is None
    (request,) = receiver.on("/ping")
    assert verified(hook["secret"], request)
    assert request.header("webhook-id") == request.header("X-Delivery-ID") == answer["id"]
    assert request.header("X-Event-Type") == "webhook.test"
    payload = json.loads(request.body)
    assert payload["type"] == payload["event"] == "webhook.test"
    assert payload["webhook_id"] == hook["id"] and payload["delivery_id"] == answer["id"]
    listed = api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries")["data"]
    assert listed["total"] == 1 and listed["items"][0]["id"] == answer["id"]
    assert listed["items"][0]["history"] == [answer["attempt"]]


def test_a_failed_ping_is_recorded_with_the_code_and_redelivered_with_the_same_id(api, receiver):
    hook = create(api, url=receiver.url("/flaky"))
    receiver.answer("/flaky", 500)
    failed = api.ok("POST", f"/api/webhooks/{hook['id']}/test")["data"]
    assert failed["status"] == "failed" and failed["response_code"] == 500
    assert failed["error"] == "HTTP 500" and failed["next_attempt_at"] is None
    path = f"/api/webhooks/{hook['id']}/deliveries/{failed['id']}/redeliver"
    again = api.ok("POST", path)["data"]
    assert again["status"] == "succeeded" and again["attempts"] == 2
    assert again["attempt"]["manual"] is True
    first, second = receiver.on("/flaky")
    assert first.header("webhook-id") == second.header("webhook-id") == failed["id"]
    assert first.body == second.body
    assert api.ok("GET", f"/api/webhooks/{hook['id']}")["data"]["failing_since"] is None


def test_an_unreachable_receiver_is_a_recorded_failure_not_an_error(api):
    hook = create(api, url="https://nowhere.invalid/hook")
    answer = api.ok("POST", f"/api/webhooks/{hook['id']}/test")["data"]
    assert answer["status"] == "failed" and answer["response_code"] is None
    assert answer["error"]


def test_a_rotated_secret_is_shown_once_and_both_sign_for_a_day(api, receiver):
    hook = create(api, url=receiver.url("/rotated"))
    rotated = api.ok("POST", f"/api/webhooks/{hook['id']}/rotate-secret")["data"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != hook["secret"]
    assert rotated["previous_secret_expires_at"] > rotated["updated_at"]
    read = api.client.get(f"/api/webhooks/{hook['id']}")
    assert rotated["secret"] not in read.text and hook["secret"] not in read.text
    api.ok("POST", f"/api/webhooks/{hook['id']}/test")
    (request,) = receiver.on("/rotated")
    assert verified(rotated["secret"], request) and verified(hook["secret"], request)
    assert len(request.header("webhook-signature").split(" ")) == 2


def test_deliveries_are_listed_newest_first_a_page_at_a_time(api, receiver):
    hook = create(api, url=receiver.url("/many"))
    ids = [api.ok("POST", f"/api/webhooks/{hook['id']}/test")["data"]["id"] for _ in range(5)]
    path = f"/api/webhooks/{hook['id']}/deliveries"
    first = api.ok("GET", path, params={"page_size": 2})["data"]
    assert [d["id"] for d in first["items"]] == ids[::-1][:2]
    assert (first["total"], first["pages"], first["has_next"]) == (5, 3, True)
    last = api.ok("GET", path, params={"page": 3, "page_size": 2})["data"]
    assert [d["id"] for d in last["items"]] == [ids[0]] and not last["has_next"]
    beyond = api.ok("GET", path, params={"page": 9, "page_size": 2})["data"]
    assert beyond["items"] == []
    api.error("GET", path, 422, "VALIDATION_ERROR", params={"status": "failed"})


def test_a_delivery_of_another_webhook_is_not_found_under_this_one(api, receiver):
    one, two = create(api, url=receiver.url("/one")), create(api, url=receiver.url("/two"))
    pinged = api.ok("POST", f"/api/webhooks/{one['id']}/test")["data"]
    path = f"/api/webhooks/{two['id']}/deliveries/{pinged['id']}/redeliver"
    api.error("POST", path, 404, "WEBHOOK_DELIVERY_NOT_FOUND")
    api.error(
        "POST",
        f"/api/webhooks/{two['id']}/deliveries/x/redeliver",
        404,
        "WEBHOOK_DELIVERY_NOT_FOUND",
    )


# ---- events through the relay, the bus and the queue ----------------------------------------


def test_the_teams_events_reach_its_webhook_in_order_through_the_bus(api, receiver):
    hook = create(api, url=receiver.url("/events"), events=["project.*"])
    first, second = api.project(name="One"), api.project(name="Two")
    api.ok("PATCH", f"/api/projects/{first['id']}", json={"description": "changed"})
    api.task(second["id"])  # a task event: not asked for
    got = receiver.wait("/events", 3)
    assert [r.header("X-Event-Type") for r in got] == [
        "project.created",
        "project.created",
        "project.updated",
    ]
    payloads = [json.loads(r.body) for r in got]
    assert [p["aggregate_id"] for p in payloads] == [first["id"], second["id"], first["id"]]
    positions = [p["position"] for p in payloads]
    assert positions == sorted(positions)
    assert all(verified(hook["secret"], r) for r in got)
    deadline = time.monotonic() + 30
    while True:
        listed = api.ok("GET", f"/api/webhooks/{hook['id']}/deliveries")["data"]
        if {d["status"] for d in listed["items"]} == {"succeeded"} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert listed["total"] == 3
    assert [d["id"] for d in listed["items"]][::-1] == [r.header("webhook-id") for r in got]
    marker = api.project(name="Marker")  # sent in order: anything else, or twice, comes first
    assert json.loads(receiver.wait("/events", 4)[3].body)["aggregate_id"] == marker["id"]


def test_another_teams_events_never_reach_the_webhook(api, receiver):
    create(api, url=receiver.url("/mine"))
    other = {"Authorization": f"Bearer {token(api.client, team='team-b')}"}
    answer = api.client.post("/api/projects/", json={"name": "Theirs"}, headers=other)
    assert answer.status_code == 201
    mine = api.project(name="Mine")
    marker = api.project(name="Marker")  # sent in log order: theirs would have come first
    got = receiver.wait("/mine", 2)
    assert [json.loads(r.body)["aggregate_id"] for r in got] == [mine["id"], marker["id"]]
