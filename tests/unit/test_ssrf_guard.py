"""The SSRF guard: which addresses and URLs a webhook may reach, and that the sender connects
to the very address it checked (with the host in the Host header and the TLS server name)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from ipaddress import ip_address

import pytest

from domain.webhook_url import (
    WebhookUrlError,
    check_url,
    literal_address,
    parse_networks,
    refusal,
)
from infrastructure.http1 import Target
from infrastructure.webhook_sender import AddressRefusedError, HttpSender, retry_after
from tests.webhook_receiver import Received, receiving

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.10": "private",
    "169.254.169.254": "cloud metadata",
    "fd00:ec2::254": "cloud metadata",
    "169.254.10.1": "link-local",
    "fe80::1": "link-local",
    "100.64.0.1": "carrier-grade NAT",
    "100.127.255.254": "carrier-grade NAT",
    "fc00::1": "unique-local",
    "fd12:3456::1": "unique-local",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",  # noqa: S104 - refused, not bound
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "192.0.2.1": "private",  # TEST-NET-1
    "::ffff:127.0.0.1": "loopback",
    "::ffff:169.254.169.254": "cloud metadata",
}
REACHABLE = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "100.128.0.1"]


@pytest.mark.parametrize("address", list(REFUSED))
def test_inside_addresses_are_refused_with_what_they_are(address):
    assert refusal(ip_address(address)) == REFUSED[address]


@pytest.mark.parametrize("address", REACHABLE)
def test_public_addresses_are_reachable(address):
    assert refusal(ip_address(address)) is None


def test_addresses_inside_an_ipv6_address_are_judged_too():
    assert refusal(ip_address("2002:7f00:1::1")) == "loopback (inside 2002:7f00:1::1)"  # 6to4
    assert refusal(ip_address("64:ff9b::a9fe:a9fe")).startswith("cloud metadata")  # NAT64


def test_allowed_networks_let_chosen_addresses_through_and_no_others():
    allowed = parse_networks(["127.0.0.0/8", " 10.0.0.0/24 ", "fd00::/8"])
    assert refusal(ip_address("127.0.0.1"), allowed) is None
    assert refusal(ip_address("::ffff:127.0.0.1"), allowed) is None
    assert refusal(ip_address("10.0.0.7"), allowed) is None
    assert refusal(ip_address("10.0.1.7"), allowed) == "private"
    assert refusal(ip_address("::1"), allowed) == "loopback"
    assert refusal(ip_address("fd00::5"), allowed) is None
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
    with pytest.raises(AddressRefusedError):
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
