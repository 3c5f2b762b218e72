"""The Webhook and WebhookDelivery aggregates: filters, rotation, the retry schedule, 410 Gone,
five days of failures."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import DeletedError, RuleViolationError
from domain.naming import public_name
from domain.values import Actor
from domain.webhook import Webhook, check_patterns, matches
from domain.webhook_delivery import (
    FAILED,
    JITTER,
    PENDING,
    RETRY_DELAYS,
    SUCCEEDED,
    WebhookDelivery,
    delivery_id,
    next_attempt,
)
from tests.stores import memory_store

T0 = datetime(2025, 7, 30, 14, 0, tzinfo=UTC)
ADMIN = Actor(id="admin", team_id="team-a", request_id="r-1")


def webhook(**fields: object) -> Webhook:
    values: dict[str, object] = {
        "team_id": "team-a",
        "url": "https://hooks.example.com/in",
        "events": ["task.*"],
        "description": "",
        "enabled": True,
        "secret": "whsec_new",
        "starts_after": 10,
        "actor": "admin",
        "request_id": "r-0",
    }
    return Webhook(**(values | fields))  # type: ignore[arg-type]


def delivery(position: int = 11) -> WebhookDelivery:
    hook_id = "7f1d2c3b-0000-4000-8000-00000000beef"
    return WebhookDelivery(
        team_id="team-a",
        webhook_id=hook_id,
        key=f"position:{position}",
        kind="event",
        position=position,
        event_type="task.created",
        types=["task.created"],
        payload="{}",
        next_attempt_at=T0,
    )


def attempt(d: WebhookDelivery, code: int | None, at: datetime, **extra: object) -> None:
    values: dict[str, object] = {
        "at": at,
        "response_code": code,
        "duration": 0.1,
        "error": None if code and code < 300 else "failed",
        "retry_after": None,
        "jitter": 0.0,
        "retry": True,
    }
    d.record_attempt(**(values | extra))  # type: ignore[arg-type]


# ---- filters ------------------------------------------------------------------------------


def test_patterns_match_names_kinds_and_everything():
    assert matches(["*"], "output.appended")
    assert matches(["task.*"], "task.execution_finished")
    assert not matches(["task.*"], "taskx.created")
    assert matches(["task.completed"], "task.completed")
    assert not matches(["task.completed"], "task.created")


def test_patterns_are_checked():
    assert check_patterns(["task.*", "task.*", "*"]) == ["task.*", "*"]
    for wrong in (["task"], ["Task.*"], ["*.created"], ["task.*.x"], ["task.cr?ated"], []):
        with pytest.raises(RuleViolationError):
            check_patterns(wrong)


def test_a_webhook_wants_the_names_it_subscribes_to_of_events_after_its_creation():
    hook = webhook(events=["task.completed", "project.*"])
    names = ["task.execution_finished", "task.completed"]
    assert hook.wants(11, names) == ["task.completed"]
    assert hook.wants(10, names) == []  # before the webhook existed
    assert hook.wants(12, ["task.created"]) == []
    hook.disable("off", T0, "admin")
    assert hook.wants(11, names) == []


def test_the_public_name_of_disabling_is_webhook_disabled():
    hook = webhook()
    hook.disable("off", T0, "admin")
    assert public_name(hook.collect_events()[-1]) == "webhook.disabled"


# ---- rotation -----------------------------------------------------------------------------


def test_after_a_rotation_both_secrets_sign_for_24_hours_then_only_the_new_one():
    hook = webhook(secret="whsec_old")
    hook.rotate_secret("whsec_new", T0, ADMIN)
    assert hook.signing_secrets(T0) == ["whsec_new", "whsec_old"]
    assert hook.signing_secrets(T0 + timedelta(hours=23, minutes=59)) == ["whsec_new", "whsec_old"]
    assert hook.signing_secrets(T0 + timedelta(hours=24)) == ["whsec_new"]
    hook.rotate_secret("whsec_newer", T0 + timedelta(hours=1), ADMIN)
    assert hook.signing_secrets(T0 + timedelta(hours=2)) == ["whsec_newer", "whsec_new"]


def test_a_deleted_webhook_refuses_changes():
    hook = webhook()
    hook.delete(ADMIN)
    with pytest.raises(DeletedError):
        hook.update({"description": "x"}, ADMIN)
    with pytest.raises(DeletedError):
        hook.rotate_secret("whsec_x", T0, ADMIN)


# ---- the retry schedule -------------------------------------------------------------------


def test_a_failed_delivery_is_retried_at_once_then_on_the_schedule_then_fails():
    d = delivery()
    at = T0
    for n, delay in enumerate(RETRY_DELAYS, start=1):
        attempt(d, 500, at)
        assert d.status == PENDING, n
        assert d.next_attempt_at == at + timedelta(seconds=delay)
        at = d.next_attempt_at
    attempt(d, 500, at)
    assert d.status == FAILED and d.next_attempt_at is None
    assert len(d.attempts) == len(RETRY_DELAYS) + 1 == 9
    assert [RETRY_DELAYS[0], RETRY_DELAYS[1]] == [0.0, 5.0]
    assert RETRY_DELAYS[2:] == (300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


def test_a_success_ends_the_delivery():
    d = delivery()
    attempt(d, None, T0)  # no answer at all
    attempt(d, 204, T0 + timedelta(seconds=1))
    assert d.status == SUCCEEDED and d.next_attempt_at is None
    assert [a["status"] for a in d.attempts] == [FAILED, SUCCEEDED]


@given(st.floats(-1, 1), st.integers(1, len(RETRY_DELAYS)))
def test_jitter_keeps_each_delay_within_ten_percent(jitter, failures):
    delay = (next_attempt(T0, failures, None, jitter) - T0).total_seconds()
    scheduled = RETRY_DELAYS[failures - 1]
    assert scheduled * (1 - JITTER) - 1e-6 <= delay <= scheduled * (1 + JITTER) + 1e-6


def test_retry_after_is_honoured_when_later_than_the_schedule_up_to_a_day():
    assert next_attempt(T0, 2, 60, 0) == T0 + timedelta(seconds=60)  # schedule says 5 s
    assert next_attempt(T0, 3, 60, 0) == T0 + timedelta(seconds=300)  # schedule is later
    assert next_attempt(T0, 2, 10**9, 0) == T0 + timedelta(hours=24)


def test_410_gone_fails_the_delivery_at_once_and_disables_the_webhook():
    d, hook = delivery(), webhook()
    attempt(d, 410, T0)
    assert d.status == FAILED
    hook.record_outcome(410, False, T0)
    assert not hook.enabled and "410" in (hook.disabled_reason or "")


def test_a_manual_attempt_schedules_nothing():
    d = delivery()
    attempt(d, 500, T0, retry=False)
    assert d.status == FAILED and d.next_attempt_at is None
    assert d.attempts[-1]["automatic"] is False


def test_the_same_event_for_the_same_webhook_is_the_same_delivery():
    hook_id = "7f1d2c3b-0000-4000-8000-00000000beef"
    assert delivery_id(hook_id, "position:11") == delivery(11).id
    assert delivery_id(hook_id, "position:12") != delivery(11).id


# ---- five days of failures ----------------------------------------------------------------


def test_a_webhook_failing_for_five_days_is_disabled_and_a_success_resets_the_streak():
    hook = webhook()
    hook.record_outcome(500, False, T0)
    assert hook.failing_since == T0
    hook.record_outcome(None, False, T0 + timedelta(days=4, hours=23))
    assert hook.enabled
    hook.record_outcome(204, True, T0 + timedelta(days=4, hours=23, minutes=1))
    assert hook.failing_since is None
    later = T0 + timedelta(days=6)
    hook.record_outcome(500, False, later)
    hook.record_outcome(500, False, later + timedelta(days=5))
    assert not hook.enabled
    assert hook.disabled_reason == "every attempt failed for 5 days"
    names = [public_name(e) for e in hook.collect_events()]
    assert names[-1] == "webhook.disabled"
    assert names.count("webhook.failure_started") == 2 and "webhook.recovered" in names


def test_enabling_again_starts_a_new_streak():
    hook = webhook()
    hook.record_outcome(410, False, T0)
    hook.enable(ADMIN)
    assert hook.enabled and hook.failing_since is None and hook.disabled_reason is None


def test_deliveries_stored_before_their_own_module_still_load():
    """``WebhookDelivery`` moved from domain/webhook.py: its old topics still resolve."""
    store = memory_store()
    try:
        ledger = store.ledger
        queued = delivery()
        attempt(queued, 500, T0)
        stored = [ledger.mapper.to_stored_event(e) for e in queued.collect_events()]
        assert stored[0].topic == "domain.webhook_delivery:WebhookDelivery.Queued"
        old = [replace(s, topic=s.topic.replace("webhook_delivery:", "webhook:")) for s in stored]
        state = json.loads(old[0].state)
        state["originator_topic"] = "domain.webhook:WebhookDelivery"
        old[0] = replace(old[0], state=json.dumps(state).encode())
        replayed = None
        for record in old:
            replayed = ledger.mapper.to_domain_event(record).mutate(replayed)
        assert isinstance(replayed, WebhookDelivery)
        assert replayed.status == queued.status and len(replayed.attempts) == 1
    finally:
        store.close()
