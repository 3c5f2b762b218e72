"""The webhook URL's syntax: one parser for the API's check and the sender, so whatever the API
accepts the sender can use, and what it cannot use is refused at the edge with a reason."""

from __future__ import annotations

import asyncio
from ipaddress import ip_address

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.webhooks.attempts import WebhookResponse
from domain.url_syntax import ParsedUrl, WebhookUrlError, parse_url
from domain.webhook_url import check_url
from infrastructure.webhook_sender import HttpSender

# issue 10: accepted by the old check, unusable by the sender (D3), or a crash of the check (D4)
UNUSABLE = {
    "https://a..b/": "empty label",
    "https://.hooks.example.com/": "empty label",
    "https://☃.com/": "ASCII",
    "https://bücher.example/": "ASCII",
    f"https://{'a' * 64}.example.com/": "longer than 63",
    f"https://{'a.' * 126}com/": "longer than 253",
    "https://[v1.x]/": "IPvFuture",
    "https://[V7.abc]/": "IPvFuture",
    "https://１２７.0.0.1/": "ASCII",
    "https://[::1": "no closing ]",
    "https://a]/": "outside an IPv6 address",
    "https://[::1]x/": "after its IPv6 address",
    "https://[fe80::1%25eth0]/": "zone",
    "https://[1.2.3.4]/": "invalid IPv6 address",
    "https://[::12345]/": "invalid IPv6 address",
    "https://::1/": "brackets",
    "https://hooks_1.example.com/": "letters, digits and hyphens",
    "https://-hooks.example.com/": "hyphen",
    "https://hooks-.example.com/": "hyphen",
    "https://hooks.example.com:0/": "port",
    "https://hooks.example.com:65536/": "port",
    "https://hooks.example.com:/": "port",
    "https://hooks.example.com:１２/": "port",
    "https://hooks.example.com:-1/": "port",
    "https://1.2.3.4.5/": "not an IPv4 address",
    "https://hooks.999/": "not an IPv4 address",
    "https://hooks.example.com\\@evil.example/": "credentials",
    "https://hooks.example.com\\x/": "backslash",
    "https:hooks.example.com/": "https://",
}


@pytest.mark.parametrize("url", list(UNUSABLE))
def test_a_url_the_sender_could_not_use_is_refused_with_the_rule_it_breaks(url):
    with pytest.raises(WebhookUrlError) as refused:
        check_url(url)
    assert UNUSABLE[url] in refused.value.message
    assert refused.value.details == {"field": "url"}


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        (
            "https://Hooks.Example.COM./in?x=1",
            ParsedUrl("https", "hooks.example.com", None, 443, "/in?x=1"),
        ),
        ("https://hooks.example.com", ParsedUrl("https", "hooks.example.com", None, 443, "/")),
        ("HTTPS://h.example?q", ParsedUrl("https", "h.example", None, 443, "/?q")),
        (
            "https://xn--n3h.example:8443/caf%C3%A9/é",
            ParsedUrl("https", "xn--n3h.example", None, 8443, "/caf%C3%A9/%C3%A9"),
        ),
        (
            "https://[2606:4700:4700:0::1111]:443/x",
            ParsedUrl(
                "https", "2606:4700:4700::1111", ip_address("2606:4700:4700::1111"), 443, "/x"
            ),
        ),
        ("http://127.1:9/x", ParsedUrl("http", "127.0.0.1", ip_address("127.0.0.1"), 9, "/x")),
        ("http://localhost/", ParsedUrl("http", "localhost", ip_address("127.0.0.1"), 80, "/")),
        (
            f"https://{'a' * 63}.example/",
            ParsedUrl("https", f"{'a' * 63}.example", None, 443, "/"),
        ),
    ],
)
def test_a_usable_url_is_read_into_what_the_sender_needs(url, parsed):
    assert parse_url(url) == parsed


def test_the_host_header_carries_the_port_only_when_it_is_not_the_schemes():
    assert parse_url("https://h.example:443/").authority == "h.example"
    assert parse_url("https://h.example:8443/").authority == "h.example:8443"
    assert parse_url("http://[::1]:80/").authority == "[::1]"
    assert parse_url("http://[::1]:9000/").authority == "[::1]:9000"


# any text: the parser refuses it with a reason or returns what the sender can use
PIECES = "https:// http:// [ ] : ::1 @ . .. a - _ % v1.x / ? # \\ 0x7f 127 １ ☃ xn-- 443 é".split()
URLISH = st.one_of(
    st.text(max_size=60),
    st.builds("".join, st.lists(st.sampled_from([*PIECES, " ", "\t", "a" * 64]), max_size=12)),
)


@given(URLISH)
def test_whatever_the_parser_accepts_the_sender_can_use(url):
    try:
        parsed = parse_url(url)
    except WebhookUrlError as refused:
        assert refused.details == {"field": "url"}
        return
    assert 1 <= parsed.port <= 65535
    if parsed.address is None:
        parsed.host.encode("idna")  # what getaddrinfo and the TLS server name do with it
        assert len(parsed.host) <= 253
    h11.Request(method="POST", target=parsed.target, headers=[("Host", parsed.authority)])


def test_the_sender_records_a_url_it_cannot_use_as_a_failed_attempt():
    """A webhook stored before these rules (or written past them) fails its attempt with the
    reason; nothing raises, nothing is resolved or connected."""
    resolved: list[str] = []

    async def resolver(host: str, port: int) -> list:  # type: ignore[type-arg]
        resolved.append(host)
        return [ip_address("93.184.215.14")]

    async def opener(*args: object) -> object:
        raise AssertionError("no connection for a URL the sender cannot use")

    sender = HttpSender(resolver=resolver, opener=opener)  # type: ignore[arg-type]

    async def each() -> list[WebhookResponse]:
        return [await sender.send(url, {}, b"{}") for url in UNUSABLE]

    for url, response in zip(UNUSABLE, asyncio.run(each()), strict=True):
        assert response.status is None, url
        assert (response.error or "").startswith("invalid url: "), url
    assert resolved == []
