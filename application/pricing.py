"""Prices usage when it is recorded, and lets admins read and change their team's price table.

Cost is computed here, at the moment of usage, from the table version in force
(``domain.pricing``): the usage event keeps the cost and the version, so a price changed later
never changes an earlier figure. A team's table is created from the shipped default the first
time it is needed (its first usage report, or its first price change), in the same transaction
as the change that needs it.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from msgspec import Meta

from application.commands import Command, Targeted
from application.results import Changed
from application.store import Store
from domain.pricing import MAX_PRICE, ModelPrice, PriceTable, price_table_id
from domain.usage import Usage
from domain.values import Actor

Price = Annotated[float, Meta(ge=0, le=MAX_PRICE)]


class SetPrice(Command, frozen=True):
    """A model's prices in USD per million tokens, in force from ``effective_from`` (a date;
    omitted: today). Setting a model's price for a date it already has replaces that one."""

    input: Price
    output: Price
    cache_read: Price
    cache_write: Price
    provider: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    effective_from: date | None = None


def team_table(store: Store, team_id: str, by: Actor) -> PriceTable:
    """The team's price table, or a new one holding the shipped default (saved with whatever
    change the caller makes)."""
    found = store.find(PriceTable, price_table_id(team_id), team_id)
    return found or PriceTable.shipped(team_id, by.id, by.request_id)


def price_usage(table: PriceTable, usage: Usage, on: date, by: Actor) -> Usage:
    """The usage with its computed cost; an unknown model costs 0 and is noted on the table."""
    table.note_unpriced(usage.model, on, by.id, by.request_id)
    return table.priced(usage, on)


def reported_usage(message: dict[str, Any]) -> Usage:
    """The usage an agent protocol ``usage`` message reports (decoded and bounded before)."""
    cost = message.get("cost_usd")
    return Usage(
        model=message.get("model") or None,
        provider=message.get("provider") or None,
        input_tokens=int(message.get("input_tokens") or 0),
        output_tokens=int(message.get("output_tokens") or 0),
        cache_read_tokens=int(message.get("cache_read_tokens") or 0),
        cache_write_tokens=int(message.get("cache_write_tokens") or 0)
        + int(message.get("cache_creation_tokens") or 0),
        reasoning_tokens=message.get("reasoning_tokens"),
        requests=int(message.get("requests") or 1),
        reported_cost_usd=float(cost) if isinstance(cost, int | float) else None,
    )


def set_price(store: Store, cmd: Targeted[SetPrice], by: Actor) -> Changed:
    def decide() -> Changed:
        table = team_table(store, by.team_id, by)
        body = cmd.command
        start = body.effective_from or store.clock.now().date()
        price = ModelPrice(
            model=cmd.target,
            provider=body.provider,
            input=body.input,
            output=body.output,
            cache_read=body.cache_read,
            cache_write=body.cache_write,
            effective_from=start.isoformat(),
        )
        table.set_price(price, by.id, by.request_id)
        position = store.commit(table)
        return Changed(
            data=represent(table, store.clock.now().date(), stored=True), position=position
        )

    return store.with_retries(decide)


def price_list(store: Store, by: Actor) -> dict[str, Any]:
    found = store.find(PriceTable, price_table_id(by.team_id), by.team_id)
    table = found or PriceTable.shipped(by.team_id, by.id, by.request_id)
    return represent(table, store.clock.now().date(), stored=found is not None)


def unpriced_models(store: Store, by: Actor) -> dict[str, Any]:
    found = store.find(PriceTable, price_table_id(by.team_id), by.team_id)
    return {"items": [{"model": m} for m in (found.unpriced() if found else [])]}


def represent(table: PriceTable, today: date, *, stored: bool) -> dict[str, Any]:
    """The table as the API shows it: each model's prices, the one in force today marked.
    ``price_version`` is None for a team whose table is not stored yet (the shipped default)."""
    models = []
    for model in sorted(table.prices):
        current = table.price_for(model, today)
        for price in table.prices[model]:
            models.append({**price.fields(), "in_force": price is current})
    return {
        "price_version": table.price_version if stored else None,
        "source": table.source,
        "models": models,
    }
