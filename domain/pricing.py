"""A team's price table: what each model costs per million tokens, and since when.

One table per team (teams pay for their own agents and may have their own terms), created from
the shipped default (``domain.default_prices``) the first time the team needs it: its first usage
report or its admin's first change. Every change is an event with its actor, and each event that
changes a price is a new **price version** (the aggregate's version at that event). A usage
event records the version that priced it, so the figures of yesterday never move.

A model may hold several prices, each with the date it takes effect: usage is priced with the
latest one in force on its day, so a price announced ahead of time is entered ahead of time.
Models that usage reported and the table cannot price are noted once (``ModelSeen``), so that
the "models without a price" query reads the table alone.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain import default_prices
from domain.errors import RuleViolationError
from domain.place import Placed
from domain.usage import COST_DIGITS, PER, Usage

_NAMESPACE = uuid5(NAMESPACE_URL, "https://taskwarden.dev/price-table")
MAX_PRICE = 10_000.0  # USD per million tokens: far above any model's, below a typo's
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@\[\]-]{0,99}$")
_SNAPSHOT = re.compile(r"(-latest|-\d{8}|-\d{4}-\d{2}-\d{2})$")


def price_table_id(team_id: str) -> UUID:
    return uuid5(_NAMESPACE, team_id)


def base_model(model: str) -> str:
    """A model's name without its snapshot suffix: ``claude-sonnet-4-5-20250929`` and
    ``claude-3-7-sonnet-latest`` are priced as ``claude-sonnet-4-5`` and ``claude-3-7-sonnet``."""
    return _SNAPSHOT.sub("", model.lower())


@dataclass(frozen=True, kw_only=True)
class ModelPrice:
    """USD per million tokens, in force from ``effective_from`` (None: from the start)."""

    model: str
    provider: str | None
    input: float
    output: float
    cache_read: float
    cache_write: float
    effective_from: str | None = None  # YYYY-MM-DD

    def cost(self, usage: Usage) -> float:
        spent = (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_tokens * self.cache_read
            + usage.cache_write_tokens * self.cache_write
        )
        return round(spent / PER, COST_DIGITS)

    def fields(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_price(price: ModelPrice) -> None:
    """Refuses a name that is not a model's and prices that are negative, not numbers or absurd."""
    if not MODEL_NAME.match(price.model):
        raise RuleViolationError("not a model name", model=price.model)
    for name in ("input", "output", "cache_read", "cache_write"):
        value = getattr(price, name)
        if not isinstance(value, int | float) or not 0 <= value <= MAX_PRICE:
            raise RuleViolationError(
                f"a price is between 0 and {MAX_PRICE:g} USD per million tokens", field=name
            )
    if price.effective_from is not None:
        try:
            date.fromisoformat(price.effective_from)
        except ValueError:
            raise RuleViolationError("not a date", field="effective_from") from None


def shipped_prices() -> list[dict[str, Any]]:
    return [
        ModelPrice(model=m, provider=p, input=i, output=o, cache_read=r, cache_write=w).fields()
        for m, p, i, o, r, w in default_prices.PRICES
    ]


class PriceTable(Placed):
    """The prices one team's usage is charged at."""

    @staticmethod
    def create_id(team_id: str) -> UUID:
        return price_table_id(team_id)

    @classmethod
    def shipped(cls, team_id: str, actor: str, request_id: str) -> PriceTable:
        """A new team table holding the shipped default."""
        source = f"default {default_prices.DATE}"
        return cls(
            team_id=team_id,
            source=source,
            prices=shipped_prices(),
            actor=actor,
            request_id=request_id,
        )

    @event("Created")
    def __init__(
        self, team_id: str, source: str, prices: list[dict[str, Any]], actor: str, request_id: str
    ) -> None:
        self.team_id = team_id
        self.source = source
        self.prices: dict[str, list[ModelPrice]] = {}
        for fields in prices:
            self._add(ModelPrice(**fields))
        self.price_version = 1
        self.seen: list[str] = []

    # ---- reading -------------------------------------------------------------------------

    def price_for(self, model: str | None, on: date) -> ModelPrice | None:
        """The price in force on ``on`` for this model (its exact name first, then its base)."""
        if not model:
            return None
        for name in (model, base_model(model)):
            in_force = [p for p in self.prices.get(name, []) if _from(p) <= on]
            if in_force:
                return in_force[-1]
        return None

    def priced(self, usage: Usage, on: date) -> Usage:
        """The usage with its cost and the version that priced it; an unknown model costs 0
        and has no version."""
        price = self.price_for(usage.model, on)
        if price is None:
            return dataclasses.replace(usage, cost_usd=0.0, price_version=None)
        provider = usage.provider or price.provider
        return dataclasses.replace(
            usage, provider=provider, cost_usd=price.cost(usage), price_version=self.price_version
        )

    def unpriced(self) -> list[str]:
        """Models usage reported that have no price at all (not even a future one)."""
        return [
            m for m in self.seen if not self.prices.get(m) and not self.prices.get(base_model(m))
        ]

    # ---- deciding ------------------------------------------------------------------------

    def set_price(self, price: ModelPrice, actor: str, request_id: str) -> None:
        check_price(price)
        self._price_set(**price.fields(), actor=actor, request_id=request_id)

    def note_unpriced(self, model: str | None, on: date, actor: str, request_id: str) -> None:
        """Notes a model that usage reported and no price covers, once."""
        if not model or model in self.seen or self.price_for(model, on) is not None:
            return
        self._model_seen(model=model, actor=actor, request_id=request_id)

    @event("PriceSet")
    def _price_set(  # noqa: PLR0913
        self,
        model: str,
        provider: str | None,
        input: float,  # noqa: A002
        output: float,
        cache_read: float,
        cache_write: float,
        effective_from: str | None,
        actor: str,
        request_id: str,
    ) -> None:
        self._add(
            ModelPrice(
                model=model,
                provider=provider,
                input=input,
                output=output,
                cache_read=cache_read,
                cache_write=cache_write,
                effective_from=effective_from,
            )
        )
        self.price_version = self.version + 1  # the body runs before the version moves on

    @event("ModelSeen")
    def _model_seen(self, model: str, actor: str, request_id: str) -> None:
        self.seen = [*self.seen, model]

    def _add(self, price: ModelPrice) -> None:
        kept = [
            p for p in self.prices.get(price.model, []) if p.effective_from != price.effective_from
        ]
        self.prices = {**self.prices, price.model: sorted([*kept, price], key=_from)}


def _from(price: ModelPrice) -> date:
    return date.fromisoformat(price.effective_from) if price.effective_from else date.min
