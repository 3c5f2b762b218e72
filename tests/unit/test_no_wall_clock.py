"""The domain and the application never read the clock themselves: the time comes from the
``Clock`` port (``application/ports.py``), given to aggregates as ``at`` by the handlers, which
read ``Store.clock``. Only ``infrastructure/clock.py`` reads the system's clock, so a test can move
time instead of waiting for it. This walks the code and fails on any other read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted([*(ROOT / "domain").rglob("*.py"), *(ROOT / "application").rglob("*.py")])

# dotted names (as written, or their last two parts) that read a clock
READS = frozenset(
    {
        "datetime.now",
        "datetime.utcnow",
        "datetime.today",
        "date.today",
        "time.time",
        "time.time_ns",
        "time.monotonic",
        "time.monotonic_ns",
        "time.perf_counter",
        "time.perf_counter_ns",
        "time.localtime",
        "time.gmtime",
        "datetime_now_with_tzinfo",  # eventsourcing's own helper
        "create_timestamp",  # eventsourcing's, on its events
    }
)
TIME_FUNCTIONS = frozenset(r.partition(".")[2] for r in READS if r.startswith("time."))
LOOPS = frozenset({"get_running_loop", "get_event_loop"})


def dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for an attribute chain on a name, else None."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def is_loop(node: ast.expr) -> bool:
    """An event loop: ``loop``, or ``asyncio.get_running_loop()`` and the like."""
    if isinstance(node, ast.Name):
        return node.id == "loop"
    if isinstance(node, ast.Call):
        name = dotted(node.func) or ""
        return name.rpartition(".")[2] in LOOPS
    return False


def clock_reads(source: str) -> list[tuple[int, str]]:
    """Every read of a clock in ``source`` (called or passed on, e.g. ``clock=time.time``)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            name = dotted(node)
            if name is not None and (name in READS or ".".join(name.split(".")[-2:]) in READS):
                found.append((node.lineno, name))
            elif node.attr == "time" and is_loop(node.value):
                found.append((node.lineno, "loop.time"))
        elif isinstance(node, ast.Name) and node.id in READS:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            names = [a.name for a in node.names if a.name in TIME_FUNCTIONS]
            found += [(node.lineno, f"time.{name}") for name in names]
    return sorted(set(found))


def test_there_are_modules_to_check() -> None:
    assert len(MODULES) >= 40


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_domain_or_application_module_reads_no_clock(path: Path) -> None:
    reads = [f"{path.name}:{line}: {name}" for line, name in clock_reads(path.read_text())]
    assert reads == [], "take the time from the Clock port (Store.clock, or at= given in)"


def test_the_check_finds_every_way_of_reading_a_clock() -> None:
    source = (
        "import asyncio, time, datetime as dt\n"
        "from datetime import UTC, date, datetime\n"
        "from time import monotonic\n"
        "def f(clock=time.time):\n"
        "    a = datetime.now(UTC)\n"
        "    b = dt.datetime.utcnow()\n"
        "    c = date.today()\n"
        "    d = time.monotonic() + time.perf_counter()\n"
        "    e = asyncio.get_running_loop().time()\n"
        "    loop = asyncio.get_event_loop()\n"
        "    g = loop.time()\n"
    )
    assert [name for _, name in clock_reads(source)] == [
        "time.monotonic",
        "time.time",
        "datetime.now",
        "dt.datetime.utcnow",
        "date.today",
        "time.monotonic",
        "time.perf_counter",
        "loop.time",
        "loop.time",
    ]


def test_the_check_leaves_time_that_is_given_alone() -> None:
    source = (
        "import time\n"
        "from datetime import UTC, datetime, timedelta\n"
        "def f(store, at: datetime, epoch: float):\n"
        "    time.sleep(0.01)\n"
        "    moment = store.clock.now() + timedelta(seconds=5)\n"
        "    then = datetime.fromtimestamp(epoch, UTC)\n"
        "    return store.clock.monotonic(), store.clock.time(), at.timestamp(), moment, then\n"
    )
    assert clock_reads(source) == []


def test_the_system_clock_is_where_the_reads_are() -> None:
    reads = {name for _, name in clock_reads((ROOT / "infrastructure" / "clock.py").read_text())}
    assert reads == {"datetime.now", "time.time", "time.monotonic"}
