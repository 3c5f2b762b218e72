"""The shared rate limiter: one row per key in Postgres, so limits hold across API replicas.

Requests are counted in batches, as the Committer commits: while one statement is in flight, the
hits that arrive wait and go together in the next, so a process makes at most one round trip per
request, and far fewer under load. The statement is one upsert over the batch's keys (in key order,
so two replicas lock rows in the same order) that applies the GCRA step of
``infrastructure.rate_limit`` for ``asked`` requests at once under the row lock, and returns how
many were ``granted``; the first ``granted`` hits of that key in the batch are allowed.

The table is UNLOGGED (counters need not survive a crash; no WAL per request) and has no index
beyond its key, so the updates stay HOT. ``asked``, ``spacing`` (seconds per request) and ``span``
(the window) hold the last batch's request so that ON CONFLICT can read it from EXCLUDED. Rows whose
budget is full again mean nothing and are deleted about once a minute per process.

If the store fails (down, pool exhausted), the limiter fails open to the in-process limiter for
``COOLDOWN_SECONDS`` and logs one line: each replica then limits on its own, and a hiccup of the
limiter's table never answers a request with an error.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from application.ports import Allowance
from infrastructure.rate_limit import SWEEP_SECONDS, MemoryRateLimiter, allowance

log = logging.getLogger("taskwarden.rate_limit")

POOL_TIMEOUT_SECONDS = 1.0
COOLDOWN_SECONDS = 5.0
SCHEMA = (
    """CREATE UNLOGGED TABLE IF NOT EXISTS tw_rate_limits (
        key TEXT PRIMARY KEY, tat DOUBLE PRECISION NOT NULL, granted INTEGER NOT NULL,
        asked INTEGER NOT NULL, spacing DOUBLE PRECISION NOT NULL,
        span DOUBLE PRECISION NOT NULL)""",
)
# how many of ``asked`` fit between the budget's tat (a new key: now) and now + span; SET sees the
# old row throughout, so ``granted`` and ``tat`` agree; 0.001 is rate_limit.EPSILON
_FIT = "LEAST({asked}, GREATEST(0, FLOOR((%(now)s + {span} + 0.001 - {base}) / {spacing})))::int"
_NEW = _FIT.format(asked="asked", span="span", spacing="spacing", base="%(now)s")
_OLD = _FIT.format(
    asked="EXCLUDED.asked",
    span="EXCLUDED.span",
    spacing="EXCLUDED.spacing",
    base="GREATEST(r.tat, %(now)s)",
)
TAKE = f"""
    INSERT INTO tw_rate_limits AS r (key, tat, granted, asked, spacing, span)
    SELECT key, %(now)s + {_NEW} * spacing, {_NEW}, asked, spacing, span
    FROM unnest(%(keys)s::text[], %(asked)s::int[], %(spacing)s::float8[], %(span)s::float8[])
        AS h(key, asked, spacing, span)
    ORDER BY key
    ON CONFLICT (key) DO UPDATE SET
        granted = {_OLD},
        tat = GREATEST(r.tat, %(now)s) + {_OLD} * EXCLUDED.spacing,
        asked = EXCLUDED.asked, spacing = EXCLUDED.spacing, span = EXCLUDED.span
    RETURNING key, tat, granted"""  # noqa: S608 - fragments are constants, values are parameters
SWEEP = "DELETE FROM tw_rate_limits WHERE tat < %s"


def migrate_rate_limits(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)


@dataclass
class _Hit:
    key: str
    limit: int
    window: int
    answer: asyncio.Future[Allowance] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def settle(self, allowance: Allowance) -> None:
        if not self.answer.done():  # the request may have been cancelled meanwhile
            self.answer.set_result(allowance)


def _answers(batch: list[_Hit], rows: list[tuple[str, float, int]], now: float) -> None:
    """The first ``granted`` hits of each key are allowed, one interval apart."""
    taken = {key: (tat, granted) for key, tat, granted in rows}
    first = {hit.key: hit for hit in reversed(batch)}  # the policy a key was counted with
    seen: Counter[str] = Counter()
    for hit in batch:
        tat, granted = taken[hit.key]
        limit, window = first[hit.key].limit, first[hit.key].window
        spacing = window / limit
        nth, seen[hit.key] = seen[hit.key], seen[hit.key] + 1
        if nth < granted:
            own = tat - (granted - nth - 1) * spacing
            hit.settle(allowance(own, True, now, limit, window))
        else:
            hit.settle(allowance(tat, False, now, limit, window))


class PostgresRateLimiter:
    """Talks to Postgres from the event loop (no thread hop) through a small async pool, opened on
    the first request, on the loop that serves requests, and closed by the app's lifespan."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        timeout: float = POOL_TIMEOUT_SECONDS,
    ) -> None:
        self._url = url
        self._clock = clock
        self._timeout = timeout
        self._pool: AsyncConnectionPool | None = None
        self._pending: list[_Hit] = []
        self._flushing: asyncio.Future[None] | None = None
        self._fallback = MemoryRateLimiter(clock)
        self._down_until = 0.0
        self._next_sweep = clock() + SWEEP_SECONDS

    async def hit(self, key: str, limit: int, window: int) -> Allowance:
        if self._clock() < self._down_until:
            return self._fallback.take(key, limit, window)
        hit = _Hit(key, limit, window)
        self._pending.append(hit)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        return await hit.answer

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            now = self._clock()
            try:
                _answers(batch, await self._take(batch, now), now)
            except (psycopg.Error, PoolTimeout) as error:
                self._fail_open(batch, now, str(error))
            except Exception:  # a bug must not hang the requests: fail open, loudly
                log.exception("rate limits: counting failed")
                self._fail_open(batch, now, "see the traceback above")

    async def _take(self, batch: list[_Hit], now: float) -> list[tuple[str, float, int]]:
        asked: Counter[str] = Counter(hit.key for hit in batch)
        policy = {hit.key: hit for hit in reversed(batch)}
        keys = sorted(asked)
        params = {
            "now": now,
            "keys": keys,
            "asked": [asked[k] for k in keys],
            "spacing": [policy[k].window / policy[k].limit for k in keys],
            "span": [float(policy[k].window) for k in keys],
        }
        async with (await self._opened()).connection() as conn:
            rows = await (await conn.execute(TAKE, params)).fetchall()
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_SECONDS
                await conn.execute(SWEEP, [now])
        return rows

    def _fail_open(self, batch: list[_Hit], now: float, reason: str) -> None:
        self._down_until = now + COOLDOWN_SECONDS
        log.warning(
            "rate limits: the shared store failed (%s); limiting per process for %.0f s",
            reason,
            COOLDOWN_SECONDS,
        )
        for hit in batch:
            hit.settle(self._fallback.take(hit.key, hit.limit, hit.window))

    async def _opened(self) -> AsyncConnectionPool:
        """Opened by the first batch; one batch runs at a time, so only once."""
        if self._pool is None:  # one statement at a time: two connections cover a reconnect
            pool = AsyncConnectionPool(
                self._url,
                min_size=1,
                max_size=2,
                timeout=self._timeout,
                # after an outage, the first batch past the cooldown connects at once (psycopg
                # would keep retrying in the background for 5 minutes, the pause doubling)
                reconnect_timeout=max(self._timeout, COOLDOWN_SECONDS),
                kwargs={"autocommit": True, "connect_timeout": max(2, math.ceil(self._timeout))},
                open=False,
                name="taskwarden-rate-limits",
            )
            await pool.open()
            self._pool = pool
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
