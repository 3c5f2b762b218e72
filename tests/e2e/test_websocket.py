"""The WebSocket gateway end to end, on SQLite and on Postgres: ``/ws/{session_id}`` through the
real app, its bus and its relay. Tests wait on messages (each wait bounded), never on the clock."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from typing import Any

import anyio
import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient, WebSocketTestSession
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect

from application.public_events import public_events
from application.relay import MemoryTracking, Relay
from infrastructure.memory_bus import MemoryBus
from infrastructure.nats_bus import NatsBus
from infrastructure.settings import Settings
from interfaces.http.app import create_app
from interfaces.http.role import api_role
from interfaces.services import migrate
from interfaces.ws import session as ws_session
from tests.e2e.conftest import ADMIN_KEY, Api, signed_in, token
from tests.e2e.test_remote_worker import Worker

WS = "/ws/session-1"
WAIT = 30.0  # seconds any one message may take before the test fails (CI machines are loaded)
EVENT_TYPES = frozenset(
    {
        "task_update",
        "task_completed",
        "command_output",
        "notification",
        "project_update",
        "queue_update",
    }
)
NO_HEADER = {"authorization": ""}  # the fixture's client signs every request in by default


# ---- the app, its bus and its relay ------------------------------------------------------------


@contextmanager
def relaying(client: TestClient, bus: Any) -> Iterator[None]:
    """``bus`` instead of the app's, with a relay of its own (the app's goes on relaying to the
    app's bus, which no socket listens to any more)."""
    services = api_role(client.app).services
    services.bus = bus
    clock = services.store.clock
    relay = Relay(services.ledger, bus, MemoryTracking(), poll_interval=0.05, clock=clock)

    async def start() -> None:
        relay.start()

    client.portal.call(start)
    services.store.on_recorded(relay.hand)
    try:
        yield
    finally:
        client.portal.call(relay.stop)
        client.portal.call(bus.close)


@contextmanager
def serving(settings: Settings, wrap: Any = None) -> Iterator[Api]:
    """The app (``wrap``: an ASGI middleware around it) with its bus and relay, signed in as an
    admin."""
    migrate(settings)
    app = create_app(settings)
    with TestClient(wrap(app) if wrap else app, raise_server_exceptions=False) as client:
        client.app = app  # requests still go through the wrapper; state is read from the app
        yield signed_in(client)


def ws_settings(settings: Settings, **changes: Any) -> Settings:
    return msgspec.structs.replace(settings, **changes)


@pytest.fixture
def api(settings: Settings) -> Iterator[Api]:
    with serving(ws_settings(settings)) as api:
        yield api


# ---- a socket ----------------------------------------------------------------------------------


class Socket:
    def __init__(self, session: WebSocketTestSession) -> None:
        self.session = session
        self.held: deque[dict[str, Any]] = deque()  # events that came before an answer

    def receive(self, timeout: float = WAIT) -> dict[str, Any]:
        """The next message; raises WebSocketDisconnect if the server closed the socket."""
        if self.held:
            return self.held.popleft()

        async def next_message() -> Any:
            with anyio.fail_after(timeout):
                return await self.session._send_rx.receive()

        message = self.session.portal.call(next_message)
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason", ""))
        return json.loads(message["text"])

    def send(self, **message: Any) -> None:
        self.session.send_json(message)

    def ask(self, **message: Any) -> dict[str, Any]:
        """Sends with a correlation id; the answer that carries it. Events that come before it
        are held for ``receive``."""
        correlation = uuid.uuid4().hex
        self.send(**message, id=correlation)
        held = list(self.held)
        self.held.clear()
        while True:
            answer = self.receive()
            if answer.get("id") == correlation:
                self.held.extend(held)
                return answer
            assert answer["type"] in EVENT_TYPES, answer
            held.append(answer)

    def events_until(self, position: int) -> list[dict[str, Any]]:
        """Event messages up to the one at ``position`` (every subscription here sees it)."""
        events: list[dict[str, Any]] = []
        while not events or events[-1]["position"] < position:
            message = self.receive()
            assert message["type"] in EVENT_TYPES, message
            events.append(message)
        return events

    def events_through(self, last: Any) -> list[dict[str, Any]]:
        """Event messages up to the first that ``last`` accepts."""
        events = [self.receive()]
        while not last(events[-1]):
            assert events[-1]["type"] in EVENT_TYPES, events[-1]
            events.append(self.receive())
        return events

    def closed(self) -> WebSocketDisconnect:
        """Reads until the server closes; the close."""
        while True:
            try:
                self.receive()
            except WebSocketDisconnect as close:
                return close


@contextmanager
def connected(
    api: Api, team: str = "default", role: str = "admin", credential: str | None = None
) -> Iterator[Socket]:
    """A socket authenticated with a bearer subprotocol, past its greeting."""
    value = credential or token(api.client, team, role)
    with api.client.websocket_connect(
        WS, subprotocols=["bearer", value], headers=dict(NO_HEADER)
    ) as session:
        assert session.accepted_subprotocol == "bearer"
        socket = Socket(session)
        greeting = socket.receive()
        assert greeting["type"] == "connected", greeting
        yield socket


def subscribed(socket: Socket, **subscription: Any) -> dict[str, Any]:
    answer = socket.ask(type="subscribe", **subscription)
    assert answer["type"] == "subscribed", answer
    return answer["data"]


# ---- authentication ----------------------------------------------------------------------------


def test_a_bearer_token_offered_as_a_subprotocol_authenticates_the_socket(api):
    with connected(api, role="viewer") as socket:
        assert socket.ask(type="ping")["type"] == "pong"
    credential = token(api.client, "default", "operator")
    with api.client.websocket_connect(
        WS, subprotocols=["bearer", credential], headers=dict(NO_HEADER)
    ) as session:
        greeting = Socket(session).receive()
    assert greeting["data"]["team_id"] == "default" and greeting["data"]["role"] == "operator"
    assert greeting["data"]["session_id"] == "session-1"
    assert greeting["data"]["position"] == api.position()


@pytest.mark.parametrize(
    "message",
    [
        {"type": "auth"},
        {"type": "authenticate"},  # seed 000
        {"event": "auth", "data": {}},  # seed 002
    ],
)
def test_a_first_message_with_the_token_authenticates_the_socket(api, message):
    credential = token(api.client, "team-b", "viewer")
    with api.client.websocket_connect(WS, headers=dict(NO_HEADER)) as session:
        assert session.accepted_subprotocol is None
        socket = Socket(session)
        if "data" in message:
            socket.send(event=message["event"], data={"token": credential})
        else:
            socket.send(**message, token=credential)
        greeting = socket.receive()
    assert greeting["type"] == "connected" and greeting["data"]["team_id"] == "team-b"


def test_the_authorization_header_of_a_client_that_can_set_one_authenticates_it(api):
    with api.client.websocket_connect(WS) as session:  # the client's own Authorization header
        assert Socket(session).receive()["type"] == "connected"


def test_a_socket_that_does_not_authenticate_in_time_is_closed_with_4401(settings):
    with serving(ws_settings(settings, ws_auth_seconds=0.3)) as api:
        with api.client.websocket_connect(WS, headers=dict(NO_HEADER)) as session:
            socket = Socket(session)
            said = socket.receive()
            close = socket.closed()
    assert said["type"] == "error" and said["data"]["code"] == "AUTH_TOKEN_MISSING"
    assert close.code == 4401 and "0.3 s" in close.reason


@pytest.mark.parametrize("how", ["subprotocol", "message"])
def test_a_bad_token_is_refused_with_4401(api, how):
    forged = token(api.client)[:-4] + "AAAA"
    subprotocols = ["bearer", forged] if how == "subprotocol" else None
    with api.client.websocket_connect(
        WS, subprotocols=subprotocols, headers=dict(NO_HEADER)
    ) as session:
        socket = Socket(session)
        if how == "message":
            socket.send(type="auth", token=forged)
        said = socket.receive()
        close = socket.closed()
    assert said["type"] == "error" and said["data"]["code"] == "AUTH_TOKEN_INVALID"
    assert close.code == 4401


def test_a_first_message_that_is_not_auth_is_refused_with_4401(api):
    with api.client.websocket_connect(WS, headers=dict(NO_HEADER)) as session:
        socket = Socket(session)
        socket.send(type="subscribe", channel="hitl")
        assert socket.receive()["data"]["code"] == "AUTH_TOKEN_MISSING"
        assert socket.closed().code == 4401


def test_a_role_that_may_not_read_is_refused_with_4403(api):
    with api.client.websocket_connect(
        WS, subprotocols=["bearer", token(api.client, "default", "agent")], headers=dict(NO_HEADER)
    ) as session:
        close = Socket(session).closed()
    assert close.code == 4403 and "agent" in close.reason


def test_a_page_of_another_origin_is_refused_before_the_handshake(settings):
    allowed = "https://app.example.com"
    with serving(ws_settings(settings, ws_allowed_origins=(allowed,))) as api:
        with pytest.raises(WebSocketDisconnect) as refused:
            with api.client.websocket_connect(WS, headers={"origin": "https://evil.example"}):
                pass
        assert refused.value.code == 4403
        for origin in (allowed, "http://testserver"):  # the allowed one, and the server's own
            with api.client.websocket_connect(WS, headers={"origin": origin}) as session:
                assert Socket(session).receive()["type"] == "connected"


def test_a_disabled_user_loses_the_socket_at_the_next_check(api):
    body = {"username": "ann", "password": "password-1", "role": "operator"}
    ann = api.ok("POST", "/api/users", 201, json=body)["data"]
    login = api.post("/api/auth/login", json={"username": "ann", "password": "password-1"})
    project = api.project()
    with connected(api, credential=login.json()["data"]["access_token"]) as socket:
        subscribed(socket, channel="project_updates", project_id=project["id"])
        api.ok("PATCH", f"/api/users/{ann['id']}", json={"disabled": True})
        socket.send(type="subscribe", channel="hitl")
        close = socket.closed()
    assert close.code == 4401 and "AUTH_ACCOUNT_DISABLED" in close.reason


def test_a_disabled_user_loses_the_socket_at_the_periodic_check(settings):
    with serving(ws_settings(settings, ws_reauth_seconds=0.2)) as api:
        body = {"username": "bob", "password": "password-1", "role": "viewer"}
        bob = api.ok("POST", "/api/users", 201, json=body)["data"]
        login = api.post("/api/auth/login", json={"username": "bob", "password": "password-1"})
        with connected(api, credential=login.json()["data"]["access_token"]) as socket:
            api.ok("PATCH", f"/api/users/{bob['id']}", json={"disabled": True})
            close = socket.closed()  # the client said nothing
    assert close.code == 4401 and "AUTH_ACCOUNT_DISABLED" in close.reason


def test_a_fresh_token_of_the_same_team_replaces_the_sockets_credential(api):
    with connected(api, role="viewer") as socket:
        fresh = socket.ask(type="auth", token=token(api.client, "default", "operator"))
        assert fresh["type"] == "authenticated" and fresh["data"]["role"] == "operator"
        assert socket.ask(type="execute_task", task_id="missing")["data"]["code"] == (
            "TASK_NOT_FOUND"  # an operator now: past the permission check
        )
        other = socket.ask(type="auth", token=token(api.client, "team-b", "admin"))
        assert other["type"] == "error" and other["data"]["code"] == "AUTH_TOKEN_INVALID"
        forged = socket.ask(type="auth", token="tw_nope_nope")
        assert forged["type"] == "error" and forged["data"]["code"] == "AUTH_TOKEN_INVALID"
        assert socket.ask(type="ping")["type"] == "pong"


# ---- what a subscription receives --------------------------------------------------------------


def stored(api: Api, after: int, keep: Any) -> list[int]:
    """The positions of the public events after ``after`` that ``keep`` accepts, from the store."""
    ledger = api.role.services.ledger
    events, _ = public_events(ledger, after, 1_000_000)
    return [e.position for e in events if keep(e)]


def written_at(response: Any) -> int:
    return int(response.headers["X-Position"])


def test_a_project_subscription_streams_the_project_and_its_tasks_with_their_positions(api):
    project, other = api.project(), api.project(name="Other")
    with connected(api, role="viewer") as socket:
        ack = subscribed(socket, channel="project_updates", project_id=project["id"])
        task = api.task(project["id"])
        api.task(other["id"])
        api.ok("PATCH", f"/api/tasks/{task['id']}", json={"title": "Add logout"})
        last = api.client.patch(f"/api/projects/{project['id']}", json={"description": "v2"})
        messages = socket.events_until(written_at(last))
    ours = {project["id"], task["id"]}
    assert [m["position"] for m in messages] == stored(
        api, ack["since"], lambda e: e.aggregate_id in ours
    )
    assert ack["subscription"] == f"project_updates:{project['id']}"
    assert {m["subscription"] for m in messages} == {ack["subscription"]}
    created, updated, changed = messages
    assert created["type"] == "task_update" and created["data"]["event"] == "task.created"
    assert created["data"]["task_id"] == task["id"] and created["data"]["status"] == "pending"
    assert updated["data"]["event"] == "task.updated" and "status" not in updated["data"]
    assert updated["data"]["payload"]["changes"]["title"] == "Add logout"
    assert changed["type"] == "project_update" and changed["data"]["project_id"] == project["id"]


def run_by_hand(api: Api, task_id: str) -> int:
    """Executes the task as a remote worker would: output, a question, an answer, the end.
    Returns the position of the end."""
    api.ok("POST", f"/api/tasks/{task_id}/execute", 202, json={})
    worker = Worker(api)
    claim = worker.claim()
    assert claim is not None and claim["task_id"] == task_id
    worker.ok(claim, "output", chunks=[{"seq": 0, "stream": "stdout", "text": "hello\n"}])
    question = {"type": "question", "id": "q1", "question": "Which database?"}
    item_id = worker.ok(claim, "report", message=question)["item_id"]
    body = {"question_id": item_id, "response": "postgres"}
    api.ok("POST", f"/api/tasks/{task_id}/respond", json=body)
    worker.ok(claim, "finish", outcome="completed", result={"summary": "done", "exit_code": 0})
    return api.position()


def test_a_task_subscription_carries_its_output_its_questions_and_its_completion(api):
    project = api.project()
    task = api.task(project["id"])
    with connected(api) as socket:
        ack = subscribed(socket, channel="task_updates", task_id=task["id"])
        end = run_by_hand(api, task["id"])
        messages = socket.events_until(end)
    expected = stored(
        api,
        ack["since"],
        lambda e: e.aggregate_id == task["id"] or e.aggregate in ("output", "question"),
    )
    assert [m["position"] for m in messages] == expected
    kinds = [(m["type"], m["data"]["event"]) for m in messages]
    assert kinds[:2] == [
        ("task_update", "task.execution_requested"),
        ("task_update", "task.execution_started"),
    ]
    output = next(m["data"] for m in messages if m["type"] == "command_output")
    assert (output["text"], output["stream"], output["task_id"]) == (
        "hello\n",
        "stdout",
        task["id"],
    )
    asked, answered = (m["data"] for m in messages if m["type"] == "notification")
    assert asked["level"] == "action_required" and asked["message"] == "Which database?"
    assert asked["actions"][0]["url"] == f"/api/tasks/{task['id']}/respond"
    assert answered["event"] == "question.answered" and answered["task_id"] == task["id"]
    assert answered["project_id"] == project["id"]  # an answer does not carry them: looked up
    waiting = next(m for m in messages if m["data"]["event"] == "task.input_requested")
    assert waiting["data"]["status"] == "needs_input"
    done = messages[-1]
    assert done["type"] == "task_completed" and done["data"]["status"] == "completed"
    assert done["data"]["exit_code"] == 0 and done["data"]["result"]["summary"] == "done"


def test_team_wide_channels_receive_only_their_kind_of_event(api):
    project = api.project()
    task = api.task(project["id"])
    with connected(api) as hitl, connected(api) as queue:
        subscribed(hitl, channel="hitl")
        subscribed(queue, channel="queue_status")
        run_by_hand(api, task["id"])
        marker = api.ok("POST", f"/api/tasks/{api.task(project['id'])['id']}/execute", 202)
        hitl_events = hitl.events_through(lambda m: m["data"]["event"] == "question.answered")
        queue_events = queue.events_until(marker["meta"]["position"])
    assert {m["data"]["event"] for m in hitl_events} == {"question.asked", "question.answered"}
    assert [m["data"]["event"] for m in queue_events] == [
        "task.execution_requested",
        "task.execution_started",
        "task.execution_finished",
        "task.execution_requested",
    ]


def test_a_spent_budget_is_a_notification_for_the_people_and_the_queue(api):
    with connected(api) as hitl, connected(api) as queue:
        subscribed(hitl, channel="hitl")
        subscribed(queue, channel="queue_status")
        api.ok("POST", "/api/settings", json={"daily_cost_limit": 0})  # spent by nothing
        notes = hitl.events_through(lambda m: m["data"]["event"] == "budget.exceeded")
        queued = queue.events_through(lambda m: m["data"]["event"] == "budget.exceeded")
        task_id = api.task(api.project()["id"])["id"]
        api.error("POST", f"/api/tasks/{task_id}/execute", 409, "BUDGET_EXCEEDED")
    assert [m["data"]["event"] for m in queued] == [m["data"]["event"] for m in notes]
    assert [m["data"]["event"] for m in notes] == [
        "budget.threshold_reached",
        "budget.threshold_reached",
        "budget.exceeded",
    ]
    assert {m["type"] for m in notes} == {"notification"}
    exceeded = notes[-1]["data"]
    assert exceeded["level"] == "critical" and exceeded["kind"] == "budget"
    assert "daily cost limit" in exceeded["message"] and exceeded["actions"][0]["url"]


# ---- isolation ---------------------------------------------------------------------------------


def test_another_teams_project_or_task_cannot_be_subscribed_nor_its_events_received(api):
    project = api.project()
    task = api.task(project["id"])
    with connected(api, team="team-b") as outsider:
        for channel, field, code in (
            ("project_updates", "project_id", "PROJECT_NOT_FOUND"),
            ("task_updates", "task_id", "TASK_NOT_FOUND"),
            ("task_updates", "project_id", "PROJECT_NOT_FOUND"),
        ):
            ref = task["id"] if field == "task_id" else project["id"]
            refused = outsider.ask(type="subscribe", channel=channel, **{field: ref})
            assert refused["type"] == "error" and refused["data"]["code"] == code
            gone = outsider.ask(type="unsubscribe", channel=channel, **{field: ref})
            assert gone["data"]["code"] == code  # nothing was subscribed
        subscribed(outsider, channel="queue_status")
        api.ok("POST", f"/api/tasks/{task['id']}/execute", 202)  # the default team's
        own = signed_in(api.client, "team-b")
        mine = own.task(own.project()["id"])
        queued = own.ok("POST", f"/api/tasks/{mine['id']}/execute", 202)
        first = outsider.receive()
        signed_in(api.client)
    assert first["data"]["task_id"] == mine["id"]  # in log order: the other team's never came
    assert first["position"] == queued["meta"]["position"]


def test_a_project_scoped_key_follows_only_its_project(api):
    project, other = api.project(), api.project(name="Other")
    key = api.ok("POST", KEYS, 201, json={"name": "ci", "project_id": project["id"]})["data"]
    theirs = api.task(other["id"])
    with connected(api, credential=key["key"]) as socket:
        refused = socket.ask(type="subscribe", channel="project_updates", project_id=other["id"])
        assert refused["data"]["code"] == "PROJECT_NOT_FOUND"
        subscribed(socket, channel="queue_status")
        api.ok("POST", f"/api/tasks/{theirs['id']}/execute", 202)
        ours = api.task(project["id"])
        queued = api.ok("POST", f"/api/tasks/{ours['id']}/execute", 202)
        first = socket.receive()
    assert first["data"]["task_id"] == ours["id"]
    assert first["position"] == queued["meta"]["position"]


# ---- resume ------------------------------------------------------------------------------------

KEYS = "/api/auth/api-keys"


class LateLive:
    """A live subscription that starts listening only when released, as a NATS consumer is
    created a moment after it is asked for: what is published meanwhile never reaches it."""

    def __init__(self, bus: MemoryBus, subject_filter: str) -> None:
        self._bus = bus
        self._filter = subject_filter
        self._inner: Any = None
        self.released = asyncio.Event()

    def __aiter__(self) -> LateLive:
        return self

    async def __anext__(self) -> Any:
        if self._inner is None:
            await self.released.wait()
            self._inner = MemoryBus.live(self._bus, self._filter)
        return await self._inner.__anext__()

    async def aclose(self) -> None:
        if self._inner is not None:
            await self._inner.aclose()


class HeldBus(MemoryBus):
    """The in-process bus, with live subscriptions that may start late (``hold``)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.late: list[LateLive] = []

    def live(self, subject_filter: str) -> Any:
        if not self.hold:
            return super().live(subject_filter)
        self.late.append(LateLive(self, subject_filter))
        return self.late[-1]

    async def release(self) -> None:
        for late in self.late:
            late.released.set()


class World:
    """The app with a bus and a relay the test drives (the store may run ahead of the bus, and a
    subscription may start listening late); one project, its tasks, the positions between steps."""

    def __init__(self, api: Api) -> None:
        self.api = api
        services = api.role.services
        self.bus = services.bus = HeldBus()
        self.relay = Relay(services.ledger, self.bus, MemoryTracking(), clock=services.store.clock)
        self.publish()
        self.lock = threading.Lock()

    def begin(self, hold: bool) -> None:
        self.project = self.api.project()["id"]
        self.elsewhere = self.api.project(name="Elsewhere")["id"]
        self.tasks = [self.api.task(self.project)["id"]]
        self.marks = [self.api.position()]
        self.bus.hold = hold

    def publish(self) -> None:
        self.api.client.portal.call(self.relay.catch_up)

    def release(self) -> None:
        self.api.client.portal.call(self.bus.release)

    def write(self, kind: str) -> None:
        api = self.api
        if kind == "create":
            created = api.task(self.project)["id"]
            with self.lock:
                self.tasks.append(created)
        elif kind == "change":
            api.ok("PATCH", f"/api/tasks/{self.tasks[0]}", json={"title": uuid.uuid4().hex})
        elif kind == "elsewhere":
            api.task(self.elsewhere)
        else:
            api.ok("PATCH", f"/api/projects/{self.project}", json={"description": uuid.uuid4().hex})

    def since(self, back: int | None) -> dict[str, Any]:
        if back is None:
            return {}
        return {"since": self.marks[max(0, len(self.marks) - 1 - back)]}

    def mine(self, event: Any) -> bool:
        return event.aggregate_id == self.project or event.aggregate_id in self.tasks


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.sampled_from(["create", "change", "elsewhere", "project"])),
        st.tuples(st.just("publish")),
        st.tuples(st.just("release")),
        st.tuples(st.just("subscribe"), st.none() | st.integers(0, 4)),
        st.tuples(st.just("racing"), st.integers(1, 5), st.none() | st.integers(0, 4)),
    ),
    min_size=1,
    max_size=10,
)


@pytest.fixture
def world(api: Api) -> World:
    return World(api)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS, hold=st.booleans())
def test_a_resumed_subscription_receives_the_stores_events_with_no_gap_and_no_duplicate(
    world, steps, hold
):
    """Whatever the order of writes, relaying, late listening and subscribing (a ``since`` or
    none, while another thread writes and relays), each subscription receives exactly the
    store's events for its filter after its start, in order."""
    api = world.api
    world.begin(hold)
    with ExitStack() as stack:
        sockets: list[tuple[Socket, int]] = []

        def subscribe(back: int | None) -> None:
            socket = stack.enter_context(connected(api))
            ack = subscribed(
                socket, channel="project_updates", project_id=world.project, **world.since(back)
            )
            sockets.append((socket, ack["since"]))

        def race(count: int) -> None:
            for _ in range(count):
                world.write("create")
                world.publish()

        for step in steps:
            if step[0] == "write":
                world.write(step[1])
            elif step[0] == "publish":
                world.publish()
            elif step[0] == "release":
                world.release()
            elif step[0] == "subscribe":
                subscribe(step[1])
            else:
                writer = threading.Thread(target=race, args=(step[1],))
                writer.start()
                subscribe(step[2])
                writer.join()
            world.marks.append(api.position())
        marker = api.client.patch(f"/api/projects/{world.project}", json={"description": "end"})
        world.release()
        world.publish()
        for socket, since in sockets:
            received = [m["position"] for m in socket.events_until(written_at(marker))]
            assert received == stored(api, since, world.mine), (since, steps)


def test_a_burst_larger_than_the_buffers_arrives_whole_from_the_store(settings):
    """The live buffer overflows (one relay batch of 12 events, room for 2): what it dropped is
    read from the store."""
    with serving(ws_settings(settings, ws_queue_size=2)) as api:
        world = World(api)
        world.begin(hold=False)
        with connected(api) as socket:
            ack = subscribed(socket, channel="project_updates", project_id=world.project)
            world.write("change")  # one live event first: the gap before it is read
            world.publish()
            for _ in range(12):
                world.write("create")
            world.publish()
            received = [m["position"] for m in socket.events_until(api.position())]
        assert received == stored(api, ack["since"], world.mine)
    assert len(received) == 13


def test_a_subscription_whose_bus_missed_more_than_a_resume_replays_asks_for_a_resync(settings):
    """The live buffer overflows in a burst of 30 events while a resume may replay only 5: the
    events the socket had room for come first, then resync_required from the last one sent."""
    with serving(ws_settings(settings, ws_queue_size=2, ws_max_replay=5)) as api:
        world = World(api)
        world.begin(hold=False)
        with connected(api) as socket:
            ack = subscribed(socket, channel="project_updates", project_id=world.project)
            for _ in range(30):
                world.write("create")
            world.publish()
            messages = socket.events_through(lambda m: m["type"] == "resync_required")
            gone = socket.ask(
                type="unsubscribe", channel="project_updates", project_id=world.project
            )
        head = api.position()
        expected = stored(api, ack["since"], world.mine)
    answer, sent = messages[-1], [m["position"] for m in messages[:-1]]
    assert sent == expected[: len(sent)]
    assert len(sent) < 30
    assert answer["data"]["subscription"] == ack["subscription"]
    if sent:
        assert answer["data"]["since"] == sent[-1]
    else:
        assert answer["data"]["since"] >= ack["since"]
    assert answer["data"]["position"] == head
    assert answer["data"]["oldest"] == answer["data"]["position"] - 5
    assert gone["data"]["code"] == "NOT_SUBSCRIBED"


def test_a_since_the_store_cannot_replay_asks_for_a_resync(settings):
    with serving(ws_settings(settings, ws_max_replay=3)) as api:
        project = api.project()
        before = api.position()
        for _ in range(4):
            api.task(project["id"])
        head = api.position()
        with connected(api) as socket:
            for since in (-1, head + 1, before):
                answer = socket.ask(
                    type="subscribe",
                    channel="project_updates",
                    project_id=project["id"],
                    since=since,
                )
                assert answer["type"] == "resync_required", answer
                assert answer["data"]["oldest"] == head - 3 and answer["data"]["position"] == head
                assert answer["data"]["since"] == since
            ack = subscribed(
                socket, channel="project_updates", project_id=project["id"], since=head - 3
            )
            assert ack["since"] == head - 3 and ack["position"] == head
            replayed = socket.events_until(head)
    assert [m["position"] for m in replayed] == list(range(head - 2, head + 1))


# ---- a slow consumer ---------------------------------------------------------------------------


class Stall:
    """Between the app and the test's sockets: once ``stalled`` is set, the app's sends wait, as a
    real server's send waits for the network buffer of a client that stopped reading."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.stalled = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def held(message: Any) -> None:
            if message["type"] == "websocket.send" and self.stalled.is_set():
                await anyio.sleep_forever()  # until the app gives up on this send
            await send(message)

        await self.app(scope, receive, held if scope["type"] == "websocket" else send)


def test_a_user_holds_a_bounded_number_of_sockets_and_a_closed_one_frees_its_place(settings):
    with serving(ws_settings(settings, ws_max_sockets_per_principal=2)) as api:
        credential = token(api.client, "default", "operator")
        with connected(api, credential=credential), connected(api, credential=credential):
            with api.client.websocket_connect(
                WS, subprotocols=["bearer", credential], headers=dict(NO_HEADER)
            ) as session:
                third = Socket(session)
                refused = third.receive()
                close = third.closed()
            with connected(api, role="operator") as other:  # another principal is not counted
                assert other.ask(type="ping")["type"] == "pong"
        with connected(api, credential=credential) as again:  # the two closed: room again
            assert again.ask(type="ping")["type"] == "pong"
    assert refused["type"] == "error" and refused["data"]["code"] == "RATE_LIMIT_EXCEEDED"
    assert close.code == 4429


def test_a_consumer_too_slow_for_its_queue_is_closed_with_4008(settings):
    stalls: list[Stall] = []

    def wrap(app: ASGIApp) -> Stall:
        stalls.append(Stall(app))
        return stalls[-1]

    with serving(ws_settings(settings, ws_queue_size=3, ws_send_grace=0.2), wrap) as api:
        project = api.project()
        with connected(api) as socket:
            subscribed(socket, channel="project_updates", project_id=project["id"])
            stalls[0].stalled.set()
            for _ in range(6):
                api.task(project["id"])
            close = socket.closed()
    assert close.code == 4008 and "too slow" in close.reason


# ---- the other messages ------------------------------------------------------------------------


def test_a_ping_is_answered_with_a_pong_carrying_its_timestamp(api):
    with connected(api) as socket:
        pong = socket.ask(type="ping", timestamp=1690725600000)
    assert pong["type"] == "pong" and pong["timestamp"] == 1690725600000


def test_execute_task_queues_the_task_for_an_operator_only(api):
    task = api.task(api.project()["id"])
    with connected(api, role="viewer") as viewer:
        refused = viewer.ask(type="execute_task", task_id=task["id"])
    assert refused["data"]["code"] == "AUTH_INSUFFICIENT_PERMISSIONS"
    with connected(api, role="operator") as socket:
        subscribed(socket, channel="task_updates", task_id=task["id"])
        queued = socket.ask(type="execute_task", task_id=task["id"], priority="high")
        update = socket.receive()
        missing = socket.ask(type="execute_task", task_id=str(uuid.uuid4()))
    assert queued["type"] == "task_queued" and queued["data"]["status"] == "queued"
    assert queued["data"]["priority"] == "high"
    assert update["data"]["event"] == "task.execution_requested"
    assert update["position"] == queued["position"] and update["data"]["status"] == "queued"
    assert missing["type"] == "error" and missing["data"]["code"] == "TASK_NOT_FOUND"


def test_get_metrics_answers_with_the_teams_queues_and_performance(api):
    project = api.project()
    for priority in ("high", "low", "low"):
        task = api.task(project["id"], priority=priority)
        api.ok("POST", f"/api/tasks/{task['id']}/execute", 202)
    api.ok("GET", "/api/queues/status", params={"min_position": api.position()})
    with connected(api, role="viewer") as socket:
        answer = socket.ask(type="get_metrics", metrics=["performance", "queue_status"])
        health = socket.ask(type="get_metrics", metrics=["system_health"])
    data = answer["data"]
    assert answer["type"] == "performance_data"
    assert data["queue_sizes"] == {"high": 1, "normal": 0, "low": 2}
    assert data["active_connections"] == 1 and data["tasks_per_minute"] == 0
    assert data["queue_status"]["queues"]["low_priority"]["size"] == 2
    assert data["performance"]["period"] == "24h" and data["performance"]["queued_now"] == 3
    assert "system_health" not in data
    assert health["data"]["system_health"]["position"] == api.position()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("not json", "VALIDATION_INVALID_FORMAT"),
        ("[1, 2]", "VALIDATION_ERROR"),
        ('{"no": "type"}', "UNKNOWN_MESSAGE_TYPE"),
        ('{"type": "launch"}', "UNKNOWN_MESSAGE_TYPE"),
        ('{"type": "subscribe", "channel": "everything"}', "VALIDATION_ERROR"),
        ('{"type": "subscribe", "channel": "task_updates"}', "VALIDATION_REQUIRED_FIELD"),
        ('{"type": "subscribe", "channel": "hitl", "since": "yesterday"}', "VALIDATION_ERROR"),
        ('{"type": "ping", "extra": 1}', "VALIDATION_ERROR"),
        ('{"type": "execute_task", "task_id": "x", "options": {"timeout": 0}}', "VALIDATION_ERROR"),
        ('{"type": "unsubscribe", "channel": "hitl"}', "NOT_SUBSCRIBED"),
        ('{"type": "get_metrics", "metrics": ["cpu"]}', "VALIDATION_ERROR"),
    ],
)
def test_a_malformed_message_is_answered_with_an_error_and_the_socket_lives_on(api, raw, code):
    with connected(api) as socket:
        socket.session.send_text(raw)
        answer = socket.receive()
        assert answer["type"] == "error" and answer["data"]["code"] == code, answer
        assert answer["data"]["message"]
        assert socket.ask(type="ping")["type"] == "pong"


def test_a_socket_holds_a_bounded_number_of_subscriptions(api, monkeypatch):
    monkeypatch.setattr(ws_session, "MAX_SUBSCRIPTIONS", 2)
    project = api.project()
    with connected(api) as socket:
        subscribed(socket, channel="hitl")
        subscribed(socket, channel="queue_status")
        again = socket.ask(type="subscribe", channel="hitl", since=api.position())  # replaces
        refused = socket.ask(type="subscribe", channel="project_updates", project_id=project["id"])
    assert again["type"] == "subscribed"
    assert refused["data"]["code"] == "TOO_MANY_SUBSCRIPTIONS"


def test_an_unsubscribed_channel_stops_and_seed_002s_subscribe_works(api):
    project = api.project()
    with connected(api) as socket:
        socket.send(event="subscribe", data={"projectId": project["id"]})  # seed 002's shape
        ack = socket.receive()
        assert ack["type"] == "subscribed" and ack["data"]["channel"] == "project_updates"
        gone = socket.ask(type="unsubscribe", channel="project_updates", project_id=project["id"])
        assert gone["type"] == "unsubscribed"
        api.task(project["id"])
        subscribed(socket, channel="queue_status")
        queued = api.ok("POST", f"/api/tasks/{api.task(project['id'])['id']}/execute", 202)
        first = socket.receive()
    assert first["subscription"] == "queue_status"  # nothing came of the project any more
    assert first["position"] == queued["meta"]["position"]


# ---- across replicas and over NATS -------------------------------------------------------------


@contextmanager
def two_replicas(settings: Settings) -> Iterator[tuple[TestClient, Starlette, Starlette]]:
    """Two apps on one store, served under ``/one`` and ``/two`` on one event loop, sharing one
    in-process bus (as replicas share NATS); only ``one`` relays and runs projections."""
    migrate(settings)
    one = create_app(settings)
    two = create_app(msgspec.structs.replace(settings, run_projections=False, run_relay=False))

    @asynccontextmanager
    async def both(_: Starlette) -> AsyncIterator[None]:
        async with one.router.lifespan_context(one), two.router.lifespan_context(two):
            yield

    front = Starlette(routes=[Mount("/one", one), Mount("/two", two)], lifespan=both)
    with TestClient(front, raise_server_exceptions=False) as client:
        api_role(two).services.bus = api_role(one).services.bus
        yield client, one, two


def test_a_client_of_one_replica_sees_what_another_replica_wrote(settings):
    with two_replicas(ws_settings(settings)) as (client, one, two):
        response = client.post(
            "/one/api/auth/token",
            json={"team_id": "default", "role": "admin"},
            headers={"X-Admin-Key": ADMIN_KEY},
        )
        headers = {"Authorization": f"Bearer {response.json()['data']['access_token']}"}
        project = client.post("/one/api/projects/", json={"name": "Web"}, headers=headers)
        project_id = project.json()["data"]["id"]
        with client.websocket_connect("/two/ws/s-2", headers=headers) as session:
            socket = Socket(session)
            assert socket.receive()["type"] == "connected"
            ack = subscribed(socket, channel="project_updates", project_id=project_id, since=0)
            body = {"title": "Add login", "project_id": project_id}
            task = client.post("/one/api/tasks/", json=body, headers=headers)
            messages = socket.events_until(written_at(task))
    assert ack["since"] == 0
    assert [m["data"]["event"] for m in messages] == ["project.created", "task.created"]
    assert messages[-1]["data"]["task_id"] == task.json()["data"]["id"]


def test_events_reach_a_socket_through_nats_jetstream(settings, nats_url, nats_stream):
    stream, prefix = nats_stream
    with serving(ws_settings(settings)) as api:
        with relaying(api.client, NatsBus(nats_url, stream, prefix=prefix)):
            project = api.project()
            before = api.position()
            with connected(api) as socket:
                replayed = subscribed(
                    socket, channel="project_updates", project_id=project["id"], since=before - 1
                )
                task = api.task(project["id"])
                last = api.client.patch(f"/api/tasks/{task['id']}", json={"title": "Add logout"})
                messages = socket.events_until(written_at(last))
        expected = stored(api, before - 1, lambda e: e.aggregate_id in (project["id"], task["id"]))
    assert replayed["since"] == before - 1
    assert [m["position"] for m in messages] == expected
    assert [m["data"]["event"] for m in messages][-2:] == ["task.created", "task.updated"]


def test_the_sockets_of_a_process_share_one_nats_subscription_per_team(
    settings, nats_url, nats_stream
):
    """Three sockets of one team and one of another: two live subscriptions on the bus, every
    socket hears its team's event, and the last sockets to leave release them."""
    stream, prefix = nats_stream
    with serving(ws_settings(settings)) as api:
        with relaying(api.client, NatsBus(nats_url, stream, prefix=prefix)):
            project = api.project()
            with ExitStack() as stack:
                mine = [stack.enter_context(connected(api)) for _ in range(3)]
                theirs = stack.enter_context(connected(api, team="other"))
                for socket in mine:
                    subscribed(socket, channel="project_updates", project_id=project["id"])
                subscribed(theirs, channel="queue_status")
                hub = api.role.sockets.hub
                assert hub.subscriptions == 2
                task = api.task(project["id"])
                head = api.position()
                heard = [socket.events_until(head) for socket in mine]
            deadline = time.monotonic() + WAIT
            while hub.subscriptions and time.monotonic() < deadline:
                time.sleep(0.02)  # the server ends the closed sockets' sessions
            assert hub.subscriptions == 0
    assert all(h[-1]["data"]["task_id"] == task["id"] for h in heard)
