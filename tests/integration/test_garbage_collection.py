"""A served process sets its garbage collector for a long run once its role has started; an app
built without ``settle`` (a test's) leaves the process's collector as it was. Each case runs in
a fresh interpreter: the collector is the process's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infrastructure.garbage_collection import OLDER, YOUNG

ROOT = Path(__file__).resolve().parents[2]

SERVE = """
import gc, json, tempfile
from pathlib import Path
from starlette.testclient import TestClient
from infrastructure.settings import Settings
from interfaces.http.app import create_app
before = gc.get_threshold()
with tempfile.TemporaryDirectory() as data_dir:
    app = create_app(Settings(data_dir=Path(data_dir)), migrate_first=True, settle=SETTLE)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        found = {"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}
print(json.dumps(found))
"""


def _served(settle: bool) -> dict[str, list[int] | int]:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", SERVE.replace("SETTLE", str(settle))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_served_app_settles_the_collector_once_its_role_has_started() -> None:
    found = _served(settle=True)
    assert found["before"] == [700, 10, 10]
    assert found["after"] == [YOUNG, OLDER, OLDER]
    assert isinstance(found["frozen"], int) and found["frozen"] > 10_000  # modules, the role


def test_a_tests_app_leaves_the_collector_as_it_was() -> None:
    found = _served(settle=False)
    assert found["after"] == found["before"] == [700, 10, 10]
    assert found["frozen"] == 0
