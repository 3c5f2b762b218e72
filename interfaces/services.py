"""What every process role shares, built once per process (each role's module in
``interfaces/bootstrap/`` builds the role on it): the ledger, the Store and its committer, the
read model and the projection runner, the bus and the relay, the scheduler and the rate limiter;
and ``migrate``, which creates the tables."""

from __future__ import annotations

from dataclasses import dataclass, field

from application.budget_watch import BudgetWatch
from application.committer import Committer
from application.conflict_retry import ConflictRetry
from application.consumer_state import Consumers
from application.ledger import Ledger
from application.ports import Bus, Clock, PasswordHasher, RateLimiter, TokenCodec
from application.quarantine import QuarantineService
from application.relay import Relay, Tracking
from application.scheduler import Scheduler
from application.store import Store
from infrastructure.audit_digests import backfill_digests
from infrastructure.audit_key import AuditKey, load_audit_key
from infrastructure.clock import SystemClock
from infrastructure.event_store import ledger_env
from infrastructure.memory_bus import MemoryBus
from infrastructure.passwords import ScryptHasher
from infrastructure.place_migration import migrate_places
from infrastructure.rate_limit import MemoryRateLimiter
from infrastructure.rate_limit_postgres import PostgresRateLimiter, migrate_rate_limits
from infrastructure.relay_tracking import open_tracking
from infrastructure.settings import Settings
from infrastructure.tokens import JwtCodec, load_secret
from infrastructure.views import open_read_model
from interfaces.consumers import build_budget_watch, build_relay, build_runner
from projections.read_model import ReadModel
from projections.runner import ProjectionRunner

SETTLE_SECONDS = 2.0  # a claim waits this long at most for the views to show it


@dataclass
class Services:
    settings: Settings
    ledger: Ledger  # read directly by the relay, the in-process bus and the WebSocket feeds
    store: Store  # everything else goes through the Store
    read_model: ReadModel
    runner: ProjectionRunner
    budgets: BudgetWatch  # runs where the runner runs, behind it
    codec: TokenCodec
    hasher: PasswordHasher
    scheduler: Scheduler
    bus: Bus  # closed by the lifespan (async), like the rate limiter
    relay: Relay  # started by the API process (Settings.relay_in_process) or `taskwarden relay`
    tracking: Tracking
    quarantine: QuarantineService  # every consumer's (docs/operations.md, "Quarantine")
    audit_key: AuditKey  # signs audit exports' heads (docs/audit.md, "Key handling")
    rate_limiter: RateLimiter | None = None  # None: rate limits are off; closed by the lifespan
    consumers: Consumers = field(default_factory=Consumers)  # this process's, for health
    clock: Clock = field(default_factory=SystemClock)  # the store's (a test's own moves by hand)

    def close(self) -> None:
        self.budgets.stop()
        self.runner.stop()
        self.tracking.close()
        self.read_model.close()
        self.store.close()  # what its committer holds is written, then the ledger closes


def migrate(settings: Settings) -> None:
    """Creates the event store, read model and rate limit tables, and writes into stored events
    what an earlier version did not (``infrastructure.place_migration``). Run once per upgrade,
    never by racing processes."""
    ledger = Ledger(env=ledger_env(settings, create_tables=True))
    read_model = open_read_model(settings)
    try:
        read_model.migrate()
        tracking = open_tracking(settings)
        tracking.migrate()  # tw_relay: the relay's position, and this migration's
        migrate_places(ledger, tracking)  # events written before each said where it belongs
        backfill_digests(ledger)  # after it: the digests chain the events as they now stand
        tracking.close()
        if settings.database_url and settings.uses_postgres:
            migrate_rate_limits(settings.database_url)
    finally:
        read_model.close()
        ledger.close()


def build(settings: Settings, *, clock: Clock | None = None) -> Services:
    clock = clock or SystemClock()
    ledger = Ledger(env=ledger_env(settings, create_tables=False))
    committer = Committer(ledger, wait=database_wait(settings))
    retry = ConflictRetry(settings.conflict_retry_seconds, clock=clock)
    store = Store(ledger, committer, retry, clock=clock)
    quarantine, consumers = QuarantineService(store), Consumers()
    read_model = open_read_model(settings)
    runner = build_runner(settings, store, read_model, quarantine, consumers, clock)
    store.on_recorded(runner.hand)
    budgets = build_budget_watch(settings, store, read_model, quarantine, consumers, clock)
    store.on_recorded(budgets.hand)
    runner.on_advance(budgets.poke)
    if settings.run_projections:
        budgets.start()
        runner.start()
    tracking = open_tracking(settings)
    bus = open_bus(settings, store, tracking)
    relay = build_relay(settings, store, bus, tracking, quarantine, consumers, clock)
    store.on_recorded(relay.hand)
    scheduler = Scheduler(
        store,
        read_model,
        aging_seconds=settings.aging_seconds,
        lease_seconds=settings.lease_seconds,
        settle=lambda position: runner.wait_for(position, SETTLE_SECONDS),
    )
    return Services(
        settings=settings,
        ledger=ledger,
        store=store,
        scheduler=scheduler,
        read_model=read_model,
        runner=runner,
        budgets=budgets,
        bus=bus,
        relay=relay,
        tracking=tracking,
        quarantine=quarantine,
        consumers=consumers,
        clock=clock,
        codec=JwtCodec(load_secret(settings.jwt_secret, settings.data_dir), settings.access_ttl),
        audit_key=load_audit_key(settings.audit_key_file, settings.data_dir),
        hasher=ScryptHasher(),
        rate_limiter=rate_limiter(settings),
    )


def database_wait(settings: Settings) -> float | None:
    """How long a request waits for a commit: the database timeout with Postgres; with SQLite,
    in this process, its own lock timeout bounds it."""
    return settings.database_timeout_seconds if settings.uses_postgres else None


def rate_limiter(settings: Settings) -> RateLimiter | None:
    """Shared through Postgres across API replicas; in this process in embedded mode."""
    if not settings.rate_limit_enabled:
        return None
    if settings.database_url and settings.uses_postgres:
        return PostgresRateLimiter(settings.database_url)
    return MemoryRateLimiter()


def open_bus(settings: Settings, store: Store, tracking: Tracking) -> Bus:
    """NATS JetStream when TASKWARDEN_NATS_URL is set; else the in-process bus, whose durable
    consumers resume from the store after a restart. Nothing connects before first use."""
    if settings.nats_url:
        from infrastructure.nats_bus import NatsBus  # noqa: PLC0415

        return NatsBus(
            settings.nats_url,
            settings.nats_stream,
            max_age=settings.nats_max_age,
            max_bytes=settings.nats_max_bytes,
        )
    return MemoryBus(source=store, tracking=tracking)
