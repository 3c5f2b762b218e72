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

A request far from its budget's end does not wait for the table at all (that round trip was
about a third of a create's CPU, and a fifth of its throughput): each process keeps its own view
of each key (the table's ``tat`` as last read, plus its own requests since) and allows a request
at once when that view leaves at least half of the budget after it and the process has fewer
than ``limit // LOCAL_SHARE`` requests of that key not yet counted in the table. Those are
counted in the background (``flush``, ``FLUSH_SECONDS`` after the first of them), or with the
next request of the key that goes to the table. Every other request (near the budget's end, a
budget under ``LOCAL_MIN_LIMIT`` such as the logins', a refusal) is decided by the table as
before, with the process's uncounted requests of that key counted first. So a process runs ahead
of the table by at most ``limit // LOCAL_SHARE`` requests per key, and N processes together
allow at most that many times N more than the limit within a window, none when there is one.
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
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from application.ports import Allowance
from infrastructure.rate_limit import SWEEP_SECONDS, MemoryRateLimiter, allowance, step

log = logging.getLogger("taskwarden.rate_limit")

POOL_TIMEOUT_SECONDS = 1.0
COOLDOWN_SECONDS = 5.0
LOCAL_MIN_LIMIT = 100  # smaller budgets (logins) are always decided by the table
LOCAL_SHARE = 20  # a process runs at most limit // 20 (5 %) requests ahead of the table
FLUSH_SECONDS = 0.2  # how soon requests allowed at once are counted in the table
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


def _answers(
    batch: list[_Hit],
    rows: list[tuple[str, float, int]],
    now: float,
    ahead: Counter[str] | None = None,
) -> None:
    """The first ``granted`` hits of each key are allowed, one interval apart; ``ahead`` (the
    requests this process allowed at once and counted first in the same statement) come first."""
    taken = {key: (tat, granted) for key, tat, granted in rows}
    first = {hit.key: hit for hit in reversed(batch)}  # the policy a key was counted with
    seen: Counter[str] = Counter(ahead or {})
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
        self._closed = False
        self._pending: list[_Hit] = []
        self._flushing: asyncio.Future[None] | None = None
        self._fallback = MemoryRateLimiter(clock)
        self._down_until = 0.0
        self._next_sweep = clock() + SWEEP_SECONDS
        self._seen: dict[str, float] = {}  # this process's view of each key's tat
        self._ahead: Counter[str] = Counter()  # allowed at once, not yet counted in the table
        self._policy: dict[str, tuple[int, int]] = {}  # the limit and window they were under
        self._flush_timer: asyncio.TimerHandle | None = None
        self._next_forget = clock() + SWEEP_SECONDS

    async def hit(self, key: str, limit: int, window: int) -> Allowance:
        now = self._clock()
        if now < self._down_until:
            return self._fallback.take(key, limit, window)
        at_once = self._at_once(key, limit, window, now)
        if at_once is not None:
            return at_once
        hit = _Hit(key, limit, window)
        self._pending.append(hit)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())
        return await hit.answer

    def _at_once(self, key: str, limit: int, window: int, now: float) -> Allowance | None:
        """The request allowed without the table, if this process's view leaves half the
        budget after it and the process is not too far ahead of the table (None: ask it)."""
        if limit < LOCAL_MIN_LIMIT or self._ahead[key] >= limit // LOCAL_SHARE:
            return None
        tat, result = step(self._seen.get(key), now, limit, window)
        if not result.allowed or result.remaining < limit // 2:
            return None
        self._seen[key] = tat
        self._ahead[key] += 1
        self._policy[key] = (limit, window)
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(FLUSH_SECONDS, self._flush_soon)
        return result

    def _flush_soon(self) -> None:
        self._flush_timer = None
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(self._flush())

    async def flush(self) -> None:
        """Counts in the table the requests this process allowed at once (the background timer
        calls it; a test, to see the table)."""
        if self._flushing is not None and not self._flushing.done():
            await self._flushing
        self._flushing = asyncio.ensure_future(self._flush())
        await self._flushing

    async def _flush(self) -> None:
        """One statement for the waiting requests and everything allowed at once, then again
        while requests wait (what is allowed at once meanwhile waits for the next timer)."""
        once = bool(self._ahead)
        while self._pending or once:
            once = False
            batch, self._pending = self._pending, []
            ahead, self._ahead = self._ahead, Counter()
            now = self._clock()
            try:
                rows = await self._take(batch, now, ahead)
            except (psycopg.Error, PoolTimeout) as error:
                self._fail_open(batch, now, str(error))
            except Exception:  # a bug must not hang the requests: fail open, loudly
                log.exception("rate limits: counting failed")
                self._fail_open(batch, now, "see the traceback above")
            else:
                _answers(batch, rows, now, ahead)
                self._learn(rows, now)

    def _learn(self, rows: list[tuple[str, float, int]], now: float) -> None:
        """This process's view of each key counted: the table's tat, plus the requests it
        allowed at once since the statement was sent; keys whose budget is full again are
        forgotten (the same as never seen)."""
        for key, tat, _ in rows:
            since = self._ahead.get(key, 0)
            limit, window = self._policy.get(key, (1, 0))
            self._seen[key] = max(self._seen.get(key, 0.0), tat + since * window / limit)
        if now >= self._next_forget:
            self._next_forget = now + SWEEP_SECONDS
            self._seen = {k: t for k, t in self._seen.items() if t > now or k in self._ahead}
            self._policy = {k: p for k, p in self._policy.items() if k in self._seen}

    async def _take(
        self, batch: list[_Hit], now: float, ahead: Counter[str]
    ) -> list[tuple[str, float, int]]:
        asked: Counter[str] = ahead + Counter(hit.key for hit in batch)
        policy = {k: self._policy[k] for k in ahead} | {
            hit.key: (hit.limit, hit.window) for hit in reversed(batch)
        }
        keys = sorted(asked)
        params = {
            "now": now,
            "keys": keys,
            "asked": [asked[k] for k in keys],
            "spacing": [policy[k][1] / policy[k][0] for k in keys],
            "span": [float(policy[k][1]) for k in keys],
        }
        async with (await self._opened()).connection() as conn:
            rows = await (await conn.execute(TAKE, params)).fetchall()
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_SECONDS
                await conn.execute(SWEEP, [now])
        return rows

    def _fail_open(self, batch: list[_Hit], now: float, reason: str) -> None:
        """The requests allowed at once are not counted in the table (it is down); the waiting
        ones are decided in this process."""
        self._down_until = now + COOLDOWN_SECONDS
        log.warning(
            "rate limits: the shared store failed (%s); limiting per process for %.0f s",
            reason,
            COOLDOWN_SECONDS,
        )
        for hit in batch:
            hit.settle(self._fallback.take(hit.key, hit.limit, hit.window))

    async def _opened(self) -> AsyncConnectionPool:
        """Opened by the first batch; one batch runs at a time, so only once. Never after
        ``close``, and known to ``close`` before it is opened: a pool left open when the event
        loop ends hangs the loop's end (psycopg_pool's async workers swallow the cancellation
        of a task they are running and wait for the next)."""
        if self._closed:
            raise PoolClosed("the rate limiter is closed")
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
            self._pool = pool
            await pool.open()
        return self._pool

    async def close(self) -> None:
        """Ends the batch under way (its requests answered, from the table or failing open),
        then closes the pool, which that batch may have been opening."""
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._flushing is not None and not self._flushing.done():
            await asyncio.wait([self._flushing])
        if self._pool is not None:
            await self._pool.close()
