"""The ``taskwarden`` command: serve (embedded), migrate, history; data survives a restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent / "taskwarden"
WAIT = 30  # seconds one answer or message may take on a loaded machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: dict | None = None, token: str | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        return json.loads(response.read())


def _wait_until_up(url: str, process: subprocess.Popen, deadline: float) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(
                f"server exited: {process.stdout.read() if process.stdout else ''}"
            )
        try:
            _request(url + "/health")
            return
        except OSError:
            time.sleep(0.1)  # polling a port that is not open yet: nothing to wait on
    raise AssertionError("server did not answer in time")


PASSWORD = "correct horse battery"


def _login(url: str, password: str = PASSWORD) -> str:
    body = {"username": "admin", "password": password}
    return _request(url + "/api/auth/login", body)["data"]["access_token"]


def _serve(data_dir: Path, password: str | None = PASSWORD) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "TASKWARDEN_DATA_DIR": str(data_dir)}
    env.pop("TASKWARDEN_DATABASE_URL", None)
    env.pop("TASKWARDEN_ADMIN_PASSWORD", None)
    if password:
        env["TASKWARDEN_ADMIN_PASSWORD"] = password
    process = subprocess.Popen(
        [str(BIN), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_until_up(url, process, time.monotonic() + 30)
    return process, url


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=WAIT)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.mark.slow
def test_serve_in_embedded_mode_keeps_data_across_a_restart(tmp_path):
    process, url = _serve(tmp_path)
    try:
        token = _login(url)
        project = _request(url + "/api/projects/", {"name": "Kept"}, token)["data"]
        body = {"title": "Survive", "project_id": project["id"]}
        task = _request(url + "/api/tasks/", body, token)
    finally:
        _stop(process)
    process, url = _serve(tmp_path)
    try:
        token = _login(url)
        again = _request(url + f"/api/tasks/{task['data']['id']}", token=token)["data"]
        assert again["title"] == "Survive"
        position = task["meta"]["position"]
        listing = _request(url + f"/api/tasks/?min_position={position}", token=token)["data"]
        assert [t["title"] for t in listing["items"]] == ["Survive"]
    finally:
        _stop(process)
    history = subprocess.run(
        [str(BIN), "history", task["data"]["id"]],
        env={**os.environ, "TASKWARDEN_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "task.created" in history.stdout and "user:" in history.stdout


@pytest.mark.slow
def test_serve_creates_the_first_admin_with_a_generated_password_shown_once(tmp_path):
    process, _ = _serve(tmp_path, password=None)
    _stop(process)
    first = process.stdout.read() if process.stdout else ""
    shown = [line for line in first.splitlines() if "created user admin" in line]
    assert len(shown) == 1
    password = shown[0].rsplit(": ", 1)[1].strip()
    process, url = _serve(tmp_path, password=None)
    try:
        assert _login(url, password)
    finally:
        _stop(process)
    second = process.stdout.read() if process.stdout else ""
    assert "created user admin" not in second


def test_serve_speaks_websocket_a_socket_hears_a_task_created_over_http(tmp_path):
    """``taskwarden serve`` under real uvicorn: the upgrade is accepted (uvicorn serves
    WebSockets only with a library it can import), the socket hears the create by position, and
    a frame over the body limit closes the socket with 1009, leaving the server serving."""
    from websockets.exceptions import ConnectionClosed  # noqa: PLC0415
    from websockets.sync.client import connect  # noqa: PLC0415

    process, url = _serve(tmp_path)
    ws_url = url.replace("http://", "ws://") + "/ws/cli-1"
    try:
        token = _login(url)
        project = _request(url + "/api/projects/", {"name": "Heard"}, token)["data"]
        with connect(ws_url, subprotocols=["bearer", token], open_timeout=WAIT) as ws:
            assert ws.subprotocol == "bearer"
            assert json.loads(ws.recv(timeout=WAIT))["type"] == "connected"
            subscribe = {"type": "subscribe", "channel": "project_updates", "id": "s1"}
            ws.send(json.dumps(subscribe | {"project_id": project["id"]}))
            assert json.loads(ws.recv(timeout=WAIT))["type"] == "subscribed"
            body = {"title": "Heard live", "project_id": project["id"]}
            created = _request(url + "/api/tasks/", body, token)
            position = created["meta"]["position"]
            message = json.loads(ws.recv(timeout=WAIT))
            while message.get("position", 0) < position:
                message = json.loads(ws.recv(timeout=WAIT))
            assert message["position"] == position
            assert message["data"]["task_id"] == created["data"]["id"]
        with connect(ws_url, subprotocols=["bearer", token], open_timeout=WAIT) as ws:
            ws.recv(timeout=WAIT)
            ws.send("x" * (1_048_576 + 1))
            try:
                while True:
                    ws.recv(timeout=WAIT)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 1009
        assert _request(url + "/health")["status"] == "ok"
    finally:
        _stop(process)
