"""Fixtures of the fault suite (``make faults``): a temporary directory removed afterwards, the
processes a test starts (all killed at the end, their output shown when the test failed), and
private Postgres and NATS servers that the tests may stop and kill."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.private_nats import PrivateNats
from tests.faults.private_postgres import PrivatePostgres
from tests.faults.processes import Processes


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tw-faults-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def processes(workdir: Path, request: pytest.FixtureRequest) -> Iterator[Processes]:
    logs = workdir / "logs"
    logs.mkdir()
    started = Processes(logs)
    try:
        yield started
    finally:
        started.close()
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            print("\n".join(started.tails()))  # shown with the failure


@pytest.fixture
def private_postgres(workdir: Path) -> Iterator[PrivatePostgres]:
    root = workdir / "postgres"
    root.mkdir()
    server = PrivatePostgres(root)
    server.init()
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def private_nats(workdir: Path) -> Iterator[PrivateNats]:
    server = PrivateNats(workdir / "nats")
    server.start()
    try:
        yield server
    finally:
        server.close()
