"""Threads released at once: what each call returned, or the exception it raised, for a test
of what happens when several callers arrive together."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def together(count: int, call: Callable[[], T]) -> list[T | BaseException]:
    """``call`` on ``count`` threads started behind one barrier; each one's outcome, in the
    order they finished."""
    barrier = threading.Barrier(count)
    outcomes: list[T | BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            outcomes.append(call())
        except BaseException as error:  # noqa: BLE001 - the caller's assertion reports it
            outcomes.append(error)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
