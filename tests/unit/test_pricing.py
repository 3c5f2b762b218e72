"""The price table and the priced usage event: cost computed at the moment of usage from the
version in force, cache tokens at their own prices, unknown models at 0 and listed, and a later
price change never changing an earlier event; events stored before version 3 still read."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent

from application.pricing import price_usage
from domain.errors import RuleViolationError
from domain.execution_policy import ExecutionPolicy
from domain.pricing import ModelPrice, PriceTable
from domain.task import Task
from domain.usage import Usage, usage_of
from domain.values import Actor
from tests.builders import a_task

RUNNER = Actor(id="worker-1", team_id="team-1", request_id="req-9")
ADMIN = Actor(id="user:admin", team_id="team-1", request_id="req-1")
TODAY = date(2026, 12, 3)
AT = datetime(2030, 1, 1, 11, 0, tzinfo=UTC)


def a_table() -> PriceTable:
    return PriceTable.shipped("team-1", "test", "test")


def a_price(model: str, input: float, **fields: object) -> ModelPrice:  # noqa: A002
    values = {"provider": "acme", "output": 2.0, "cache_read": 0.5, "cache_write": 4.0, **fields}
    return ModelPrice(model=model, input=input, **values)  # type: ignore[arg-type]


def a_running_task() -> Task:
    task = a_task(actor=ADMIN.id, request_id=ADMIN.request_id)
    task.request_execution(ExecutionPolicy(), None, [], ADMIN)
    task.start_execution(str(task.execution_id), "worker-1", RUNNER, lease_until=AT, at=AT)
    return task


def test_every_kind_of_token_is_priced_at_its_own_price_per_million() -> None:
    price = a_price("m", 1.0, output=2.0, cache_read=0.5, cache_write=4.0)
    usage = Usage(
        input_tokens=1_000_000,
        output_tokens=2_000_000,
        cache_read_tokens=4_000_000,
        cache_write_tokens=500_000,
        reasoning_tokens=1_000_000,  # inside output: not charged twice
    )
    assert price.cost(usage) == 1.0 + 4.0 + 2.0 + 2.0


def test_a_dated_model_name_is_priced_as_its_base_model_from_the_shipped_table() -> None:
    usage = Usage(model="claude-haiku-4-5-20251001", input_tokens=1000, cache_read_tokens=10_000)
    priced = a_table().priced(usage, TODAY)
    assert priced.cost_usd == pytest.approx((1000 * 1.0 + 10_000 * 0.10) / 1_000_000)
    assert priced.price_version == 1 and priced.provider == "anthropic"


def test_an_unknown_model_costs_nothing_and_is_listed_until_it_has_a_price() -> None:
    table = a_table()
    usage = Usage(model="mystery-1", input_tokens=500, reported_cost_usd=0.3)
    priced = price_usage(table, usage, TODAY, RUNNER)
    assert priced.cost_usd == 0.0 and priced.price_version is None
    assert priced.reported_cost_usd == 0.3  # what the agent said is kept beside it
    price_usage(table, usage, TODAY, RUNNER)
    assert table.unpriced() == ["mystery-1"]  # noted once
    assert [type(e).__name__ for e in table.collect_events()] == ["Created", "ModelSeen"]
    table.set_price(a_price("mystery-1", 1.0), ADMIN.id, ADMIN.request_id)
    assert table.unpriced() == []


def test_a_price_change_is_a_new_version_and_leaves_an_earlier_usage_event_as_it_was() -> None:
    app: Application[object] = Application()
    table, task = a_table(), a_running_task()
    usage = Usage(model="gpt-4o", input_tokens=1_000_000)
    task.record_usage(str(task.execution_id), price_usage(table, usage, TODAY, RUNNER), RUNNER)
    app.save(table, task)
    table.set_price(a_price("gpt-4o", 100.0), ADMIN.id, ADMIN.request_id)
    task.record_usage(str(task.execution_id), price_usage(table, usage, TODAY, RUNNER), RUNNER)
    app.save(table, task)

    first, second = [e for e in app.events.get(task.id) if isinstance(e, Task.UsageRecorded)]
    assert (first.cost_usd, first.price_version) == (2.5, 1)
    assert (second.cost_usd, second.price_version) == (100.0, 2)
    assert app.repository.get(task.id).usage["cost_usd"] == 102.5


def test_a_price_announced_for_a_later_day_is_not_in_force_before_it() -> None:
    table = a_table()
    table.set_price(a_price("gpt-4o", 9.0, effective_from="2027-01-01"), ADMIN.id, ADMIN.request_id)
    usage = Usage(model="gpt-4o", input_tokens=1_000_000)
    assert table.priced(usage, TODAY).cost_usd == 2.5
    assert table.priced(usage, date(2027, 1, 1)).cost_usd == 9.0


@pytest.mark.parametrize(
    "price",
    [
        a_price("gpt-4o", -1.0),
        a_price("gpt-4o", 1.0, cache_write=10_001.0),
        a_price("gpt-4o", float("nan")),
        a_price("not a model", 1.0),
        a_price("gpt-4o", 1.0, effective_from="someday"),
    ],
)
def test_a_price_out_of_bounds_is_refused_and_records_nothing(price: ModelPrice) -> None:
    table = a_table()
    table.collect_events()
    with pytest.raises(RuleViolationError):
        table.set_price(price, ADMIN.id, ADMIN.request_id)
    assert table.collect_events() == [] and table.price_version == 1


def test_a_usage_event_stored_before_version_3_reads_as_normalized_usage() -> None:
    app: Application[object] = Application()
    task = a_running_task()
    task.record_usage(str(task.execution_id), Usage(model="opus"), RUNNER)
    app.save(task)
    stored = next(s for s in app.recorder.select_events(task.id) if "UsageRecorded" in s.topic)
    state = app.mapper.transcoder.decode(stored.state)
    old = {k: state[k] for k in ("team_id", "project_id", "execution_id", "actor")}
    old |= {"request_id": "req-9", "class_version": 2}
    old["usage"] = {
        "model": "opus",
        "input_tokens": 10,
        "cache_creation_tokens": 7,
        "cost_usd": 0.25,
    }
    old_event = StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=app.mapper.transcoder.encode(old),
    )

    event = app.mapper.to_domain_event(old_event)
    assert usage_of(event) == Usage(
        model="opus",
        input_tokens=10,
        cache_write_tokens=7,
        cost_usd=0.25,  # never priced: what the agent reported, as the task showed it
        reported_cost_usd=0.25,
        price_version=None,
    )
    assert event.project_id == state["project_id"] and event.actor == "worker-1"
