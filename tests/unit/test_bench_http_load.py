"""The HTTP load benchmark's own logic (bench/http_load.py): its options, the process figures it
reads from /proc, and the issue's targets it prints as met or NOT met."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from bench import http_load
from bench.wrk import WrkFigures


def test_defaults_and_quick() -> None:
    args = http_load.parse_args([])
    assert (args.store, args.connections, args.duration, args.tasks) == (
        "both",
        [16, 64],
        8.0,
        2500,
    )
    quick = http_load.parse_args(["--quick", "--connections", "4"])
    assert (quick.connections, quick.duration, quick.warmup, quick.tasks) == ([4], 1.0, 0.0, 300)


@pytest.mark.parametrize(
    "argv",
    [
        ["--connections", "0"],
        ["--connections", ","],
        ["--connections", "sixteen"],
        ["--tasks", "0"],
        ["--store", "mysql"],
        ["--client", "ab"],
    ],
)
def test_bad_options_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        http_load.parse_args(argv)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_memory_and_threads_of_this_process() -> None:
    started = threading.Event()
    stop = threading.Event()

    def wait() -> None:
        started.set()
        stop.wait()

    thread = threading.Thread(target=wait)
    thread.start()
    started.wait()
    try:
        memory = http_load.memory_mb(os.getpid())
        assert memory is not None
        rss, peak = memory
        assert 0 < rss <= peak
        count = http_load.threads(os.getpid())
        assert count is not None
        assert count >= 2
    finally:
        stop.set()
        thread.join()


def test_a_process_that_is_gone_has_no_figures() -> None:
    gone = 2**22 + 1  # above Linux's pid_max limit: never a live process
    assert http_load.memory_mb(gone) is None
    assert http_load.threads(gone) is None
    assert http_load.reset_peak(gone) is False


def _run(rate: float, p95: float = 1.0, p99: float = 1.0, cpu: float = 0.1, peak: float = 90.0):
    figures = WrkFigures(int(rate * 8), 8.0, 0, p95 / 2, p95, p99, p99)
    return http_load.Run(figures, cpu_ms=cpu, peak_mb=peak, rss_mb=peak)


def test_targets_met_and_not_met() -> None:
    bare = _run(3000)
    rows = [
        http_load.Row("postgres", "create", 64, _run(1200, p99=40, cpu=0.4, peak=120), bare),
        http_load.Row("postgres", "list", 16, _run(1100, p95=9), bare),
        http_load.Row("postgres", "list searched", 16, _run(200, p95=25), bare),
        http_load.Row("sqlite", "create", 16, _run(300, cpu=3.0, peak=200), bare),
    ]
    lines = http_load.targets(rows, 2500)
    assert "create server CPU <= 0.45 ms/request (postgres, 64 connections): 0.40 ms, met" in lines
    assert "create req/s / bare req/s >= 0.33 (postgres, 64 connections): 0.400, met" in lines
    assert "create p99 < 50 ms at 64 connections on Postgres: 40.0 ms, met" in lines
    assert any("list req/s >= 3x" in line and line.endswith("1,100, met") for line in lines)
    # a p95 under load is no listing target: bench/listings.py measures those, one client
    assert not any("ms, met" in line or "ms, NOT met" in line for line in lines if "list" in line)
    assert any("measured by bench/listings.py" in line for line in lines)
    assert (
        "create server CPU <= 0.45 ms/request (sqlite, 16 connections): 3.00 ms, NOT met" in lines
    )
    assert any("(postgres, peak VmHWM over every run): 120.0 MB, met" in line for line in lines)
    assert any("(sqlite, peak VmHWM over every run): 200.0 MB, NOT met" in line for line in lines)


def test_report_rows_put_the_bare_figures_beside() -> None:
    row = http_load.Row("sqlite", "get", 16, _run(300, cpu=2.0), _run(3000, cpu=0.2))
    [cells] = http_load.report_rows([row])
    assert cells[:5] == ["get", 16, 300.0, 3000.0, 0.1]
    assert cells[10:12] == [2.0, 0.2]
    gone = http_load.Run(WrkFigures(0, 8.0, 0, 0, 0, 0, 0), cpu_ms=None, peak_mb=None, rss_mb=None)
    [dashes] = http_load.report_rows([http_load.Row("sqlite", "get", 16, gone, gone)])
    assert dashes[10:14] == ["-", "-", "-", "-"]
