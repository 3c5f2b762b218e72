"""The special-purpose address ranges a webhook may not reach, as an explicit table.

Why a table and not ``ipaddress``'s ``is_global`` / ``is_private``: those flags follow the
registries as the running Python's release copied them, so the guard changed with the
interpreter; Python 3.11 calls 192.0.0.8 (the IPv4 dummy address), 192.88.99.1 (the deprecated
6to4 relay anycast) and 3fff::1 (documentation) global, and a connection to 192.0.0.8 was
attempted. Here every range is written out with the document that reserves it.

The source is IANA's IPv4 and IPv6 Special-Purpose Address Registries
(https://www.iana.org/assignments/iana-ipv4-special-registry,
https://www.iana.org/assignments/iana-ipv6-special-registry, RFC 6890), taken whole, including
the entries the registries mark "globally reachable" (anycast services such as AS112, AMT, PCP,
TURN: no receiver of webhooks lives there). Added to them: IPv4 multicast (224.0.0.0/4,
RFC 5771), IPv6 multicast, the deprecated IPv4-compatible (::/96) and site-local (fec0::/10)
ranges, the cloud metadata addresses, and every IPv6 address outside 2000::/3, the only block
IANA allocates for global unicast (IANA IPv6 Address Space registry).

Three IPv6 ranges carry an IPv4 address and are judged by it, not refused by themselves:
IPv4-mapped (::ffff:0:0/96, the connection goes to the IPv4 address), the NAT64 well-known
prefix (64:ff9b::/96, where DNS64 puts IPv4-only receivers on IPv6-only hosts) and 6to4
(2002::/16). Teredo (2001::/32) carries one too, which names the refusal when it is inside,
but lies in 2001::/23 and is refused either way (``domain/webhook_url.refusal``).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_network
from typing import NamedTuple

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


class Special(NamedTuple):
    network: Network
    name: str  # what the refusal calls it
    source: str  # the document that reserves it
    carries_ipv4: bool = False  # judged by the IPv4 address inside it

    def describe(self) -> str:
        return f"{self.name} ({self.network}, {self.source})"


def _table(*rows: tuple[str, str, str] | tuple[str, str, str, bool]) -> tuple[Special, ...]:
    return tuple(Special(ip_network(row[0]), *row[1:]) for row in rows)


IPV4 = _table(
    ("0.0.0.0/8", "this network", "RFC 791"),
    ("0.0.0.0/32", "unspecified", "RFC 1122"),
    ("10.0.0.0/8", "private-use", "RFC 1918"),
    ("100.64.0.0/10", "carrier-grade NAT shared address space", "RFC 6598"),
    ("127.0.0.0/8", "loopback", "RFC 1122"),
    ("169.254.0.0/16", "link-local", "RFC 3927"),
    ("169.254.169.254/32", "cloud metadata", "cloud providers' instance metadata"),
    ("172.16.0.0/12", "private-use", "RFC 1918"),
    ("192.0.0.0/24", "IETF protocol assignments", "RFC 6890"),
    ("192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335"),
    ("192.0.0.8/32", "IPv4 dummy address", "RFC 7600"),
    ("192.0.0.9/32", "Port Control Protocol anycast", "RFC 7723"),
    ("192.0.0.10/32", "TURN anycast", "RFC 8155"),
    ("192.0.0.170/31", "NAT64/DNS64 discovery", "RFC 8880"),
    ("192.0.2.0/24", "TEST-NET-1 documentation", "RFC 5737"),
    ("192.31.196.0/24", "AS112-v4", "RFC 7535"),
    ("192.52.193.0/24", "AMT", "RFC 7450"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526"),
    ("192.168.0.0/16", "private-use", "RFC 1918"),
    ("192.175.48.0/24", "AS112 direct delegation", "RFC 7534"),
    ("198.18.0.0/15", "benchmarking", "RFC 2544"),
    ("198.51.100.0/24", "TEST-NET-2 documentation", "RFC 5737"),
    ("203.0.113.0/24", "TEST-NET-3 documentation", "RFC 5737"),
    ("224.0.0.0/4", "multicast", "RFC 5771"),
    ("240.0.0.0/4", "reserved", "RFC 1112"),
    ("255.255.255.255/32", "limited broadcast", "RFC 919"),
)

IPV6 = _table(
    # outside 2000::/3: not global unicast (the more specific rows below name what is known)
    ("::/3", "outside global unicast 2000::/3", "IANA IPv6 Address Space"),
    ("4000::/2", "outside global unicast 2000::/3", "IANA IPv6 Address Space"),
    ("8000::/1", "outside global unicast 2000::/3", "IANA IPv6 Address Space"),
    ("::/128", "unspecified", "RFC 4291"),
    ("::1/128", "loopback", "RFC 4291"),
    ("::/96", "deprecated IPv4-compatible", "RFC 4291"),
    ("::ffff:0:0/96", "IPv4-mapped", "RFC 4291", True),
    ("64:ff9b::/96", "NAT64 well-known prefix", "RFC 6052", True),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation", "RFC 8215"),
    ("100::/64", "discard-only", "RFC 6666"),
    ("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780"),
    ("2001::/23", "IETF protocol assignments", "RFC 2928"),
    ("2001::/32", "Teredo", "RFC 4380"),
    ("2001:1::1/128", "Port Control Protocol anycast", "RFC 7723"),
    ("2001:1::2/128", "TURN anycast", "RFC 8155"),
    ("2001:1::3/128", "DNS-SD service registration anycast", "RFC 9665"),
    ("2001:2::/48", "benchmarking", "RFC 5180"),
    ("2001:3::/32", "AMT", "RFC 7450"),
    ("2001:4:112::/48", "AS112-v6", "RFC 7535"),
    ("2001:10::/28", "deprecated ORCHID", "RFC 4843"),
    ("2001:20::/28", "ORCHIDv2", "RFC 7343"),
    ("2001:30::/28", "drone remote ID tags", "RFC 9374"),
    ("2001:db8::/32", "documentation", "RFC 3849"),
    ("2002::/16", "6to4", "RFC 3056", True),
    ("2620:4f:8000::/48", "AS112 direct delegation", "RFC 7534"),
    ("3fff::/20", "documentation", "RFC 9637"),
    ("5f00::/16", "SRv6 SIDs", "RFC 9602"),
    ("fc00::/7", "unique-local", "RFC 4193"),
    ("fd00:ec2::254/128", "cloud metadata", "cloud providers' instance metadata"),
    ("fe80::/10", "link-local", "RFC 4291"),
    ("fec0::/10", "deprecated site-local", "RFC 3879"),
    ("ff00::/8", "multicast", "RFC 4291"),
)


def special(address: Address) -> Special | None:
    """The most specific range that holds ``address``, or None for an ordinary one."""
    table = IPV4 if address.version == 4 else IPV6
    holding = [row for row in table if address in row.network]
    return max(holding, key=lambda row: row.network.prefixlen, default=None)


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries: IPv4-mapped, NAT64's well-known prefix, 6to4, or
    Teredo's client."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


_NAT64 = ip_network("64:ff9b::/96")
