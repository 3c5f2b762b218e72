"""The budget rule (``application/budgets.py``) and its thresholds (``domain/budget.py``): what a
period spent against its limit, on a clock the test moves, over cost rollups answered by a twin
that sums (day, project, cost) lines the way the rollup does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from application.budget_watch import BudgetWatch
from application.budgets import (
    Gate,
    holding,
    refuse_if_spent,
    settings_of,
    spent_notice,
    standings,
)
from application.consumer_state import ConsumerState, Policy
from application.store import Store
from domain.budget import UNITS, Budget, budget_id, period_of, reached
from domain.errors import BudgetExceededError
from domain.team_settings import TeamSettings
from projections.cost_rows import CostQuery
from projections.costs import CostTotals
from tests.clock import ManualClock
from tests.stores import memory_store

TEAM, SHOP, BLOG = "acme", "shop-id", "blog-id"
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Spent:
    """Cost rollups answered from (team, day, project, units) lines."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str, int]] = []

    def add(self, day: datetime, project: str, dollars: float, team: str = TEAM) -> None:
        self.lines.append((team, day.date().isoformat(), project, round(dollars * UNITS)))

    def cost_totals(self, team_id: str, q: CostQuery) -> CostTotals:
        total = sum(
            units
            for team, day, project, units in self.lines
            if team == team_id
            and q.project_id in (None, project)
            and (q.day_from is None or day >= q.day_from)
            and (q.day_to is None or day <= q.day_to)
        )
        return CostTotals(cost_units=total)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON)


@pytest.fixture
def store(clock: ManualClock) -> Iterator[Store]:
    store = memory_store(clock)
    yield store
    store.close()


@pytest.fixture
def spent() -> Spent:
    return Spent()


def limits(store: Store, **changes: object) -> None:
    settings = store.find(TeamSettings, TeamSettings.create_id(TEAM)) or TeamSettings(team_id=TEAM)
    settings.update(actor="admin", request_id="r", **changes)  # type: ignore[arg-type]
    store.commit(settings)


# ---- the thresholds --------------------------------------------------------------------------


def test_thresholds_are_reached_at_50_80_and_100_percent_exactly():
    limit = 10 * UNITS
    assert reached(5 * UNITS - 1, limit) == []
    assert reached(5 * UNITS, limit) == [50]
    assert reached(8 * UNITS, limit) == [50, 80]
    assert reached(10 * UNITS - 1, limit) == [50, 80]
    assert reached(10 * UNITS, limit) == [50, 80, 100]
    assert reached(0, 0) == [50, 80, 100]  # a limit of nothing is spent at once


def test_each_threshold_is_recorded_once_per_limit_and_a_new_limit_starts_over():
    budget = Budget(team_id=TEAM, project_id=None, scope="team", period="2026-12-03")
    assert budget.cross(6 * UNITS, 10 * UNITS, "soft", NOON) == [50]
    assert budget.cross(7 * UNITS, 10 * UNITS, "soft", NOON) == []
    assert budget.cross(12 * UNITS, 10 * UNITS, "soft", NOON) == [80, 100]
    assert budget.cross(13 * UNITS, 10 * UNITS, "soft", NOON) == []
    assert budget.exceeded_under(10 * UNITS) and not budget.exceeded_under(20 * UNITS)
    assert budget.cross(13 * UNITS, 20 * UNITS, "soft", NOON) == [50]  # raised to 20
    events: list[Any] = list(budget.collect_events())
    names = [type(e).__name__ for e in events]
    assert names == [
        "Opened",
        "ThresholdReached",
        "ThresholdReached",
        "Exceeded",
        "ThresholdReached",
    ]
    assert events[3].spent_usd == 12.0 and events[3].limit_usd == 10.0
    assert events[3].period == "2026-12-03" and events[3].scope == "team"


def test_a_team_limit_is_per_utc_day_and_a_project_budget_per_utc_month():
    late = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period_of("team", late) == "2026-12-31" and period_of("project", late) == "2026-12"
    assert budget_id(TEAM, "team", None, "2026-12-31") != budget_id(
        TEAM, "team", None, "2027-01-01"
    )
    assert budget_id(TEAM, "project", SHOP, "2026-12") != budget_id(
        TEAM, "project", BLOG, "2026-12"
    )


# ---- the rule --------------------------------------------------------------------------------


def test_no_limit_holds_nothing_and_reads_no_spending(store, clock):
    class Unasked:
        def cost_totals(self, team_id: str, q: CostQuery) -> CostTotals:
            raise AssertionError("no limit: the rollups are not read")

    assert standings(store, Unasked(), TEAM, None, clock.now()) == []
    assert holding(store, Unasked(), TEAM, SHOP, clock.now()) is None
    assert Gate(store, Unasked(), clock.now()).open(TEAM, SHOP)


def test_a_spent_daily_limit_holds_until_the_next_utc_day(store, clock, spent):
    limits(store, daily_cost_limit=Decimal("5.00"))
    spent.add(clock.now() - timedelta(days=1), SHOP, 50.0)  # yesterday does not count
    spent.add(clock.now(), SHOP, 4.99)
    assert holding(store, spent, TEAM, SHOP, clock.now()) is None
    spent.add(clock.now(), BLOG, 0.01)  # any project of the team counts towards its limit
    held = holding(store, spent, TEAM, SHOP, clock.now())
    assert held is not None and held.scope == "team" and held.period == "2026-12-03"
    with pytest.raises(BudgetExceededError) as refused:
        refuse_if_spent(store, spent, TEAM, SHOP)
    assert refused.value.code == "BUDGET_EXCEEDED"
    assert refused.value.details["spent_usd"] == 5.0 and refused.value.details["limit_usd"] == 5.0
    assert not Gate(store, spent, clock.now()).open(TEAM, BLOG)

    clock.advance(12 * 3600)  # midnight UTC: a new period
    assert holding(store, spent, TEAM, SHOP, clock.now()) is None
    refuse_if_spent(store, spent, TEAM, SHOP)


def test_a_raised_or_removed_limit_releases_the_work(store, clock, spent):
    limits(store, daily_cost_limit=Decimal(1))
    spent.add(clock.now(), SHOP, 1.0)
    assert holding(store, spent, TEAM, SHOP, clock.now()) is not None
    limits(store, daily_cost_limit=Decimal("1.01"))
    assert holding(store, spent, TEAM, SHOP, clock.now()) is None
    limits(store, daily_cost_limit=Decimal(1))
    assert holding(store, spent, TEAM, SHOP, clock.now()) is not None
    limits(store, daily_cost_limit=None)
    assert holding(store, spent, TEAM, SHOP, clock.now()) is None


def test_a_project_budget_holds_its_project_for_the_month(store, clock, spent):
    limits(store, project_budgets={SHOP: Decimal(10)})
    spent.add(clock.now() - timedelta(days=2), SHOP, 6.0)  # earlier this month counts
    spent.add(clock.now(), SHOP, 4.0)
    spent.add(clock.now(), BLOG, 100.0)  # another project's spending does not
    held = holding(store, spent, TEAM, SHOP, clock.now())
    assert held is not None and held.scope == "project" and held.period == "2026-12"
    assert holding(store, spent, TEAM, BLOG, clock.now()) is None
    gate = Gate(store, spent, clock.now())
    assert not gate.open(TEAM, SHOP) and gate.open(TEAM, BLOG)
    assert gate.open("another-team", SHOP)  # another team has no budget

    clock.set(datetime(2027, 1, 1, 0, 0, tzinfo=UTC))  # a new month
    assert holding(store, spent, TEAM, SHOP, clock.now()) is None


def test_a_gate_deciding_on_kept_settings_refuses_only_on_a_fresh_read(store, clock, spent):
    """The scheduler's gate reads a team's settings as a kept copy (``again`` False) and, before
    it refuses, once more as stored now (``again`` True): a limit raised since the copy was
    kept releases the work; one still spent holds it."""
    limits(store, daily_cost_limit=Decimal(1))
    kept = settings_of(store, TEAM)
    spent.add(clock.now(), SHOP, 1.0)
    limits(store, daily_cost_limit=Decimal(2))  # raised since the copy was kept
    asked: list[bool] = []

    def settings(team_id: str, again: bool) -> Any:
        asked.append(again)
        return settings_of(store, team_id) if again else kept

    assert Gate(store, spent, clock.now(), settings=settings).open(TEAM, SHOP)
    assert asked == [False, True]
    spent.add(clock.now(), SHOP, 1.0)  # now spent under the raised limit too
    asked.clear()
    assert not Gate(store, spent, clock.now(), settings=settings).open(TEAM, SHOP)
    assert asked == [False, True]


# ---- the watch ---------------------------------------------------------------------------------


def watch(store: Store, spent: Spent, running: list[object] | None = None) -> BudgetWatch:
    return BudgetWatch(store, spent, lambda team: list(running or []))


def test_the_watch_records_what_was_reached_once(store, clock, spent):
    limits(store, daily_cost_limit=Decimal(10))
    spent.add(clock.now(), SHOP, 5.0)
    budgets = watch(store, spent)
    [(standing, new)] = budgets.check(TEAM, SHOP)
    assert standing.scope == "team" and new == [50]
    assert budgets.check(TEAM, SHOP) == []  # nothing new
    spent.add(clock.now(), SHOP, 5.0)
    [(_, new)] = budgets.check(TEAM, SHOP)
    assert new == [80, 100]
    assert spent_notice(store, TEAM, SHOP) is not None  # a running agent is told
    assert spent_notice(store, TEAM, BLOG) is not None  # the team's limit covers every project
    limits(store, daily_cost_limit=Decimal(20))
    assert spent_notice(store, TEAM, SHOP) is None  # raised: nothing to tell


def test_the_watch_looks_only_at_the_current_period(store, clock, spent):
    limits(store, daily_cost_limit=Decimal(1))
    spent.add(clock.now() - timedelta(days=1), SHOP, 100.0)
    assert watch(store, spent).check(TEAM, SHOP) == []


def test_a_check_that_keeps_failing_is_quarantined_and_the_watch_goes_on(store, clock, spent):
    class Broken:
        calls = 0

        def cost_totals(self, team_id: str, q: CostQuery) -> CostTotals:
            Broken.calls += 1
            raise RuntimeError("the rollup cannot be read")

    limits(store, daily_cost_limit=Decimal(1))  # a change of settings is checked
    quarantined: list[tuple[int, str]] = []
    budgets = BudgetWatch(
        store,
        Broken(),
        lambda team: [],
        state=ConsumerState("budgets", Policy(max_attempts=3, backoff=0.0), clock=clock),
        quarantine=lambda n, e, error, attempts: quarantined.append((n.id, repr(error))),
    )
    head = store.max_position()
    budgets.catch_up(head)
    assert Broken.calls == 3 and budgets.position == head
    assert quarantined == [(head, "RuntimeError('the rollup cannot be read')")]
    assert budgets.state.quarantined == 1 and budgets.state.last_error is None


# ---- this process's commits, handed ----------------------------------------------------------


class Heard:
    """A recording listener registered after the watch's: once it heard a position, the watch's
    ``hand`` has run for it too (the committer calls its listeners in order, on its thread)."""

    def __init__(self) -> None:
        self.last = 0
        self._changed = threading.Condition()

    def __call__(self, recordings: list[Any]) -> None:
        with self._changed:
            self.last = max(self.last, recordings[-1].notification.id)
            self._changed.notify_all()

    def until(self, position: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.last >= position, timeout=10)


def reads_of(store: Store) -> list[int]:
    """The positions the store's log reads (``Store.notifications``) return, from now on."""
    read: list[int] = []
    real = store.notifications

    def notifications(after: int, limit: int) -> Any:
        found = real(after, limit)
        read.extend(n.id for n in found)
        return found

    store.notifications = notifications  # type: ignore[method-assign]
    return read


def test_the_watch_looks_at_this_process_commits_as_handed_without_reading_them(
    store, clock, spent
):
    budgets = watch(store, spent)
    store.on_recorded(budgets.hand)
    heard = Heard()
    store.on_recorded(heard)
    limits(store, daily_cost_limit=Decimal(100))
    budgets.catch_up(store.max_position())  # read: from its first round on, commits are kept
    spent.add(clock.now(), SHOP, 6.0)
    limits(store, daily_cost_limit=Decimal(10))  # a change of settings: the team is checked
    head = store.max_position()
    heard.until(head)
    read = reads_of(store)
    budgets.catch_up(head)
    assert read == [] and budgets.position == head
    assert budgets.check(TEAM, None) == []  # 50 % was recorded by the round, from the handed event


def test_what_was_not_handed_is_read_from_the_store(store, clock, spent):
    budgets = watch(store, spent)
    store.on_recorded(budgets.hand)  # nothing is kept before the watch first asks
    spent.add(clock.now(), SHOP, 6.0)
    limits(store, daily_cost_limit=Decimal(10))
    head = store.max_position()
    read = reads_of(store)
    budgets.catch_up(head)
    assert head in read and budgets.position == head
    assert budgets.check(TEAM, None) == []


def test_the_watch_takes_no_handed_event_past_what_the_views_applied(store, clock, spent):
    budgets = watch(store, spent)
    store.on_recorded(budgets.hand)
    heard = Heard()
    store.on_recorded(heard)
    limits(store, daily_cost_limit=Decimal(100))
    budgets.catch_up(store.max_position())
    limits(store, daily_cost_limit=Decimal(50))
    applied = store.max_position()  # the views are here
    spent.add(clock.now(), SHOP, 6.0)
    limits(store, daily_cost_limit=Decimal(10))
    head = store.max_position()
    heard.until(head)
    read = reads_of(store)
    budgets.catch_up(applied)
    assert budgets.position == applied
    budgets.catch_up(head)  # the event past it is still kept for the next round
    assert read == [] and budgets.position == head
