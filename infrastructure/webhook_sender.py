"""The HTTP side of webhooks: a POST through the SSRF guard, and an in-memory sender for tests.

``HttpSender`` reads the URL with the parser the API checked it with
(``domain.url_syntax.parse_url``), resolves its host, judges every address it resolves to
(``domain.webhook_url.refusal``: the special-purpose ranges of ``domain/special_addresses.py``
are refused unless ``TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS`` lists them), and connects to the
first of them: the connection goes to that address, the ``Host`` header and the TLS server
name (SNI, and so the certificate check) name the host. A DNS answer that changes between the
check and the connection (rebinding) therefore changes nothing. Redirects are never followed
(a 3xx is a failure), proxies from the environment are ignored, and the whole attempt,
resolution included, has 15 s. A URL it cannot use (stored before the rules were what they
are, or written past them) is a failed attempt like any other, never an exception: one bad
webhook stalls nothing.

Connections are kept alive between deliveries (``infrastructure/http1.py``), per event loop and
pinned target (scheme, checked address, port, TLS server name), so a connection is only ever
reused for the address that was checked and the name its certificate was verified for. An answer
is read up to ``BODY_LIMIT`` bytes, never inflated; a longer one drops the connection.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address

import h11
import httpx

from application.webhooks.attempts import WebhookResponse
from domain.url_syntax import WebhookUrlError, parse_url
from domain.webhook_url import Address, Network, allowed_by, refusal
from infrastructure.http1 import Opener, Pool, Target, TooLongError, open_tcp

TIMEOUT = 15.0
ERROR_LENGTH = 500
BODY_LIMIT = 64 * 1024  # bytes of an answer read; beyond, the connection is dropped
Resolver = Callable[[str, int], Awaitable[list[Address]]]


class AddressRefusedError(Exception):
    """The host is, or resolves to, an address webhooks may not reach."""


@dataclass(frozen=True)
class Pinned:
    target: Target  # the checked address, the port, the TLS server name (SNI, certificate)
    host: str  # the Host header: the URL's own host (and port)
    path: str  # the request target: path and query


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to, in the resolver's order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = [ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    return list(dict.fromkeys(found))


class HttpSender:
    """The ``WebhookSender`` port over ``infrastructure.http1`` (h11, kept-alive connections)."""

    def __init__(
        self,
        allowed: Sequence[Network] = (),
        *,
        timeout: float = TIMEOUT,
        resolver: Resolver = resolve,
        opener: Opener = open_tcp,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.allowed = tuple(allowed)
        self.timeout = timeout
        self.resolver = resolver
        self.opener = opener  # tests: connect somewhere else, and see where it was asked to
        # one TLS context for every request (loading the CA bundle per request costs ~10 ms)
        self.verify = _tls_context(verify)
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Pool] = (
            weakref.WeakKeyDictionary()
        )

    async def aclose(self) -> None:
        """Closes the kept-alive connections of the running event loop."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
            await pool.aclose()

    def _pool(self) -> Pool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = Pool(self.opener)
        return pool

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> WebhookResponse:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                pinned = await self.pin(url)
                return await self._post(pinned, headers, body, started)
        except WebhookUrlError as error:
            return _failed(started, f"invalid url: {error.message}")
        except AddressRefusedError as error:
            return _failed(started, f"refused: {error}")
        except TimeoutError:
            return _failed(started, f"timed out after {self.timeout:g} s")
        except socket.gaierror as error:
            return _failed(started, f"could not resolve the host: {error.strerror or error}")
        except (OSError, ssl.SSLError, h11.ProtocolError, UnicodeError) as error:
            return _failed(started, f"{type(error).__name__}: {error}")

    async def pin(self, url: str) -> Pinned:
        """The address to connect to, checked; raises WebhookUrlError or AddressRefusedError."""
        parsed = parse_url(url)
        host, port = parsed.host, parsed.port
        literal = parsed.address
        addresses = [literal] if literal is not None else await self.resolver(host, port)
        if not addresses:
            raise AddressRefusedError(f"{host} resolves to no address")
        for address in addresses:  # one refused address refuses the host (no mixed answers)
            reason = refusal(address, self.allowed)
            if reason is not None:
                raise AddressRefusedError(
                    f"{host} is {address}, in a range webhooks may not reach: {reason}"
                )
        chosen = addresses[0]
        if parsed.scheme == "http" and not allowed_by(chosen, self.allowed):
            raise AddressRefusedError("http:// reaches only TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS")
        return Pinned(
            target=Target(parsed.scheme, str(chosen), port, host),
            host=parsed.authority,
            path=parsed.target,
        )

    async def _post(
        self, pinned: Pinned, headers: dict[str, str], body: bytes, started: float
    ) -> WebhookResponse:
        target = pinned.target
        tls = self.verify if target.scheme == "https" else None
        fields = [("Host", pinned.host), *headers.items(), ("Content-Length", str(len(body)))]
        try:
            answer = await self._pool().post(target, tls, pinned.path, fields, body, BODY_LIMIT)
        except TooLongError as long:  # the status stands; the connection was dropped
            answer = long.answer
        status = answer.status
        error = None
        if 300 <= status < 400:
            location = answer.headers.get("location", "")
            error = f"redirect not followed (Location: {location})"[:ERROR_LENGTH]
        elif not 200 <= status < 300:
            error = f"HTTP {status}"
        return WebhookResponse(
            status=status,
            duration=time.monotonic() - started,
            error=error,
            retry_after=retry_after(answer.headers.get("retry-after")),
        )


def _tls_context(verify: ssl.SSLContext | bool) -> ssl.SSLContext:
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify:
        return httpx.create_ssl_context(verify=True)  # the CA bundle httpx trusts (certifi)
    unchecked = ssl.create_default_context()
    unchecked.check_hostname = False
    unchecked.verify_mode = ssl.CERT_NONE
    return unchecked


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from ``Retry-After``: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def _failed(started: float, error: str) -> WebhookResponse:
    return WebhookResponse(
        status=None, duration=time.monotonic() - started, error=error[:ERROR_LENGTH]
    )


class MemorySender:
    """The port in memory: records each request and answers from a script (the embedded mode
    without network, unit tests). An answer is a status code or a ``WebhookResponse``; when the
    script runs out, every request succeeds with 200."""

    def __init__(self, *answers: int | WebhookResponse) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, dict[str, str], bytes]] = []

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> WebhookResponse:
        self.sent.append((url, dict(headers), body))
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, WebhookResponse):
            return answer
        error = None if 200 <= answer < 300 else f"HTTP {answer}"
        return WebhookResponse(status=answer, duration=0.001, error=error)

    async def aclose(self) -> None:
        """Nothing is kept open."""
