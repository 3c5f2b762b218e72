"""A role stops in one order (``interfaces/bootstrap/shutdown.py``): its tasks, then the threads
those tasks handed calls to, then the services those calls read through. A check whose task was
cancelled goes on in its thread; closing the ledger under it crashed a process once."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from infrastructure.settings import Settings
from interfaces.bootstrap.api import ApiRole
from interfaces.services import migrate


def test_the_api_role_closes_the_store_only_after_the_thread_of_a_cancelled_check_returned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    settings = Settings(data_dir=tmp_path / "data", workers=0)  # SQLite, where it crashed
    migrate(settings)
    role = ApiRole.from_settings(settings)
    store, order, release = role.services.store, [], threading.Event()
    checked_in: list[str] = []

    def check() -> int:  # what /ready's lag and the consumers' "does the store answer" run
        checked_in.append(threading.current_thread().name)
        release.wait(60)
        try:
            return store.max_position()
        finally:
            order.append("check returned")

    close_store, join_threads = store.close, role.threads.join

    def closing_store() -> None:
        order.append("store closes")
        release.set()  # whatever the order, nothing is left waiting
        close_store()

    async def joining_threads() -> None:
        release.set()  # the role waits for its threads from here on: the check may return
        await join_threads()

    monkeypatch.setattr(store, "close", closing_store)
    monkeypatch.setattr(role.threads, "join", joining_threads)

    async def scenario() -> str:
        role.start()
        loop, entered = asyncio.get_running_loop(), asyncio.Event()

        def entering_check() -> int:
            loop.call_soon_threadsafe(entered.set)
            return check()

        checking = asyncio.ensure_future(asyncio.to_thread(entering_check))
        await entered.wait()
        checking.cancel()  # as a check that timed out: its thread goes on
        await role.stop()
        return await asyncio.to_thread(lambda: "the loop's own executor is back")

    after = asyncio.run(scenario())

    assert checked_in[0].startswith(role.threads.prefix)  # the role's thread, not the loop's own
    assert order == ["check returned", "store closes"]
    assert role.threads.alive() == []
    assert after == "the loop's own executor is back"
