"""Where a webhook may point: the URL rules and the address rules of the SSRF guard.

An address is refused when it reaches inside: loopback, private (RFC 1918), link-local (with the
cloud metadata address 169.254.169.254), carrier-grade NAT (100.64.0.0/10), unique-local
(fc00::/7), multicast, unspecified, reserved, or anything else not globally routable; an IPv6
address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64) is judged by that one too. The
operator's ``TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS`` lets chosen networks through (a receiver on the
operator's own network, tests).

These rules run twice: on the URL when a webhook is created or changed (a literal address is
judged at once), and on every address a host name resolves to when a delivery is sent (DNS can
change), where the sender then connects to the very address it judged
(``infrastructure/webhook_sender.py``).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import SplitResult, urlsplit

from domain.errors import RuleViolationError

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

METADATA = frozenset({ip_address("169.254.169.254"), ip_address("fd00:ec2::254")})
CARRIER_GRADE_NAT = ip_network("100.64.0.0/10")
UNIQUE_LOCAL = ip_network("fc00::/7")
NAT64 = ip_network("64:ff9b::/96")
_LEGACY_IPV4 = re.compile(r"^[0-9a-fx.]+$", re.IGNORECASE)  # 0x7f.1, 2130706433, 127.1

# (what the address is, the test), the first that holds names the refusal
_REFUSED: tuple[tuple[str, Callable[[Address], bool]], ...] = (
    ("cloud metadata", lambda a: a in METADATA),
    ("loopback", lambda a: a.is_loopback),
    ("unspecified", lambda a: a.is_unspecified),
    ("link-local", lambda a: a.is_link_local),
    ("carrier-grade NAT", lambda a: a.version == 4 and a in CARRIER_GRADE_NAT),
    ("unique-local", lambda a: a.version == 6 and a in UNIQUE_LOCAL),
    ("multicast", lambda a: a.is_multicast),
    ("reserved", lambda a: a.is_reserved),
    ("private", lambda a: a.is_private),
    ("not globally routable", lambda a: not a.is_global),
)


class WebhookUrlError(RuleViolationError):
    """A webhook URL the rules refuse (422 VALIDATION_ERROR on ``url``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="url")


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """``TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS``: CIDRs (or single addresses); raises ValueError."""
    return tuple(ip_network(v.strip(), strict=False) for v in values if v.strip())


def allowed_by(address: Address, allowed: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in allowed)


def refusal(address: Address, allowed: Sequence[Network] = ()) -> str | None:
    """Why a webhook may not connect to ``address`` (``"loopback"``, ...), or None if it may."""
    if allowed_by(address, allowed):
        return None
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return refusal(address.ipv4_mapped, allowed)
        for inner in _embedded(address):
            reason = refusal(inner, allowed)
            if reason is not None:
                return f"{reason} (inside {address})"
    return next((label for label, test in _REFUSED if test(address)), None)


def _embedded(address: IPv6Address) -> list[IPv4Address]:
    inner = [address.sixtofour] if address.sixtofour is not None else []
    if address.teredo is not None:
        inner.append(address.teredo[1])
    if address in NAT64:
        inner.append(IPv4Address(int(address) & 0xFFFFFFFF))
    return inner


def literal_address(host: str) -> Address | None:
    """The address a host names by itself (``[::1]``, ``127.1``, ``localhost``), or None for a
    name that DNS must resolve."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return IPv4Address("127.0.0.1")
    try:
        return ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):  # forms inet_aton (and so getaddrinfo) reads as IPv4
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def check_url(url: str, allowed: Sequence[Network] = ()) -> str:
    """The URL if a webhook may point at it; raises WebhookUrlError with the reason."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise WebhookUrlError("url must not contain spaces or control characters")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise WebhookUrlError("url must be an https:// URL")
    if "@" in parts.netloc:
        raise WebhookUrlError("url must not carry credentials (user:password@)")
    if parts.fragment:
        raise WebhookUrlError("url must not have a #fragment")
    host = _host(parts)
    literal = literal_address(host)
    if literal is not None:
        reason = refusal(literal, allowed)
        if reason is not None:
            raise WebhookUrlError(
                f"url points at a {reason} address; "
                "only TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS may allow it"
            )
    if scheme == "http" and (literal is None or not allowed_by(literal, allowed)):
        raise WebhookUrlError(
            "url must be https://; http:// only reaches an address inside "
            "TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS"
        )
    return url


def _host(parts: SplitResult) -> str:
    try:
        port = parts.port
    except ValueError:
        raise WebhookUrlError("url has an invalid port") from None
    if port == 0:
        raise WebhookUrlError("url has an invalid port")
    host = parts.hostname
    if not host:
        raise WebhookUrlError("url must name a host")
    return host
