"""The fan-out benchmark's verdicts (bench/fanout_ws.py): the app's p99 at 1,000 sockets in every
round, and the median over the rounds of its ratio to the bare broadcast's p99."""

from __future__ import annotations

from typing import Any

from bench import fanout
from bench.fanout_ws import WS_HEADERS, ws_verdict


def row(store: str, app_p99: float, bare_p99: float, sockets: int = 1000) -> list[Any]:
    """A result row as ``ws_row`` makes it (only the cells the verdicts read matter)."""
    cells: dict[str, Any] = dict.fromkeys(WS_HEADERS, 0.0)
    cells |= {"store": store, "sockets": sockets, "app p99 ms": app_p99, "missing": 0}
    cells |= {"bare p99 ms": bare_p99, "app/bare p99": app_p99 / bare_p99}
    return [cells[name] for name in WS_HEADERS]


def test_the_ratio_verdict_is_the_median_of_the_rounds() -> None:
    rows = [row("sqlite", 12.0, 10.0), row("sqlite", 30.0, 10.0), row("sqlite", 11.0, 10.0)]
    lines = ws_verdict(rows)
    assert (
        "target: app/bare p99 <= 1.2 at 1,000 sockets (sqlite), median of 3 round(s): "
        "1.20 (1.20, 3.00, 1.10), met"
    ) in lines
    assert sum("p99 < 50 ms" in line and line.endswith(", met") for line in lines) == 3


def test_a_median_over_the_target_is_not_met_and_stores_are_judged_apart() -> None:
    rows = [row("sqlite", 9.0, 10.0), row("nats", 13.0, 10.0), row("nats", 14.0, 10.0)]
    lines = ws_verdict(rows)
    assert any("(sqlite), median of 1 round(s): 0.90 (0.90), met" in line for line in lines)
    assert any("(nats), median of 2 round(s): 1.35 (1.30, 1.40), NOT met" in line for line in lines)


def test_other_socket_counts_have_no_verdict() -> None:
    assert ws_verdict([row("sqlite", 5.0, 1.0, sockets=100)]) == [
        "target not measured (needs 1000 in --sockets)"
    ]


def test_rounds_default_to_one_and_are_taken_from_the_command_line() -> None:
    assert fanout.parse(["--part", "websocket"]).rounds == 1
    assert fanout.parse(["--part", "websocket", "--rounds", "5"]).rounds == 5
