"""The API process keeps at most two malloc arenas (``infrastructure/malloc_arenas.py``): eight
threads alive at once, each allocating, share them; without the limit each has one of its own.
Counted by glibc's own ``malloc_stats`` (one ``Arena N:`` line each), in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infrastructure import malloc_arenas

ROOT = Path(__file__).resolve().parents[2]
THREADS = 8
PROGRAM = f"""
import ctypes, sys, threading
from infrastructure import malloc_arenas
print(malloc_arenas.limit() if sys.argv[1] == "limited" else None)
gate = threading.Barrier({THREADS})
def work():
    gate.wait()
    kept = [bytes(4096) for _ in range(100)]  # past pymalloc's small objects: malloc's own
    gate.wait()
threads = [threading.Thread(target=work) for _ in range({THREADS})]
for t in threads: t.start()
for t in threads: t.join()
ctypes.CDLL(None).malloc_stats()
"""

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's arenas: Linux only"
)


def arenas(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    done = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", PROGRAM, mode],
        cwd=ROOT,
        env=(env or {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"})
        | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    count = sum(line.startswith("Arena ") for line in done.stderr.splitlines())
    return done.stdout.strip(), count


def test_the_limit_keeps_the_threads_in_two_arenas() -> None:
    assert arenas("limited") == ("True", malloc_arenas.API_ARENAS)


def test_without_it_each_thread_takes_an_arena_of_its_own() -> None:
    _, count = arenas("unlimited")
    assert count > malloc_arenas.API_ARENAS  # the test above could tell


def test_an_operators_malloc_arena_max_is_left_as_it_is() -> None:
    env = dict(os.environ) | {"MALLOC_ARENA_MAX": "3"}
    said, count = arenas("limited", env)
    assert said == "False"
    assert count == 3
