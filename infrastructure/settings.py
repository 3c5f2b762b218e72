"""Settings read from the environment into one frozen Struct."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: Path = Path("data")
    database_url: str | None = None
    # the events in this process's memory (eventsourcing's POPO persistence), gone when it ends:
    # the handler tests' fast tier and throwaway demos; the views stay SQLite in data_dir
    memory_store: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    read_wait_seconds: float = 5.0
    projection_batch: int = 500
    run_projections: bool = True
    version: str = "0.1.0"
    environment: str = "development"
    admin_key: str | None = None
    admin_password: str | None = None
    jwt_secret: str | None = None
    # the Ed25519 key that signs audit exports (a PEM private key file); None: one generated once
    # into <data_dir>/audit_ed25519.pem (docs/audit.md, "Key handling")
    audit_key_file: Path | None = None
    access_ttl: int = 900
    refresh_ttl: int = 30 * 24 * 3600
    # a used refresh token presented again this soon gets the same answer (docs/security.md)
    refresh_reuse_grace_seconds: float = 5.0
    # a write without If-Match that loses a race decides again for this long (docs/api.md)
    conflict_retry_seconds: float = 5.0
    # Postgres: a request waits this long at most for the event store, the read model or a
    # commit before it answers 503 (docs/operations.md, "When Postgres is down")
    database_timeout_seconds: float = 3.0
    # a task's snapshot every this many events: a load reads the newest and replays the events
    # after it (docs/architecture.md, "Snapshots"); 0: none taken and none read
    snapshot_interval: int = 50
    # aggregates each process keeps as last loaded, brought up to date from the events on each
    # load (docs/architecture.md, "Snapshots"); 0: none kept
    aggregate_cache_size: int = 256
    # requests per window: per client IP without authentication, per principal with it, and per
    # username and per IP on POST /api/auth/login (docs/security.md, "Rate limits")
    rate_limit_enabled: bool = True
    rate_limit_anonymous: int = 100
    rate_limit_user: int = 200
    rate_limit_login: int = 10
    rate_limit_window: int = 60
    # peers (addresses or networks) whose X-Forwarded-For is believed; none by default
    trusted_proxies: tuple[str, ...] = ()
    # execution (docs/execution.md): workspaces live under workspace_root (default
    # <data_dir>/workspaces); agents maps a name to its argv template and adapter (agents_file: a
    # JSON file adding to or replacing the built-in ones); workers: in-process workers (embedded)
    workspace_root: Path | None = None
    default_agent: str = "scripted"
    agents_file: Path | None = None
    workers: int | None = None  # None: 2 in embedded mode, 0 with Postgres (`taskwarden worker`)
    allow_local_repositories: bool = False  # clone file:// URLs and local paths (tests, demos)
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    output_cap_bytes: int = 10 * 1024 * 1024
    aging_seconds: float = 60.0  # waiting this long raises a queued request's priority one level
    hitl_timeout_seconds: float | None = None  # questions and checkpoints wait (None: forever)
    commands_enabled: bool = False
    # networks (CIDRs) webhooks may reach although the SSRF guard refuses them (docs/security.md)
    webhook_allowed_networks: tuple[str, ...] = ()
    # the API process sends webhooks (None: only with the in-process bus, without NATS)
    run_webhooks: bool | None = None
    # the WebSocket gateway (docs/api.md, "WebSocket"): browser origins allowed besides the
    # server's own ("*": any); seconds to authenticate; messages queued per socket before a
    # consumer that stays behind for ws_send_grace seconds is closed; events a resume may replay;
    # sockets one user or key may hold at once on one process (seed 000: 50; 0: no limit);
    # permessage-deflate for clients that offer it (off: each socket would compress each live
    # event with a context of its own, and none could take the frame built once)
    ws_allowed_origins: tuple[str, ...] = ()
    ws_auth_seconds: float = 10.0
    ws_queue_size: int = 1_000
    ws_send_grace: float = 1.0
    ws_max_replay: int = 10_000
    ws_reauth_seconds: float = 60.0
    ws_max_sockets_per_principal: int = 50
    ws_compression: bool = False
    # the event bus (docs/operations.md, "NATS and the relay"): NATS JetStream when nats_url is
    # set, else in this process; the stream keeps events nats_max_age seconds and nats_max_bytes
    # at most; run_relay: the API process relays (None: only in embedded mode, without NATS)
    nats_url: str | None = None
    nats_stream: str = "TASKWARDEN"
    nats_max_age: float = 7 * 24 * 3600.0
    nats_max_bytes: int = 1 << 30
    run_relay: bool | None = None
    # consumers of the log (docs/operations.md, "Quarantine"): an event a consumer fails on while
    # its dependency answers is tried consumer_max_attempts times, the backoff doubling from
    # consumer_backoff_seconds up to consumer_max_backoff_seconds, then quarantined. /ready
    # answers 503 while a consumer fails on one position for over ready_stuck_seconds, is
    # quarantining, or is over ready_max_lag positions behind (0: no limit) ("Health thresholds")
    consumer_max_attempts: int = 5
    consumer_backoff_seconds: float = 0.1
    consumer_max_backoff_seconds: float = 5.0
    ready_stuck_seconds: float = 30.0
    ready_max_lag: int = 100_000

    @property
    def relay_in_process(self) -> bool:
        """The API process runs the relay."""
        return self.run_relay if self.run_relay is not None else self.nats_url is None

    @property
    def webhooks_in_process(self) -> bool:
        """The API process consumes the bus and sends webhooks (one sender keeps their order)."""
        return self.run_webhooks if self.run_webhooks is not None else self.nats_url is None

    @property
    def worker_count(self) -> int:
        """In-process workers this process runs."""
        if self.workers is not None:
            return self.workers
        return 0 if self.uses_postgres else 2

    @property
    def workspaces(self) -> Path:
        return self.workspace_root or self.data_dir / "workspaces"

    @property
    def event_store(self) -> str:
        """Where the events are kept: ``memory``, ``postgres``, or ``sqlite`` (in data_dir)."""
        if self.memory_store:
            return "memory"
        return "postgres" if self.uses_postgres else "sqlite"

    @property
    def uses_postgres(self) -> bool:
        return bool(
            self.database_url and self.database_url.startswith(("postgres://", "postgresql"))
        )

    def __post_init__(self) -> None:
        if self.consumer_max_attempts < 1 or self.ready_max_lag < 0:
            raise ValueError("TASKWARDEN_CONSUMER_MAX_ATTEMPTS >= 1, TASKWARDEN_READY_MAX_LAG >= 0")
        if self.database_url and not self.uses_postgres:
            raise ValueError("TASKWARDEN_DATABASE_URL must start with postgresql:// or postgres://")
        if self.memory_store and self.database_url:
            raise ValueError("TASKWARDEN_MEMORY_STORE goes with the embedded views, not a database")
        limits = (self.rate_limit_anonymous, self.rate_limit_user, self.rate_limit_login)
        if min(*limits, self.rate_limit_window) < 1:
            raise ValueError("rate limits and their window must be at least 1")
        if self.snapshot_interval < 0 or self.aggregate_cache_size < 0:
            raise ValueError(
                "TASKWARDEN_SNAPSHOT_INTERVAL and TASKWARDEN_AGGREGATE_CACHE_SIZE: 0 (none) or more"
            )
        if self.database_timeout_seconds <= 0:
            raise ValueError("TASKWARDEN_DATABASE_TIMEOUT_SECONDS must be more than 0")
        if min(self.conflict_retry_seconds, self.refresh_reuse_grace_seconds) < 0:
            raise ValueError("retry and grace seconds cannot be negative")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            data_dir=Path(env.get("TASKWARDEN_DATA_DIR", "data")),
            database_url=env.get("TASKWARDEN_DATABASE_URL") or None,
            memory_store=env.get("TASKWARDEN_MEMORY_STORE", "0") in ("1", "true", "yes"),
            host=env.get("TASKWARDEN_HOST", "127.0.0.1"),
            port=int(env.get("TASKWARDEN_PORT", "8000")),
            max_body_bytes=int(env.get("TASKWARDEN_MAX_BODY_BYTES", "1048576")),
            read_wait_seconds=float(env.get("TASKWARDEN_READ_WAIT_SECONDS", "5")),
            projection_batch=int(env.get("TASKWARDEN_PROJECTION_BATCH", "500")),
            run_projections=env.get("TASKWARDEN_RUN_PROJECTIONS", "1") not in ("0", "false", "no"),
            environment=env.get("TASKWARDEN_ENVIRONMENT", "development"),
            admin_key=env.get("TASKWARDEN_ADMIN_KEY") or None,
            admin_password=env.get("TASKWARDEN_ADMIN_PASSWORD") or None,
            jwt_secret=env.get("TASKWARDEN_JWT_SECRET") or None,
            audit_key_file=_path(env.get("TASKWARDEN_AUDIT_KEY_FILE")),
            access_ttl=int(env.get("TASKWARDEN_ACCESS_TTL", "900")),
            refresh_ttl=int(env.get("TASKWARDEN_REFRESH_TTL", str(30 * 24 * 3600))),
            refresh_reuse_grace_seconds=float(
                env.get("TASKWARDEN_REFRESH_REUSE_GRACE_SECONDS", "5")
            ),
            conflict_retry_seconds=float(env.get("TASKWARDEN_CONFLICT_RETRY_SECONDS", "5")),
            database_timeout_seconds=float(env.get("TASKWARDEN_DATABASE_TIMEOUT_SECONDS", "3")),
            snapshot_interval=int(env.get("TASKWARDEN_SNAPSHOT_INTERVAL", "50")),
            aggregate_cache_size=int(env.get("TASKWARDEN_AGGREGATE_CACHE_SIZE", "256")),
            rate_limit_enabled=env.get("TASKWARDEN_RATE_LIMIT_ENABLED", "1")
            not in ("0", "false", "no"),
            rate_limit_anonymous=int(env.get("TASKWARDEN_RATE_LIMIT_ANONYMOUS", "100")),
            rate_limit_user=int(env.get("TASKWARDEN_RATE_LIMIT_USER", "200")),
            rate_limit_login=int(env.get("TASKWARDEN_RATE_LIMIT_LOGIN", "10")),
            rate_limit_window=int(env.get("TASKWARDEN_RATE_LIMIT_WINDOW", "60")),
            trusted_proxies=tuple(
                p.strip() for p in env.get("TASKWARDEN_TRUSTED_PROXIES", "").split(",") if p.strip()
            ),
            workspace_root=_path(env.get("TASKWARDEN_WORKSPACE_ROOT")),
            default_agent=env.get("TASKWARDEN_DEFAULT_AGENT", "scripted"),
            agents_file=_path(env.get("TASKWARDEN_AGENTS_FILE")),
            workers=int(env["TASKWARDEN_WORKERS"]) if env.get("TASKWARDEN_WORKERS") else None,
            allow_local_repositories=env.get("TASKWARDEN_ALLOW_LOCAL_REPOSITORIES", "0")
            in ("1", "true", "yes"),
            lease_seconds=float(env.get("TASKWARDEN_LEASE_SECONDS", "30")),
            heartbeat_seconds=float(env.get("TASKWARDEN_HEARTBEAT_SECONDS", "5")),
            output_cap_bytes=int(env.get("TASKWARDEN_OUTPUT_CAP_BYTES", str(10 * 1024 * 1024))),
            aging_seconds=float(env.get("TASKWARDEN_AGING_SECONDS", "60")),
            hitl_timeout_seconds=float(env["TASKWARDEN_HITL_TIMEOUT_SECONDS"])
            if env.get("TASKWARDEN_HITL_TIMEOUT_SECONDS")
            else None,
            commands_enabled=env.get("TASKWARDEN_COMMANDS_ENABLED", "0") in ("1", "true", "yes"),
            webhook_allowed_networks=tuple(
                n.strip()
                for n in env.get("TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS", "").split(",")
                if n.strip()
            ),
            ws_allowed_origins=tuple(
                o.strip().rstrip("/")
                for o in env.get("TASKWARDEN_WS_ALLOWED_ORIGINS", "").split(",")
                if o.strip()
            ),
            ws_auth_seconds=float(env.get("TASKWARDEN_WS_AUTH_SECONDS", "10")),
            ws_queue_size=int(env.get("TASKWARDEN_WS_QUEUE_SIZE", "1000")),
            ws_send_grace=float(env.get("TASKWARDEN_WS_SEND_GRACE", "1")),
            ws_max_replay=int(env.get("TASKWARDEN_WS_MAX_REPLAY", "10000")),
            ws_reauth_seconds=float(env.get("TASKWARDEN_WS_REAUTH_SECONDS", "60")),
            ws_max_sockets_per_principal=int(
                env.get("TASKWARDEN_WS_MAX_SOCKETS_PER_PRINCIPAL", "50")
            ),
            ws_compression=env.get("TASKWARDEN_WS_COMPRESSION", "0") in ("1", "true", "yes"),
            nats_url=env.get("TASKWARDEN_NATS_URL") or None,
            nats_stream=env.get("TASKWARDEN_NATS_STREAM", "TASKWARDEN"),
            nats_max_age=float(env.get("TASKWARDEN_NATS_MAX_AGE_SECONDS", str(7 * 24 * 3600))),
            nats_max_bytes=int(env.get("TASKWARDEN_NATS_MAX_BYTES", str(1 << 30))),
            run_relay=env["TASKWARDEN_RUN_RELAY"] in ("1", "true", "yes")
            if env.get("TASKWARDEN_RUN_RELAY")
            else None,
            run_webhooks=env["TASKWARDEN_RUN_WEBHOOKS"] in ("1", "true", "yes")
            if env.get("TASKWARDEN_RUN_WEBHOOKS")
            else None,
            consumer_max_attempts=int(env.get("TASKWARDEN_CONSUMER_MAX_ATTEMPTS", "5")),
            consumer_backoff_seconds=float(env.get("TASKWARDEN_CONSUMER_BACKOFF_SECONDS", "0.1")),
            consumer_max_backoff_seconds=float(
                env.get("TASKWARDEN_CONSUMER_MAX_BACKOFF_SECONDS", "5")
            ),
            ready_stuck_seconds=float(env.get("TASKWARDEN_READY_STUCK_SECONDS", "30")),
            ready_max_lag=int(env.get("TASKWARDEN_READY_MAX_LAG", "100000")),
        )


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None
