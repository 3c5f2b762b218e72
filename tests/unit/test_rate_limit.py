"""The GCRA limiter with an injected clock: no sleeping."""

from __future__ import annotations

import threading

import pytest

from infrastructure.rate_limit import SWEEP_SECONDS, MemoryRateLimiter
from infrastructure.settings import Settings
from interfaces.http.rate_limits import Policy, client_ip


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> MemoryRateLimiter:
    return MemoryRateLimiter(clock)


def test_a_fresh_key_allows_the_whole_limit_at_once_and_refuses_the_next(
    limiter: MemoryRateLimiter,
) -> None:
    seen = [limiter.take("ip:a", 3, 60) for _ in range(4)]
    assert [a.allowed for a in seen] == [True, True, True, False]
    assert [a.remaining for a in seen] == [2, 1, 0, 0]
    assert {a.limit for a in seen} == {3}
    assert {a.window for a in seen} == {60}


def test_the_refusal_says_when_to_retry_and_when_the_budget_is_full(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    for _ in range(3):
        limiter.take("ip:a", 3, 60)
    refused = limiter.take("ip:a", 3, 60)
    assert refused.retry_after == pytest.approx(20.0)  # one request every 60 / 3 seconds
    assert refused.reset_at == pytest.approx(clock.now + 60)


def test_the_budget_refills_one_request_per_interval(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    for _ in range(3):
        limiter.take("ip:a", 3, 60)
    clock.now += 19.9
    assert not limiter.take("ip:a", 3, 60).allowed
    clock.now += 0.1
    assert limiter.take("ip:a", 3, 60).allowed
    assert not limiter.take("ip:a", 3, 60).allowed


def test_after_a_whole_window_the_whole_budget_is_back(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    for _ in range(5):
        limiter.take("ip:a", 3, 60)
    clock.now += 60
    assert limiter.take("ip:a", 3, 60).remaining == 2


def test_refused_requests_do_not_use_the_budget(limiter: MemoryRateLimiter, clock: Clock) -> None:
    for _ in range(3):
        limiter.take("ip:a", 3, 60)
    for _ in range(50):
        limiter.take("ip:a", 3, 60)
    clock.now += 20
    assert limiter.take("ip:a", 3, 60).allowed


def test_there_is_no_window_edge_to_double_the_limit_at(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    """A fixed window allows 2 x limit around its edge; here the budget refills gradually."""
    clock.now += 59
    allowed = sum(limiter.take("ip:a", 10, 60).allowed for _ in range(10))
    clock.now += 2
    allowed += sum(limiter.take("ip:a", 10, 60).allowed for _ in range(10))
    assert allowed == 10


def test_keys_have_their_own_budgets(limiter: MemoryRateLimiter) -> None:
    for _ in range(3):
        limiter.take("ip:a", 3, 60)
    assert limiter.take("ip:b", 3, 60).remaining == 2


@pytest.mark.parametrize("limit", [7, 50, 100, 200, 999])
def test_exactly_the_limit_is_allowed_despite_float_rounding(
    limiter: MemoryRateLimiter, limit: int
) -> None:
    """Intervals that do not divide the window, added to an epoch-sized clock."""
    assert sum(limiter.take("k", limit, 60).allowed for _ in range(limit + 5)) == limit


def test_keys_whose_budget_is_full_again_are_forgotten(
    limiter: MemoryRateLimiter, clock: Clock
) -> None:
    limiter.take("ip:a", 3, 60)
    clock.now += SWEEP_SECONDS
    limiter.take("ip:b", 3, 60)
    assert len(limiter) == 1


def test_concurrent_takes_never_allow_more_than_the_limit(limiter: MemoryRateLimiter) -> None:
    results: list[bool] = []

    def hammer() -> None:
        for _ in range(50):
            results.append(limiter.take("ip:a", 100, 60).allowed)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(results) == 100


def test_settings_read_the_limits_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "TASKWARDEN_RATE_LIMIT_ANONYMOUS": "5",
            "TASKWARDEN_RATE_LIMIT_USER": "7",
            "TASKWARDEN_RATE_LIMIT_LOGIN": "2",
            "TASKWARDEN_RATE_LIMIT_WINDOW": "30",
            "TASKWARDEN_RATE_LIMIT_ENABLED": "0",
            "TASKWARDEN_TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1",
        }
    )
    assert (settings.rate_limit_anonymous, settings.rate_limit_user) == (5, 7)
    assert (settings.rate_limit_login, settings.rate_limit_window) == (2, 30)
    assert settings.rate_limit_enabled is False
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")


def test_the_defaults_are_seed_000s() -> None:
    settings = Settings.from_env({})
    assert settings.rate_limit_enabled
    assert (settings.rate_limit_anonymous, settings.rate_limit_user) == (100, 200)
    assert (settings.rate_limit_login, settings.rate_limit_window) == (10, 60)


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Settings(rate_limit_user=0)


def _scope(peer: str, forwarded: str | None = None) -> dict[str, object]:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return {"client": (peer, 1234), "headers": headers}


def _trusted(*proxies: str) -> Policy:
    return Policy.from_settings(Settings(trusted_proxies=proxies))


def test_the_client_is_the_peer_when_no_proxy_is_trusted() -> None:
    assert client_ip(_scope("203.0.113.9", "198.51.100.1"), ()) == "203.0.113.9"


def test_a_trusted_proxy_names_the_client_in_x_forwarded_for() -> None:
    policy = _trusted("10.0.0.0/8")
    scope = _scope("10.0.0.2", "198.51.100.1, 10.0.0.7")
    assert client_ip(scope, policy.trusted) == "198.51.100.1"


def test_addresses_a_client_puts_before_the_proxy_are_not_believed() -> None:
    policy = _trusted("10.0.0.0/8")
    scope = _scope("10.0.0.2", "1.2.3.4, 198.51.100.1")  # 1.2.3.4 was sent by the client
    assert client_ip(scope, policy.trusted) == "198.51.100.1"


def test_an_untrusted_peer_cannot_choose_its_address() -> None:
    policy = _trusted("10.0.0.0/8")
    assert client_ip(_scope("203.0.113.9", "198.51.100.1"), policy.trusted) == "203.0.113.9"
