"""The SSRF guard: which addresses and URLs a webhook may reach, and that the sender connects
to the very address it checked (with the host in the Host header and the TLS server name)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from ipaddress import ip_address

import pytest

from domain.special_addresses import IPV4, IPV6, Special, special
from domain.webhook_url import (
    WebhookUrlError,
    check_url,
    literal_address,
    parse_networks,
    refusal,
)
from infrastructure.http1 import Target
from infrastructure.webhook_sender import HttpSender, retry_after
from tests.webhook_receiver import Received, receiving

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private-use",
    "172.16.0.1": "private-use",
    "192.168.1.10": "private-use",
    "169.254.169.254": "cloud metadata",
    "fd00:ec2::254": "cloud metadata",
    "169.254.10.1": "link-local",
    "fe80::1": "link-local",
    "100.64.0.1": "carrier-grade NAT shared address space",
    "100.127.255.254": "carrier-grade NAT shared address space",
    "fc00::1": "unique-local",
    "fd12:3456::1": "unique-local",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",  # refused, not bound
    "0.1.2.3": "this network",
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "limited broadcast",
    "192.0.2.1": "TEST-NET-1 documentation",
    "198.51.100.7": "TEST-NET-2 documentation",
    "203.0.113.9": "TEST-NET-3 documentation",
    "198.19.255.255": "benchmarking",
    "::ffff:127.0.0.1": "loopback",
    "::ffff:169.254.169.254": "cloud metadata",
    # what Python 3.11's is_global let through (issue 10, D8)
    "192.0.0.8": "IPv4 dummy address",
    "192.88.99.1": "deprecated 6to4 relay anycast",
    "3fff::1": "documentation",
    # the registries' "globally reachable" anycast services: no webhook receiver lives there
    "192.0.0.9": "Port Control Protocol anycast",
    "192.31.196.1": "AS112-v4",
    "192.52.193.1": "AMT",
    "192.175.48.6": "AS112 direct delegation",
    "2001:1::1": "Port Control Protocol anycast",
    "2620:4f:8000::1": "AS112 direct delegation",
    "2001:db8::1": "documentation",
    "5f00::1": "SRv6 SIDs",
    "100::1": "discard-only",
    "64:ff9b:1::1": "local-use IPv4/IPv6 translation",
    "2001:20::1": "ORCHIDv2",
    "fec0::1": "deprecated site-local",
    "::8.8.8.8": "deprecated IPv4-compatible",
    "4000::1": "outside global unicast 2000::/3",
    "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": "outside global unicast 2000::/3",
}
REACHABLE = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.215.14",
    "2606:4700:4700::1111",
    "100.128.0.1",
    "::ffff:8.8.8.8",  # IPv4-mapped: judged by the IPv4 address
    "64:ff9b::808:808",  # NAT64 (DNS64 on an IPv6-only host): judged by the IPv4 address
    "2002:808:808::1",  # 6to4: judged by the IPv4 address
]
# the addresses just outside the ranges: ordinary unicast, reachable
JUST_OUTSIDE = [
    "1.0.0.0",
    "9.255.255.255",
    "11.0.0.0",
    "100.63.255.255",
    "100.128.0.0",
    "126.255.255.255",
    "128.0.0.0",
    "169.253.255.255",
    "169.255.0.0",
    "172.15.255.255",
    "172.32.0.0",
    "191.255.255.255",
    "192.0.1.0",
    "192.0.1.255",
    "192.0.3.0",
    "192.31.195.255",
    "192.31.197.0",
    "192.52.192.255",
    "192.52.194.0",
    "192.88.98.255",
    "192.88.100.0",
    "192.167.255.255",
    "192.169.0.0",
    "192.175.47.255",
    "192.175.49.0",
    "198.17.255.255",
    "198.20.0.0",
    "198.51.99.255",
    "198.51.101.0",
    "203.0.112.255",
    "203.0.114.0",
    "223.255.255.255",
    "2000::",
    "2001:200::",
    "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
    "2001:db9::",
    "2003::",
    "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff",
    "2620:4f:8001::",
    "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "3fff:1000::",
]


@pytest.mark.parametrize("address", list(REFUSED))
def test_inside_addresses_are_refused_with_what_they_are(address):
    reason = refusal(ip_address(address))
    assert reason is not None and reason.startswith(f"{REFUSED[address]} (")


@pytest.mark.parametrize("address", REACHABLE + JUST_OUTSIDE)
def test_public_addresses_are_reachable(address):
    assert refusal(ip_address(address)) is None


@pytest.mark.parametrize("row", IPV4 + IPV6, ids=lambda row: str(row.network))
def test_every_special_range_is_refused_from_its_first_to_its_last_address(row: Special):
    for address in (row.network[0], row.network[-1]):
        found = special(address)
        assert found is not None and found.network.subnet_of(row.network)  # type: ignore[arg-type]
        assert refusal(address) is not None, address


def test_a_refusal_names_the_range_and_the_document_that_reserves_it():
    assert refusal(ip_address("192.0.0.8")) == "IPv4 dummy address (192.0.0.8/32, RFC 7600)"
    assert refusal(ip_address("3fff::1")) == "documentation (3fff::/20, RFC 9637)"


def test_addresses_inside_an_ipv6_address_are_judged_too():
    assert refusal(ip_address("2002:7f00:1::1")) == (
        "loopback (127.0.0.0/8, RFC 1122), carried by 2002:7f00:1::1 (6to4)"
    )
    assert refusal(ip_address("64:ff9b::a9fe:a9fe")).startswith("cloud metadata")  # NAT64
    teredo = refusal(ip_address("2001:0:4136:e378:8000:63bf:80ff:fffe"))  # client 127.0.0.1
    assert teredo is not None and teredo.startswith("loopback") and "(Teredo)" in teredo
    public_client = refusal(ip_address("2001:0:4136:e378:8000:63bf:f7f7:f7f7"))  # 8.8.8.8
    assert public_client == "Teredo (2001::/32, RFC 4380)"  # refused with 2001::/23 anyway


def test_allowed_networks_let_chosen_addresses_through_and_no_others():
    allowed = parse_networks(["127.0.0.0/8", " 10.0.0.0/24 ", "fd00::/8", "192.0.0.8"])
    assert refusal(ip_address("127.0.0.1"), allowed) is None
    assert refusal(ip_address("::ffff:127.0.0.1"), allowed) is None
    assert refusal(ip_address("2002:7f00:1::1"), allowed) is None
    assert refusal(ip_address("10.0.0.7"), allowed) is None
    assert refusal(ip_address("10.0.1.7"), allowed).startswith("private-use")  # type: ignore[union-attr]
    assert refusal(ip_address("::1"), allowed).startswith("loopback")  # type: ignore[union-attr]
    assert refusal(ip_address("fd00::5"), allowed) is None
    assert refusal(ip_address("192.0.0.8"), allowed) is None
    assert refusal(ip_address("192.0.0.9"), allowed) is not None
    with pytest.raises(ValueError):
        parse_networks(["not-a-network"])


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("localhost", "127.0.0.1"),
        ("api.localhost", "127.0.0.1"),
        ("[::1]", "::1"),
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("hooks.example.com", None),
        ("cafe.be", None),
    ],
)
def test_a_host_that_names_an_address_by_itself_is_read_as_that_address(host, address):
    found = literal_address(host)
    assert (str(found) if found else None) == address


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/x", "https"),
        ("hooks.example.com/x", "https"),
        ("http://hooks.example.com/x", "https"),
        ("https://user:pw@hooks.example.com/x", "credentials"),
        ("https://token@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/x#frag", "fragment"),
        ("https://hooks.example.com:99999/x", "port"),
        ("https:///x", "host"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://localhost:8443/x", "loopback"),
        ("https://[::1]/x", "loopback"),
        ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("https://10.0.0.1/x", "private"),
        ("https://100.64.1.1/x", "carrier-grade NAT"),
        ("https://[fd00::1]/x", "unique-local"),
        ("https://2130706433/x", "loopback"),
        ("https://192.0.0.8/x", "IPv4 dummy address (192.0.0.8/32, RFC 7600)"),
        ("https://192.88.99.1/x", "6to4 relay anycast"),
        ("https://[3fff::1]/x", "documentation (3fff::/20, RFC 9637)"),
        ("https://[::ffff:192.0.0.8]/x", "IPv4 dummy address"),
    ],
)
def test_urls_that_reach_inside_or_carry_secrets_are_refused(url, reason):
    with pytest.raises(WebhookUrlError) as refused:
        check_url(url)
    assert reason in refused.value.message
    assert refused.value.details == {"field": "url"}


def test_https_urls_and_http_to_allowed_networks_are_accepted():
    assert check_url("https://hooks.example.com/taskwarden?x=1")
    assert check_url("https://93.184.215.14:8443/x")
    assert check_url("https://[2606:4700:4700::1111]/x")
    allowed = parse_networks(["127.0.0.0/8"])
    assert check_url("http://127.0.0.1:9000/hook", allowed)
    assert check_url("https://localhost/hook", allowed)
    with pytest.raises(WebhookUrlError):
        check_url("http://hooks.example.com/x", allowed)  # http only to a listed address
    with pytest.raises(WebhookUrlError):
        check_url("http://10.0.0.1/x", allowed)


# ---- the sender: resolve, check, connect to the same address -------------------------------


class Recorder:
    """Stands in for the network: remembers where each connection was asked to go (the checked
    address, its port, the TLS server name) and connects to a real local receiver instead, which
    answers ``status`` and ``headers`` (the TLS itself is tested with real certificates in
    tests/integration/test_webhook_delivery.py)."""

    def __init__(self, status: int = 204, headers: dict[str, str] | None = None) -> None:
        self.targets: list[Target] = []
        self._receiving = receiving()
        self.receiver = self._receiving.__enter__()
        self.receiver.default = (status, headers or {})

    async def opener(
        self, target: Target, tls: object
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        self.targets.append(target)
        return await asyncio.open_connection("127.0.0.1", self.receiver.port)

    @property
    def requests(self) -> list[Received]:
        return list(self.receiver.received)

    def close(self) -> None:
        self._receiving.__exit__(None, None, None)


@pytest.fixture
def recorders() -> Iterator[Callable[..., Recorder]]:
    made: list[Recorder] = []

    def make(status: int = 204, headers: dict[str, str] | None = None) -> Recorder:
        made.append(Recorder(status, headers))
        return made[-1]

    yield make
    for recorder in made:
        recorder.close()


def resolver(*answers: str, calls: list[str] | None = None):  # type: ignore[no-untyped-def]
    async def resolve(host: str, port: int) -> list:  # type: ignore[type-arg]
        if calls is not None:
            calls.append(host)
        return [ip_address(a) for a in answers]

    return resolve


def send(sender: HttpSender, url: str):  # type: ignore[no-untyped-def]
    async def once():  # type: ignore[no-untyped-def]
        try:
            return await sender.send(url, {"X-Event-Type": "task.created"}, b"{}")
        finally:
            await sender.aclose()

    return asyncio.run(once())


def test_the_sender_connects_to_the_checked_address_with_the_host_in_host_and_sni(recorders):
    recorder, calls = recorders(), []
    sender = HttpSender(
        resolver=resolver("93.184.215.14", "2606:4700::1", calls=calls),
        opener=recorder.opener,
    )
    response = send(sender, "https://hooks.example.com:8443/in?x=1")
    assert response.status == 204 and response.error is None
    assert calls == ["hooks.example.com"]  # resolved once: the connection uses that answer
    assert recorder.targets == [Target("https", "93.184.215.14", 8443, "hooks.example.com")]
    (request,) = recorder.requests
    assert request.path == "/in?x=1"
    assert request.header("Host") == "hooks.example.com:8443"
    assert request.header("X-Event-Type") == "task.created"
    assert request.header("Content-Length") == "2" and request.body == b"{}"


def test_a_host_resolving_to_an_inside_address_is_refused_before_any_connection(recorders):
    recorder = recorders()
    for answers in (["10.0.0.5"], ["93.184.215.14", "169.254.169.254"], ["::1"]):
        sender = HttpSender(resolver=resolver(*answers), opener=recorder.opener)
        response = send(sender, "https://rebind.example.com/x")
        assert response.status is None
        assert response.error and response.error.startswith("refused:")
    assert recorder.targets == [] and recorder.requests == []


def test_allowed_networks_reach_a_local_receiver_even_over_http(recorders):
    recorder = recorders()
    sender = HttpSender(
        parse_networks(["127.0.0.0/8"]),
        resolver=resolver("127.0.0.1"),
        opener=recorder.opener,
    )
    assert send(sender, "http://127.0.0.1:9000/hook").status == 204
    assert send(sender, "http://receiver.internal:9000/hook").status == 204
    assert [t.address for t in recorder.targets] == ["127.0.0.1", "127.0.0.1"]
    public = HttpSender(resolver=resolver("93.184.215.14"), opener=recorder.opener)
    refused = send(public, "http://hooks.example.com/x")
    assert refused.status is None and "http://" in (refused.error or "")


def test_a_redirect_is_a_failure_and_is_not_followed(recorders):
    recorder = recorders(302, {"Location": "http://169.254.169.254/latest"})
    sender = HttpSender(resolver=resolver("93.184.215.14"), opener=recorder.opener)
    response = send(sender, "https://hooks.example.com/x")
    assert response.status == 302
    assert "redirect not followed" in (response.error or "")
    assert len(recorder.requests) == 1


def test_retry_after_is_read_as_seconds_or_as_an_http_date(recorders):
    recorder = recorders(503, {"Retry-After": "120"})
    sender = HttpSender(resolver=resolver("93.184.215.14"), opener=recorder.opener)
    assert send(sender, "https://hooks.example.com/x").retry_after == 120.0
    assert retry_after(None) is None and retry_after("soon") is None
    now = datetime(2025, 7, 30, 14, 0, 0, tzinfo=UTC)
    assert retry_after("Wed, 30 Jul 2025 14:02:00 GMT", now) == 120.0
    assert retry_after("Wed, 30 Jul 2025 13:00:00 GMT", now) == 0.0


def test_a_name_that_does_not_resolve_is_a_failure_not_an_exception():
    async def nowhere(host: str, port: int) -> list:  # type: ignore[type-arg]
        raise socket.gaierror(-2, "Name or service not known")

    response = send(HttpSender(resolver=nowhere), "https://nowhere.invalid/x")
    assert response.status is None and "resolve" in (response.error or "")


def test_the_whole_attempt_is_bounded_by_the_timeout():
    async def slow(host: str, port: int) -> list:  # type: ignore[type-arg]
        await asyncio.sleep(5)
        return []

    response = send(HttpSender(resolver=slow, timeout=0.05), "https://slow.example.com/x")
    assert response.status is None and "timed out" in (response.error or "")


def test_pin_refuses_what_is_not_http():
    with pytest.raises(WebhookUrlError):
        asyncio.run(HttpSender().pin("file:///etc/passwd"))


def test_a_connection_is_kept_for_its_address_and_a_new_answer_gets_a_new_one(recorders):
    recorder = recorders()
    answers = ["93.184.215.14", "93.184.215.14", "93.184.215.99"]

    async def rebinding(host: str, port: int) -> list:  # type: ignore[type-arg]
        return [ip_address(answers.pop(0))]

    sender = HttpSender(resolver=rebinding, opener=recorder.opener)

    async def scenario() -> None:
        for _ in range(3):
            assert (await sender.send("https://hooks.example.com/x", {}, b"{}")).status == 204
        await sender.aclose()

    asyncio.run(scenario())
    # one connection for the first address (kept for the second request), one for the new one
    assert [t.address for t in recorder.targets] == ["93.184.215.14", "93.184.215.99"]
    first, second, third = recorder.requests
    assert first.peer == second.peer != third.peer


def test_a_long_answer_is_not_read_to_its_end_and_its_connection_is_dropped(recorders):
    recorder = recorders(200, {"X-Pad": "y"})
    recorder.receiver.pad = 1024 * 1024  # a body of a mebibyte
    sender = HttpSender(resolver=resolver("93.184.215.14"), opener=recorder.opener)

    async def scenario():  # type: ignore[no-untyped-def]
        answers = [await sender.send("https://hooks.example.com/x", {}, b"{}") for _ in range(2)]
        await sender.aclose()
        return answers

    answers = asyncio.run(scenario())
    assert [a.status for a in answers] == [200, 200]
    assert len(recorder.targets) == 2  # the first connection was not kept
