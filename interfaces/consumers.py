"""Composition of the log's consumers: each gets its state (one policy, one clock), the shared
quarantine, its retry requests, and a place in the process's ``Consumers`` with how to learn
its head (for the lag /ready and /metrics report)."""

from __future__ import annotations

import asyncio
from typing import Any

from application import budget_watch
from application.budget_watch import BudgetWatch
from application.consumer_state import Consumers, ConsumerState, Head, Policy
from application.ports import Clock
from application.quarantine import QuarantineService, stored_poison
from application.relay import Relay
from application.retry_requests import RetryRequests
from application.store import Store
from infrastructure.settings import Settings
from interfaces.ws.poison import NAME as WEBSOCKET
from interfaces.ws.poison import SocketGuard
from projections import runner as projection_runner
from projections.read_model import ReadModel
from projections.runner import ProjectionRunner


def policy(settings: Settings) -> Policy:
    return Policy(
        max_attempts=settings.consumer_max_attempts,
        backoff=settings.consumer_backoff_seconds,
        max_backoff=settings.consumer_max_backoff_seconds,
    )


def state(settings: Settings, name: str, clock: Clock) -> ConsumerState:
    return ConsumerState(name, policy(settings), clock=clock)


def log_head(log: Any) -> Head:
    """The head of the log (the projection runner's and the relay's), from what each reads it
    through (``max_position``)."""

    async def head() -> int | None:
        return int(await asyncio.to_thread(log.max_position))

    return head


def bus_head(bus: Any, consumer: ConsumerState) -> Head:
    """The last position on the bus, for a durable consumer of it (the webhook queue); None
    (no lag) until the consumer was handed its first event: its own position is not known
    before."""

    async def head() -> int | None:
        last_position = getattr(bus, "last_position", None)
        if last_position is None or consumer.position == 0:
            return None
        return await last_position()

    return head


def build_runner(
    settings: Settings,
    store: Store,
    read_model: ReadModel,
    quarantine: QuarantineService,
    consumers: Consumers,
    clock: Clock,
) -> ProjectionRunner:
    name = projection_runner.NAME

    def record(notification: Any, event: Any, error: BaseException, attempts: int) -> None:
        quarantine.record(stored_poison(name, store, notification, event, error, attempts))

    runner = ProjectionRunner(
        store,
        read_model,
        batch=settings.projection_batch,
        state=state(settings, name, clock),
        quarantine=record,
        retries=RetryRequests(quarantine, name),
    )
    consumers.register(runner.state, log_head(store))
    return runner


def build_budget_watch(
    settings: Settings,
    store: Store,
    read_model: ReadModel,
    quarantine: QuarantineService,
    consumers: Consumers,
    clock: Clock,
) -> BudgetWatch:
    def record(notification: Any, event: Any, error: BaseException, attempts: int) -> None:
        quarantine.record(
            stored_poison(budget_watch.NAME, store, notification, event, error, attempts)
        )

    watch = BudgetWatch(
        store,
        read_model,
        read_model.in_flight,
        state=state(settings, budget_watch.NAME, clock),
        quarantine=record,
        retries=RetryRequests(quarantine, budget_watch.NAME),
    )
    consumers.register(watch.state, log_head(store))
    return watch


def build_relay(
    settings: Settings,
    store: Store,
    bus: Any,
    tracking: Any,
    quarantine: QuarantineService,
    consumers: Consumers,
    clock: Clock,
) -> Relay:
    relay = Relay(
        store,
        bus,
        tracking,
        clock=clock,
        state=state(settings, "relay", clock),
        quarantine=quarantine,
        retries=RetryRequests(quarantine, "relay"),
    )
    consumers.register(relay.state, log_head(store))
    return relay


def socket_guard(services: Any) -> SocketGuard:
    """The WebSocket feeds' guard of this process (consumer ``websocket``; no lag: each socket
    reads at its client's pace)."""
    settings = services.settings
    guard_state = state(settings, WEBSOCKET, services.clock)
    guard = SocketGuard(guard_state, services.quarantine, services.store)
    services.consumers.register(guard.state)
    return guard
