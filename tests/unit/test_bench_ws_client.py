"""The fan-out benchmark's WebSocket client (bench/ws_client.py) records every event message once,
with its position, however the server's frames are cut into reads: one frame per read (read in
place), a frame split across reads, several frames in one read."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bench.ws_client import Arrivals, WsClient
from interfaces.ws.frames import text_frame

UPGRADE = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"


def event(position: int, size: int) -> bytes:
    text = json.dumps({"type": "task_update", "position": position, "data": {"pad": "x" * size}})
    return text_frame(text)


def received(chunks: list[bytes]) -> dict[int, int]:
    async def scenario() -> dict[int, int]:
        arrivals = Arrivals(1)
        client = WsClient("/ws/x", None, arrivals)
        for chunk in [UPGRADE, *chunks]:
            client.data_received(chunk)
        return {position: len(times) for position, times in arrivals.times.items()}

    return asyncio.run(scenario())


def _cut(data: bytes, at: list[int]) -> list[bytes]:
    edges = [0, *at, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@pytest.mark.parametrize("size", [10, 600, 70_000])  # the three length encodings
def test_one_frame_per_read(size: int):
    assert received([event(1, size), event(2, size)]) == {1: 1, 2: 1}


@pytest.mark.parametrize("size", [10, 600, 70_000])
def test_frames_split_and_joined_across_reads(size: int):
    wire = event(1, size) + event(2, size) + event(3, size)
    chunks: list[Any] = _cut(wire, [1, 3, len(wire) // 2, len(wire) - 2])
    assert received(chunks) == {1: 1, 2: 1, 3: 1}


def test_a_read_holding_a_frame_and_the_start_of_the_next():
    first, second = event(1, 600), event(2, 600)
    assert received([first + second[:5], second[5:]]) == {1: 1, 2: 1}
