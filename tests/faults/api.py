"""HTTP to a Taskwarden API under fault: its address may change when it is restarted, and every
call has a client timeout, so that a hang shows as a timeout instead of a stuck test."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

ADMIN_KEY = "fault-suite-admin-key-0123456789abcdef"
CLIENT_TIMEOUT = 30.0  # seconds: longer than anything the API should take, even with a store down


def environment(data_dir: str, **settings: str) -> dict[str, str]:
    """The environment of every process of a test: the caller's minus its TASKWARDEN_*
    settings, one JWT secret and admin key for all, rate limits off, no in-process workers."""
    import os  # noqa: PLC0415

    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKWARDEN_")}
    return env | {
        "TASKWARDEN_DATA_DIR": data_dir,
        "TASKWARDEN_JWT_SECRET": "fault-suite-jwt-secret-" + "x" * 40,
        "TASKWARDEN_ADMIN_KEY": ADMIN_KEY,
        "TASKWARDEN_RATE_LIMIT_ENABLED": "0",
        "TASKWARDEN_WORKERS": "0",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


class Api:
    def __init__(self, url: Callable[[], str], token: str = "") -> None:
        self.url = url
        self.token = token

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        found = {"authorization": f"Bearer {self.token}"} if self.token else {}
        return found | (extra or {})

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        client: httpx.Client | None = None,
    ) -> httpx.Response:
        send = client.request if client is not None else httpx.request
        return send(
            method,
            self.url() + path,
            json=body,
            headers=self.headers(headers),
            timeout=CLIENT_TIMEOUT,
        )

    def data(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        """The answer's ``data``; fails on any other status than ``expect``."""
        response = self.call(method, path, body)
        assert response.status_code == expect, f"{method} {path}: {response.text}"
        return response.json()["data"]

    def write(self, path: str, body: Any, expect: int = 201) -> tuple[Any, int]:
        """A write's ``data`` and ``meta.position``."""
        response = self.call("POST", path, body)
        assert response.status_code == expect, f"POST {path}: {response.text}"
        answer = response.json()
        return answer["data"], int(answer["meta"]["position"])

    def mint(self, role: str, team: str = "default") -> Api:
        """An Api with a token of ``role`` minted with the admin key."""
        response = httpx.post(
            self.url() + "/api/auth/token",
            json={"team_id": team, "role": role},
            headers={"X-Admin-Key": ADMIN_KEY},
            timeout=CLIENT_TIMEOUT,
        )
        assert response.status_code == 201, response.text
        return Api(self.url, response.json()["data"]["access_token"])

    def project_tasks(self, project_id: str, min_position: int) -> list[dict[str, Any]]:
        """Every task of the project in the listing (read model) once it has reached
        ``min_position``, all pages; a 503 READ_MODEL_BEHIND is asked again for a minute."""
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            query = f"?project_id={project_id}&min_position={min_position}"
            data = self._listing(f"/api/tasks/{query}&page={page}&page_size=100")
            items += data["items"]
            if not data["has_next"]:
                return items
            page += 1

    def _listing(self, path: str) -> Any:
        deadline = time.monotonic() + 60
        while True:
            response = self.call("GET", path)
            if response.status_code != 503 or time.monotonic() > deadline:
                assert response.status_code == 200, f"GET {path}: {response.text}"
                return response.json()["data"]
            time.sleep(0.5)  # READ_MODEL_BEHIND: the read model catches up after a restart

    def history(self, task_id: str) -> list[dict[str, Any]]:
        """The task's own events (no items or deliveries: their positions are not the task's),
        page after page."""
        entries: list[dict[str, Any]] = []
        after: int | None = 0
        while after is not None:
            query = f"include=task,reviews,usage,executions&limit=1000&after={after}"
            page = self.data("GET", f"/api/tasks/{task_id}/history?{query}")
            entries += page["history"]
            after = page["next_after"]
        return entries


def wait_for(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """Polls ``check`` until it answers something true; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)
