"""The shared limiter on a real Postgres: one budget for every API process."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from application.ports import Allowance
from infrastructure.rate_limit import SWEEP_SECONDS
from infrastructure.rate_limit_postgres import PostgresRateLimiter
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from interfaces.services import migrate


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def url(postgres_url: str, tmp_path: Path) -> str:
    migrate(Settings(data_dir=tmp_path / "data", database_url=postgres_url))
    return postgres_url


def limited(url: str, clock: Clock | None = None, **options: Any) -> PostgresRateLimiter:
    return PostgresRateLimiter(url, clock=clock or Clock(), **options)  # frozen: no refill


def test_two_limiters_on_one_database_share_one_budget(url: str) -> None:
    async def scenario() -> list[Allowance]:
        a, b = limited(url), limited(url)
        try:
            return [await (a if n % 2 else b).hit("ip:x", 4, 60) for n in range(5)]
        finally:
            await a.close()
            await b.close()

    seen = asyncio.run(scenario())
    assert [s.allowed for s in seen] == [True, True, True, True, False]
    assert [s.remaining for s in seen] == [3, 2, 1, 0, 0]
    assert seen[-1].retry_after == pytest.approx(15)


def test_concurrent_requests_counted_in_batches_get_exactly_the_limit(url: str) -> None:
    async def scenario() -> list[Allowance]:
        a, b = limited(url), limited(url)
        try:
            return await asyncio.gather(*((a, b)[n % 2].hit("ip:x", 50, 60) for n in range(200)))
        finally:
            await a.close()
            await b.close()

    seen = asyncio.run(scenario())
    assert sum(s.allowed for s in seen) == 50
    assert sorted(s.remaining for s in seen if s.allowed) == list(range(50))


def test_the_budget_refills_as_in_memory(url: str) -> None:
    clock = Clock()

    async def scenario() -> list[bool]:
        limiter = limited(url, clock)
        try:
            seen = [(await limiter.hit("k", 2, 60)).allowed for _ in range(3)]
            clock.now += 30
            seen.append((await limiter.hit("k", 2, 60)).allowed)
            clock.now += 60
            seen.append((await limiter.hit("k", 2, 60)).remaining == 1)
            return seen
        finally:
            await limiter.close()

    assert asyncio.run(scenario()) == [True, True, False, True, True]


def test_keys_whose_budget_is_full_again_are_deleted(url: str) -> None:
    clock = Clock()

    async def scenario() -> None:
        limiter = limited(url, clock)
        try:
            await limiter.hit("old", 10, 60)
            clock.now += SWEEP_SECONDS
            await limiter.hit("new", 10, 60)
        finally:
            await limiter.close()

    asyncio.run(scenario())
    with psycopg.connect(url) as conn:
        keys = [row[0] for row in conn.execute("SELECT key FROM tw_rate_limits")]
    assert keys == ["new"]


def test_an_unreachable_store_fails_open_to_limits_in_this_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> list[bool]:
        limiter = limited("postgresql://nobody@127.0.0.1:1/nowhere", timeout=0.2)
        try:
            return [(await limiter.hit("ip:x", 2, 60)).allowed for _ in range(3)]
        finally:
            await limiter.close()

    with caplog.at_level(logging.WARNING, logger="taskwarden.rate_limit"):
        seen = asyncio.run(scenario())
    assert seen == [True, True, False]
    assert len([r for r in caplog.records if r.name == "taskwarden.rate_limit"]) == 1


def test_two_api_instances_on_one_database_share_one_budget(url: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path / "data", database_url=url, rate_limit_anonymous=3, run_projections=False
    )
    with (
        TestClient(create_app(settings), raise_server_exceptions=False) as one,
        TestClient(create_app(settings), raise_server_exceptions=False) as two,
    ):
        answers = [client.get("/api/health/") for client in (one, two, one, two)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ratelimit-remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[-1].json()["error"]["code"] == "RATE_LIMIT_EXCEEDED"


def tat_of(url: str, key: str) -> float | None:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT tat FROM tw_rate_limits WHERE key = %s", [key]).fetchone()
    return None if row is None else float(row[0])


def test_a_budget_far_from_spent_is_counted_in_the_table_after_the_requests_not_before(
    url: str,
) -> None:
    clock = Clock()

    async def scenario() -> list[Allowance]:
        limiter = limited(url, clock)
        try:
            seen = [await limiter.hit("actor:a", 1000, 60) for _ in range(10)]
            assert tat_of(url, "actor:a") is None  # nothing waited for the table
            await limiter.flush()
            return seen
        finally:
            await limiter.close()

    seen = asyncio.run(scenario())
    assert [s.remaining for s in seen] == list(range(999, 989, -1))
    assert tat_of(url, "actor:a") == pytest.approx(clock.now + 10 * 60 / 1000)


def test_processes_allowing_at_once_run_ahead_of_the_limit_by_their_share_at_most(
    url: str,
) -> None:
    async def scenario() -> list[Allowance]:
        a, b = limited(url), limited(url)
        try:
            return [await (a, b)[n % 2].hit("actor:a", 100, 60) for n in range(300)]
        finally:
            await a.close()
            await b.close()

    allowed = sum(s.allowed for s in asyncio.run(scenario()))
    assert 100 <= allowed <= 100 + 2 * (100 // 20)


def test_a_budget_under_the_local_minimum_never_runs_ahead(url: str) -> None:
    async def scenario() -> list[bool]:
        a, b = limited(url), limited(url)
        try:
            return [(await (a, b)[n % 2].hit("login-ip:x", 99, 60)).allowed for n in range(120)]
        finally:
            await a.close()
            await b.close()

    assert sum(asyncio.run(scenario())) == 99


def test_a_close_while_a_batch_is_under_way_leaves_no_pool_open(url: str) -> None:
    """The app's lifespan closes the limiter while a request's batch may be about to open the
    pool: the batch ends first, no pool is opened after the close or left open by it (an async
    pool left open hangs the end of the event loop: its workers swallow the cancellation, seen
    as a test's teardown waiting for ever), and every request is still answered."""

    async def scenario() -> tuple[Allowance, Allowance, Any]:
        limiter = limited(url)
        request = asyncio.ensure_future(limiter.hit("ip:x", 4, 60))  # a budget the table decides
        await asyncio.sleep(0)  # the request is waiting on its batch
        await limiter.close()
        answer = await request
        after = await limiter.hit("ip:y", 4, 60)
        return answer, after, limiter._pool

    answer, after, pool = asyncio.run(scenario())
    assert answer.allowed and after.allowed
    assert pool is None or pool.closed
