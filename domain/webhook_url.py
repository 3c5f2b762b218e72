"""Where a webhook may point: the URL rules and the address rules of the SSRF guard.

An address is refused when it lies in a special-purpose range (``domain/special_addresses.py``:
IANA's IPv4 and IPv6 Special-Purpose Address Registries, multicast, the cloud metadata
addresses, IPv6 outside 2000::/3): loopback, private-use, link-local, carrier-grade NAT,
unique-local, documentation, benchmarking, the IETF's protocol assignments, and the rest. An IPv6
address that carries an IPv4 one (mapped, NAT64, 6to4, Teredo) is judged by that one first. The
operator's ``TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS`` lets chosen networks through (a receiver on the
operator's own network, tests).

These rules run twice: on the URL when a webhook is created or changed (its syntax, and a literal
address at once), and on every address a host name resolves to when a delivery is sent (DNS can
change), where the sender then connects to the very address it judged
(``infrastructure/webhook_sender.py``). Both read the URL with the same parser
(``domain/url_syntax.parse_url``).
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv6Address, ip_network

from domain.special_addresses import Address, Network, embedded_ipv4, special
from domain.url_syntax import WebhookUrlError, literal_address, parse_url

__all__ = [
    "Address",
    "Network",
    "WebhookUrlError",
    "allowed_by",
    "check_url",
    "literal_address",
    "parse_networks",
    "refusal",
]


def parse_networks(values: Sequence[str]) -> tuple[Network, ...]:
    """``TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS``: CIDRs (or single addresses); raises ValueError."""
    return tuple(ip_network(v.strip(), strict=False) for v in values if v.strip())


def allowed_by(address: Address, allowed: Sequence[Network]) -> bool:
    return any(address.version == n.version and address in n for n in allowed)


def refusal(address: Address, allowed: Sequence[Network] = ()) -> str | None:
    """Why a webhook may not connect to ``address`` (``"loopback (127.0.0.0/8, RFC 1122)"``),
    or None if it may."""
    if allowed_by(address, allowed):
        return None
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = refusal(inner, allowed)
            if address.ipv4_mapped is not None:
                return reason  # the connection goes to the IPv4 address itself
            if reason is not None:
                carrier = special(address)
                named = f" ({carrier.name})" if carrier is not None else ""
                return f"{reason}, carried by {address}{named}"
    found = special(address)
    if found is None or found.carries_ipv4:
        return None
    return found.describe()


def check_url(url: str, allowed: Sequence[Network] = ()) -> str:
    """The URL if a webhook may point at it; raises WebhookUrlError with the reason."""
    parsed = parse_url(url)
    literal = parsed.address
    if literal is not None:
        reason = refusal(literal, allowed)
        if reason is not None:
            raise WebhookUrlError(
                f"url points at {literal}, in a range webhooks may not reach: {reason}; "
                "only TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS may allow it"
            )
    if parsed.scheme == "http" and (literal is None or not allowed_by(literal, allowed)):
        raise WebhookUrlError(
            "url must be https://; http:// only reaches an address inside "
            "TASKWARDEN_WEBHOOK_ALLOWED_NETWORKS"
        )
    return url
