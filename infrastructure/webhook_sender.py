"""The HTTP side of webhooks: a POST through the SSRF guard, and an in-memory sender for tests.

``HttpSender`` resolves the URL's host, judges every address it resolves to
(``domain.webhook_url.refusal``: loopback, private, link-local, metadata, carrier-grade NAT,
unique-local, multicast, unspecified and reserved are refused unless
``TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS`` lists them), and connects to the first of them: the
request's URL names that address, the ``Host`` header and the TLS server name (SNI, and so the
certificate check) name the host. A DNS answer that changes between the check and the connection
(rebinding) therefore changes nothing. Redirects are never followed (a 3xx is a failure),
proxies from the environment are ignored, and the whole attempt, resolution included, has 15 s.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import ip_address

import httpx

from application.webhook_attempts import WebhookResponse
from domain.webhook_url import Address, Network, allowed_by, literal_address, refusal

TIMEOUT = 15.0
ERROR_LENGTH = 500
Resolver = Callable[[str, int], Awaitable[list[Address]]]


class AddressRefusedError(Exception):
    """The host is, or resolves to, an address webhooks may not reach."""


@dataclass(frozen=True)
class Pinned:
    url: httpx.URL  # the checked address in place of the host
    host: str  # the Host header: the URL's own host (and port)
    server_name: str  # TLS SNI and certificate name
    address: str


async def resolve(host: str, port: int) -> list[Address]:
    """Every address ``host`` resolves to, in the resolver's order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = [ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    return list(dict.fromkeys(found))


class HttpSender:
    """The ``WebhookSender`` port over httpx."""

    def __init__(
        self,
        allowed: Sequence[Network] = (),
        *,
        timeout: float = TIMEOUT,
        resolver: Resolver = resolve,
        transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.allowed = tuple(allowed)
        self.timeout = timeout
        self.resolver = resolver
        self.transport = transport  # tests: an httpx.MockTransport instead of the network
        # one TLS context for every request (loading the CA bundle per request costs ~10 ms)
        self.verify = httpx.create_ssl_context(verify=True) if verify is True else verify

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> WebhookResponse:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout):
                pinned = await self.pin(url)
                return await self._post(pinned, headers, body, started)
        except AddressRefusedError as error:
            return _failed(started, f"refused: {error}")
        except TimeoutError:
            return _failed(started, f"timed out after {self.timeout:g} s")
        except socket.gaierror as error:
            return _failed(started, f"could not resolve the host: {error.strerror or error}")
        except (httpx.HTTPError, OSError, ssl.SSLError) as error:
            return _failed(started, f"{type(error).__name__}: {error}")

    async def pin(self, url: str) -> Pinned:
        """The address to connect to, checked; raises AddressRefusedError."""
        parsed = httpx.URL(url)
        if parsed.scheme not in ("https", "http") or not parsed.raw_host:
            raise AddressRefusedError(f"not an http(s) URL: {url}")
        host = parsed.raw_host.decode("ascii")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = literal_address(host)
        addresses = [literal] if literal is not None else await self.resolver(host, port)
        if not addresses:
            raise AddressRefusedError(f"{host} resolves to no address")
        for address in addresses:  # one refused address refuses the host (no mixed answers)
            reason = refusal(address, self.allowed)
            if reason is not None:
                raise AddressRefusedError(f"{host} is {address}, a {reason} address")
        chosen = addresses[0]
        if parsed.scheme == "http" and not allowed_by(chosen, self.allowed):
            raise AddressRefusedError("http:// reaches only TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS")
        return Pinned(
            url=parsed.copy_with(host=str(chosen)),
            host=parsed.netloc.decode("ascii"),
            server_name=host.strip("[]"),
            address=str(chosen),
        )

    async def _post(
        self, pinned: Pinned, headers: dict[str, str], body: bytes, started: float
    ) -> WebhookResponse:
        client = httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=self.timeout,
            verify=self.verify,
            transport=self.transport() if self.transport else None,
        )
        async with client:
            request = client.build_request(
                "POST",
                pinned.url,
                headers={**headers, "Host": pinned.host},
                content=body,
                extensions={"sni_hostname": pinned.server_name},
            )
            response = await client.send(request, stream=True)
            await response.aclose()  # the body is not needed, nor waited for
        status = response.status_code
        error = None
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            error = f"redirect not followed (Location: {location})"[:ERROR_LENGTH]
        elif not 200 <= status < 300:
            error = f"HTTP {status}"
        return WebhookResponse(
            status=status,
            duration=time.monotonic() - started,
            error=error,
            retry_after=retry_after(response.headers.get("retry-after")),
        )


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
