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

BIN = Path(sys.executable).parent / "taskwarden"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
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


def _serve(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "TASKWARDEN_DATA_DIR": str(data_dir)}
    env.pop("TASKWARDEN_DATABASE_URL", None)
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
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def test_serve_in_embedded_mode_keeps_data_across_a_restart(tmp_path):
    process, url = _serve(tmp_path)
    try:
        project = _request(url + "/api/projects/", {"name": "Kept"})["data"]
        task = _request(url + "/api/tasks/", {"title": "Survive", "project_id": project["id"]})
    finally:
        _stop(process)
    process, url = _serve(tmp_path)
    try:
        again = _request(url + f"/api/tasks/{task['data']['id']}")["data"]
        assert again["title"] == "Survive"
        position = task["meta"]["position"]
        listing = _request(url + f"/api/tasks/?min_position={position}")["data"]
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
    assert "task.created" in history.stdout and "anonymous" in history.stdout


def test_migrate_then_history_of_a_missing_task_fails_cleanly(tmp_path):
    env = {**os.environ, "TASKWARDEN_DATA_DIR": str(tmp_path)}
    migrated = subprocess.run(
        [str(BIN), "migrate"], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert "migrated" in migrated.stdout
    missing = subprocess.run(
        [str(BIN), "history", "00000000-0000-0000-0000-000000000000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1 and "not found" in missing.stderr
