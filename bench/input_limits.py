"""What the input limits (application/limits.py) add to reading a body, beside msgspec alone.

    .venv/bin/python bench/input_limits.py

For each body: the time of ``msgspec.json.decode(raw, type=CreateTask)`` (what a route did before
the limits) and of ``limits.decode(raw, CreateTask)`` (what it does now), in microseconds per
body, best of five runs. The small bodies are the create path: they take the fast path (a few
``bytes`` searches). The large ones (about 0.5 to 1 MiB, the body limit) take the slow path: the
depth scan on the raw bytes, an untyped decode and a walk over it, then the typed decode.
"""

from __future__ import annotations

import json
import timeit
from collections.abc import Callable
from typing import Any

import msgspec

from application import limits
from application.commands import CreateTask

PROJECT = "9469d08e-f59e-4039-b33c-8c591b1abff3"


def body(**fields: Any) -> bytes:
    return json.dumps({"title": "Add login", "project_id": PROJECT, **fields}).encode()


BODIES = {
    "minimal create (60 B)": body(),
    "typical create (300 B)": body(
        description="Users log in with [email] and {password}",
        priority="high",
        tags=["auth", "web"],
        metadata={"ticket": "WEB-12", "estimate": [1, 2, 3], "owner": {"team": "web"}},
    ),
    "create, 1,000 metadata keys (20 KB)": body(metadata={f"key{n}": n for n in range(1_000)}),
    "create, 900 KB of metadata strings": body(metadata={"notes": ["x" * 90_000] * 10}),
    "create, 20,000 small objects (0.5 MB)": body(
        metadata={f"k{n}": [{"a": i, "b": "[x]"} for i in range(1_000)] for n in range(20)}
    ),
    "create, nested 64 levels 4,000 times (0.5 MB)": body(
        metadata={
            f"k{n}": json.loads("[" * 61 + ",".join(["[]"] * 200) + "]" * 61) for n in range(20)
        }
    ),
}


def best(run: Callable[[], Any], raw: bytes) -> float:
    number = max(1, 200_000 // len(raw))
    return min(timeit.repeat(run, number=number, repeat=5)) / number * 1e6


def main() -> None:
    print(f"{'body':48} {'msgspec':>10} {'limits':>10} {'added':>10}")
    for name, raw in BODIES.items():
        alone = best(lambda raw=raw: msgspec.json.decode(raw, type=CreateTask), raw)
        held = best(lambda raw=raw: limits.decode(raw, CreateTask), raw)
        print(f"{name:48} {alone:8.1f}us {held:8.1f}us {held - alone:8.1f}us")


if __name__ == "__main__":
    main()
