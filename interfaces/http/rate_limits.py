"""Rate limits over HTTP: who pays for a request, the ``X-RateLimit-*`` headers, the 429.

Every request is charged once to one budget: to its principal (``actor_id``, ``rate_limit_user``)
once the dispatcher has authenticated it, else to its client IP (``rate_limit_anonymous``). A
public endpoint is charged to the IP before its handler runs; a request that no endpoint charged
(failed authentication, unknown path, /openapi.json) is charged to the IP when its response
starts, and answered 429 instead when that budget is spent. ``POST /api/auth/login`` is also
charged, before it runs, to the username and to the IP (``rate_limit_login`` each), so guessing
stops whether the attacker rotates usernames or addresses. The probes (/health, /ready, /metrics)
are exempt and carry no headers: a load balancer polls them from one address.

The client IP is the peer address of the connection. ``X-Forwarded-For`` is believed only from a
peer in ``trusted_proxies``; then the rightmost address that is not a trusted proxy is the client.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application import limits
from application.limits import BadInputError
from application.ports import Allowance, RateLimiter
from infrastructure.settings import Settings
from interfaces.http.errors import RateLimitedError, handle
from interfaces.http.role import api_role

LOGIN = ("POST", "/api/auth/login")
EXEMPT = frozenset({"/health", "/ready", "/metrics"})
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Policy:
    anonymous: int
    user: int
    login: int
    window: int
    trusted: tuple[Network, ...] = ()
    max_body_bytes: int = 1_048_576

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            anonymous=settings.rate_limit_anonymous,
            user=settings.rate_limit_user,
            login=settings.rate_limit_login,
            window=settings.rate_limit_window,
            trusted=tuple(ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies),
            max_body_bytes=settings.max_body_bytes,
        )


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_ip(scope: Scope, trusted: tuple[Network, ...]) -> str:
    peer = str((scope.get("client") or ("unknown", 0))[0])
    if not _trusted(peer, trusted):
        return peer
    values = [v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"]
    hops = [hop.strip() for hop in ",".join(values).split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


def _tighter(a: Allowance, b: Allowance | None) -> bool:
    return b is None or (a.allowed, a.remaining) < (b.allowed, b.remaining)


class Meter:
    """One request's charges; the headers show the tightest budget it was charged to."""

    def __init__(self, limiter: RateLimiter, policy: Policy, ip: str) -> None:
        self.limiter = limiter
        self.policy = policy
        self.ip = ip
        self.charged = False
        self.shown: Allowance | None = None

    async def _count(self, key: str, limit: int) -> Allowance:
        allowance = await self.limiter.hit(key, limit, self.policy.window)
        if _tighter(allowance, self.shown):
            self.shown = allowance
        return allowance

    async def charge(self, actor_id: str | None) -> None:
        """The request's one budget: its principal's, else its IP's. Raises when spent."""
        self.charged = True
        if actor_id is None:
            allowance = await self._count(f"ip:{self.ip}", self.policy.anonymous)
        else:
            allowance = await self._count(f"actor:{actor_id}", self.policy.user)
        if not allowance.allowed:
            raise RateLimitedError(allowance)

    async def charge_login(self, username: str | None) -> None:
        """Login attempts from this IP, and for this username (from anywhere)."""
        spent = [await self._count(f"login-ip:{self.ip}", self.policy.login)]
        if username:
            name = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
            spent.append(await self._count(f"login-user:{name}", self.policy.login))
        for allowance in spent:
            if not allowance.allowed:
                raise RateLimitedError(allowance)

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.shown is None:
            return []
        values = {
            b"x-ratelimit-limit": self.shown.limit,
            b"x-ratelimit-remaining": self.shown.remaining,
            b"x-ratelimit-reset": math.ceil(self.shown.reset_at),
            b"x-ratelimit-window": self.shown.window,
        }
        return [(name, str(value).encode()) for name, value in values.items()]


async def charge(request: Request, actor_id: str | None) -> None:
    """For the dispatcher: charges the request to ``actor_id`` (None: its IP), or raises 429."""
    meter = request.scope.get("state", {}).get("rate_meter")
    if meter is not None:
        await meter.charge(actor_id)


class _LoginName(msgspec.Struct):
    username: str | None = None


async def _buffer(receive: Receive, cap: int) -> tuple[list[Message], bytes]:
    """Reads the body up to ``cap`` bytes; the messages read are replayed to the route."""
    messages: list[Message] = []
    size = 0
    body = b""
    while size <= cap:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        body += chunk
        if not message.get("more_body", False):
            break
    return messages, body


def _username(body: bytes) -> str | None:
    try:
        return limits.decode(body, _LoginName).username
    except (BadInputError, msgspec.ValidationError):  # the route answers the body
        return None


def _replaying(messages: Iterable[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


class RateLimits:
    """Pure ASGI middleware: puts a Meter on the request and the headers on the response."""

    def __init__(self, app: ASGIApp, policy: Policy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = api_role(scope["app"]).services.rate_limiter if scope["type"] == "http" else None
        if limiter is None or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        meter = Meter(limiter, self.policy, client_ip(scope, self.policy.trusted))
        scope.setdefault("state", {})["rate_meter"] = meter

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *meter.headers()]
            await send(message)

        try:
            if (scope["method"], scope["path"]) == LOGIN:
                messages, body = await _buffer(receive, self.policy.max_body_bytes)
                receive = _replaying(messages, receive)
                await meter.charge_login(_username(body))
        except RateLimitedError as error:
            response = await handle(Request(scope), error)
            await response(scope, receive, send_with_headers)
            return
        send_charged = self._charging_late(scope, receive, meter, send_with_headers)
        await self.app(scope, receive, send_charged)

    def _charging_late(self, scope: Scope, receive: Receive, meter: Meter, send: Send) -> Send:
        """Charges a response no endpoint charged to the IP; replaces it when that is spent."""
        refused = False

        async def send_charged(message: Message) -> None:
            nonlocal refused
            if refused:
                return
            if message["type"] == "http.response.start" and not meter.charged:
                try:
                    await meter.charge(None)
                except RateLimitedError as error:
                    refused = True
                    response = await handle(Request(scope), error)
                    await response(scope, receive, send)
                    return
            await send(message)

        return send_charged
