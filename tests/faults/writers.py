"""Client threads that create tasks while the test breaks things, as a careful client would.

Each client creates its tasks one after another, as many as the test allows so far, each with an
``Idempotency-Key`` of its own (the key is also the title). A request that gets no answer
(connection refused or reset) or a 503 is sent again, same key and body, until it is answered 201
or the deadline passes. Every answer is recorded per key, so the test can tell what a client was
told: which keys were acknowledged, with which task ids, and whether anything else (a 500, a
timeout) ever came back.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.faults.api import Api

RETRY_PAUSE = 0.2  # seconds between a failed attempt and the next (a client's backoff)
NO_ANSWER = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


@dataclass
class Answer:
    status: int | None  # None: no answer
    error: str = ""  # the error code in the envelope, or the transport error
    task_id: str | None = None
    position: int | None = None
    replayed: bool = False
    seconds: float = 0.0  # how long the answer took (reported, never asserted)


@dataclass
class Key:
    key: str
    answers: list[Answer] = field(default_factory=list)

    @property
    def created(self) -> list[Answer]:
        return [a for a in self.answers if a.status == 201]

    @property
    def acknowledged(self) -> bool:
        return bool(self.created)


class Writers:
    def __init__(
        self,
        api: Api,
        project_id: str,
        *,
        clients: int = 4,
        per_client: int = 40,
        name: str = "w",
        deadline: float = 180.0,
        allowed: int | None = None,
    ) -> None:
        self.api = api
        self.project_id = project_id
        self.keys = {
            f"{name}{c}-{i}": Key(f"{name}{c}-{i}")
            for c in range(clients)
            for i in range(per_client)
        }
        self._clients = clients
        self._per_client = per_client
        self._name = name
        self._deadline = time.monotonic() + deadline
        self._done = threading.Condition()
        self._acknowledged = 0
        self._allowed = allowed  # keys the clients may begin in all (None: every one)
        self._begun = 0
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    # ---- running ------------------------------------------------------------------------

    def start(self) -> Writers:
        for c in range(self._clients):
            keys = [self.keys[f"{self._name}{c}-{i}"] for i in range(self._per_client)]
            thread = threading.Thread(target=self._client, args=(keys,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def allow(self, count: int | None) -> None:
        """Lets the clients begin ``count`` keys in all (None: every one): the test holds writes
        back so that some are still to come at each fault, however fast the others went."""
        with self._done:
            self._allowed = count
            self._done.notify_all()

    def allow_more(self, count: int) -> int:
        """Lets the clients begin ``count`` more keys; the allowance now."""
        with self._done:
            self._allowed = (self._allowed or 0) + count
            self._done.notify_all()
            return self._allowed

    def _begin(self) -> bool:
        """Waits until one more key may begin; False once the writers are stopped."""
        with self._done:
            while self._allowed is not None and self._begun >= self._allowed:
                if self._stop.is_set():
                    return False
                self._done.wait(0.5)
            self._begun += 1
            return not self._stop.is_set()

    def _client(self, keys: list[Key]) -> None:
        with httpx.Client() as client:
            for key in keys:
                if not self._begin():
                    return
                while not self._stop.is_set() and time.monotonic() < self._deadline:
                    began = time.monotonic()
                    answer = self._attempt(client, key.key)
                    answer.seconds = time.monotonic() - began
                    key.answers.append(answer)
                    if answer.status == 201:
                        with self._done:
                            self._acknowledged += 1
                            self._done.notify_all()
                        break
                    time.sleep(RETRY_PAUSE)

    def _attempt(self, client: httpx.Client, key: str) -> Answer:
        body = {"title": key, "project_id": self.project_id}
        try:
            response = self.api.call(
                "POST", "/api/tasks/", body, {"Idempotency-Key": key}, client=client
            )
        except httpx.TimeoutException as error:
            return Answer(None, f"timeout: {type(error).__name__}")
        except NO_ANSWER as error:
            return Answer(None, type(error).__name__)
        return _answer(response)

    def wait_acknowledged(self, count: int, timeout: float = 120.0) -> None:
        """Returns once ``count`` keys in all were acknowledged."""
        deadline = time.monotonic() + timeout
        with self._done:
            while self._acknowledged < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not any(t.is_alive() for t in self._threads):
                    raise AssertionError(
                        f"{self._acknowledged} of {count} writes acknowledged; "
                        f"answers so far: {self.statuses()}"
                    )
                self._done.wait(min(remaining, 1.0))

    @property
    def acknowledged(self) -> int:
        with self._done:
            return self._acknowledged

    def join(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stop.set()
        assert not any(t.is_alive() for t in self._threads), "a client thread did not end"

    def stop(self) -> None:
        self._stop.set()

    # ---- what the clients were told ------------------------------------------------------

    def statuses(self) -> Counter[str]:
        """How often each answer came: ``201``, ``503 DATABASE_ERROR``, ``none ConnectError``."""
        return Counter(
            f"{a.status or 'none'} {a.error}".strip()
            for key in list(self.keys.values())
            for a in list(key.answers)
        )

    def unexpected(self, allowed: set[int]) -> list[tuple[str, Answer]]:
        """Answers with a status outside ``allowed``, and timeouts (a hang)."""
        return [
            (key.key, a)
            for key in self.keys.values()
            for a in key.answers
            if (a.status is not None and a.status not in allowed) or a.error.startswith("timeout")
        ]

    def summary(self) -> str:
        """The answers by kind, the replays among the 201s, and the slowest answer."""
        answers = [a for key in self.keys.values() for a in key.answers]
        replays = sum(a.replayed for a in answers)
        slowest = max((a.seconds for a in answers), default=0.0)
        return f"answers {dict(self.statuses())}, {replays} replays, slowest {slowest:.1f} s"

    def acknowledged_ids(self) -> dict[str, str]:
        """Each acknowledged key's task id (the test checks that a key never got two)."""
        return {k: key.created[0].task_id or "" for k, key in self.keys.items() if key.acknowledged}

    def highest_position(self) -> int:
        return max((a.position or 0 for key in self.keys.values() for a in key.created), default=0)


def _answer(response: httpx.Response) -> Answer:
    try:
        envelope: Any = response.json()
    except ValueError:
        return Answer(response.status_code, "not JSON: " + response.text[:200])
    if response.status_code == 201:
        return Answer(
            201,
            task_id=envelope["data"]["id"],
            position=int(envelope["meta"]["position"]),
            replayed=response.headers.get("idempotent-replayed") == "true",
        )
    error = (envelope or {}).get("error") or {}
    return Answer(response.status_code, str(error.get("code", "")))
