"""The syntax of a webhook URL: one parser, used by the check when a webhook is created or
changed (``domain/webhook_url.check_url``) and by the sender before every attempt
(``infrastructure/webhook_sender.py``), so that whatever the API accepts, the sender can use.

Why our own: ``urllib.parse.urlsplit`` accepted what the sender could not use (``https://a..b/``,
a 64-character label, ``https://[v1.x]/``, ``https://☃.com/``) and raised ValueError on other
input (``https://[::1``); the sender's parser (httpx's, then ``getaddrinfo``'s IDNA codec)
refused some of them, so a webhook could be accepted and never delivered. The rules:

- ``https://`` (or ``http://``, which ``check_url`` allows only towards the operator's allowed
  networks), then a host, an optional port, a path and query; no user info (``user@``), no
  ``#fragment``, no spaces, control characters or backslashes before the path.
- A host name is ASCII letters, digits, hyphens and dots: labels of 1 to 63 characters, none
  empty, none starting or ending with a hyphen, 253 characters in all (one trailing dot allowed,
  and dropped). Non-ASCII is refused rather than converted: Python's IDNA codec implements IDNA
  2003, which maps some names to another domain than IDNA 2008 does (``faß.de`` becomes
  ``fass.de``), and NFKC turns fullwidth digits into an address (``１２７.0.0.1``). An
  internationalized name is written in its ``xn--`` form.
- A host whose last label is a number is an IPv4 address, read as ``getaddrinfo`` reads one
  (``127.1`` and ``2130706433`` are 127.0.0.1), or refused; ``localhost`` and ``*.localhost``
  are 127.0.0.1 without asking DNS.
- An IPv6 address is in brackets and is read by ``ipaddress``; no zone (``%eth0``), no IPvFuture
  (``[v1.x]``).
- A port is 1 to 65535, in ASCII digits.
- The path and query are sent as written, with non-ASCII characters percent-encoded (UTF-8).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from urllib.parse import quote

from domain.errors import RuleViolationError

Address = IPv4Address | IPv6Address

DEFAULT_PORTS = {"https": 443, "http": 80}
_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_NUMBER = re.compile(r"(0x[0-9a-f]*|[0-9]+)")  # a label getaddrinfo reads as a number
_LEGACY_IPV4 = re.compile(r"[0-9a-fx.]+")  # 0x7f.1, 2130706433, 127.1
_PORT = re.compile(r"[0-9]{1,5}")
_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))  # what a request target may hold


class WebhookUrlError(RuleViolationError):
    """A webhook URL the rules refuse (422 VALIDATION_ERROR on ``url``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="url")


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str  # https or http
    host: str  # a lower-case name without trailing dot, or an address as ipaddress writes it
    address: Address | None  # the address the host names by itself (None: ask DNS)
    port: int
    target: str  # path and query as sent: ASCII, at least "/"

    @property
    def authority(self) -> str:
        """The ``Host`` header: the host, and the port unless it is the scheme's."""
        host = f"[{self.host}]" if isinstance(self.address, IPv6Address) else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def parse_url(url: str) -> ParsedUrl:
    """The parts of a webhook URL; raises WebhookUrlError saying which rule it breaks."""
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise WebhookUrlError("url must not contain spaces or control characters")
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in DEFAULT_PORTS:
        raise WebhookUrlError("url must be an https:// URL")
    if "#" in rest:
        raise WebhookUrlError("url must not have a #fragment")
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, target = rest[:end], rest[end:]
    if "@" in authority:
        raise WebhookUrlError("url must not carry credentials (user:password@)")
    if "\\" in authority:
        raise WebhookUrlError("url must not have a backslash in its host")
    host, port = _host_and_port(authority)
    if not host:
        raise WebhookUrlError("url must name a host")
    if host.startswith("["):
        address: Address | None = _ipv6(host[1:-1])
        host = str(address)
    else:
        host, address = _name(host)
    return ParsedUrl(
        scheme=scheme,
        host=host,
        address=address,
        port=DEFAULT_PORTS[scheme] if port is None else port,
        target=quote(target if target.startswith("/") else f"/{target}", safe=_PRINTABLE),
    )


def _host_and_port(authority: str) -> tuple[str, int | None]:
    if authority.startswith("["):
        close = authority.find("]")
        if close < 0:
            raise WebhookUrlError("url has an IPv6 address with no closing ]")
        host, after = authority[: close + 1], authority[close + 1 :]
        if after and not after.startswith(":"):
            raise WebhookUrlError("url has characters after its IPv6 address's ]")
        return host, _port(after[1:]) if after else None
    if "[" in authority or "]" in authority:
        raise WebhookUrlError("url has [ or ] outside an IPv6 address")
    host, colon, port = authority.partition(":")
    if ":" in port:
        raise WebhookUrlError("url must put an IPv6 address in brackets: https://[2001:db8::1]/")
    return host, _port(port) if colon else None


def _port(text: str) -> int:
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise WebhookUrlError("url has an invalid port: it must be a number from 1 to 65535")
    return int(text)


def _ipv6(text: str) -> IPv6Address:
    if text[:1] in ("v", "V"):
        raise WebhookUrlError("url has an IPvFuture address ([v1.x]), which is not supported")
    if "%" in text:
        raise WebhookUrlError("url must not name an IPv6 zone (%)")
    try:
        if text.isascii():
            return IPv6Address(text)
    except ValueError:
        pass
    raise WebhookUrlError(f"url has an invalid IPv6 address: [{text}]")


def _name(host: str) -> tuple[str, Address | None]:
    """A host name checked as DNS would take it, or a dotted number read as IPv4."""
    if not host.isascii():
        raise WebhookUrlError(
            "url host must be ASCII: write an internationalized name in its xn-- (IDNA) form"
        )
    name = host.lower()
    name = name[:-1] if name.endswith(".") else name
    labels = name.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        address = _ipv4(name)
        return str(address), address
    if len(name) > 253:
        raise WebhookUrlError("url host is longer than 253 characters")
    for label in labels:
        if not label:
            raise WebhookUrlError("url host has an empty label (two dots, or a leading dot)")
        if len(label) > 63:
            raise WebhookUrlError("url host has a label longer than 63 characters")
        if not _LABEL.fullmatch(label):
            raise WebhookUrlError(
                "url host may hold only letters, digits and hyphens between its dots, "
                "and no label may start or end with a hyphen"
            )
    return name, literal_address(name)


def _ipv4(name: str) -> IPv4Address:
    address = literal_address(name)
    if not isinstance(address, IPv4Address):
        raise WebhookUrlError(f"url host {name} ends in a number but is not an IPv4 address")
    return address


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
    if _LEGACY_IPV4.fullmatch(host):  # forms inet_aton (and so getaddrinfo) reads as IPv4
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None
