"""The threads a role's event loop hands blocking calls to, kept so that stopping the role can
wait for them before it closes what they read through.

``asyncio.to_thread`` (the relay, the webhook queue, the in-process bus, the consumers' checks
of the store) runs a call in the loop's default executor, and cancelling the task that awaits it
leaves the thread running: a check cancelled at shutdown went on reading the ledger while the
ledger closed its SQLite connection, and the process crashed. So a role installs its own
executor as the loop's default when it starts, and ``join`` waits for every call handed to it
after the role's tasks are stopped and before its services close. ``run_in_threadpool``
(anyio's threads: the routes, the workers, the WebSocket sessions) needs none of this: a
cancelled caller waits there until its thread is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("taskwarden.bootstrap")

JOIN_SECONDS = 30.0  # at most, then the role closes anyway (and says which threads still ran)


class Threads:
    def __init__(self, role: str, join_seconds: float = JOIN_SECONDS) -> None:
        self.prefix = f"taskwarden-{role}"
        self.join_seconds = join_seconds
        self._executor = ThreadPoolExecutor(thread_name_prefix=self.prefix)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: ThreadPoolExecutor | None = None

    def install(self) -> None:
        """On the role's event loop: its ``asyncio.to_thread`` calls run here from now on."""
        loop = asyncio.get_running_loop()
        self._loop, self._previous = loop, _default_executor(loop)
        loop.set_default_executor(self._executor)

    def alive(self) -> list[threading.Thread]:
        """The threads of this executor still alive (none once ``join`` has returned)."""
        return [t for t in threading.enumerate() if t.name.startswith(f"{self.prefix}_")]

    async def join(self) -> None:
        """Gives the loop back the executor it had before (what else runs on the loop, another
        role of a test, goes on), then waits (at most ``join_seconds``) until every call handed
        to these threads has returned. The role's tasks are stopped by then: nothing of theirs
        hands over anything new."""
        loop = asyncio.get_running_loop()
        if self._loop is loop and _default_executor(loop) is self._executor:
            loop.set_default_executor(
                self._previous or ThreadPoolExecutor(thread_name_prefix="asyncio")
            )
        self._loop = None
        finished: asyncio.Future[None] = loop.create_future()

        def shut_down() -> None:  # in a thread of its own: the executor's are the ones awaited
            self._executor.shutdown(wait=True)
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(_done, finished)

        threading.Thread(target=shut_down, name=f"{self.prefix}-join", daemon=True).start()
        try:
            async with asyncio.timeout(self.join_seconds):
                await finished
        except TimeoutError:
            names = ", ".join(t.name for t in self.alive())
            log.warning("%s: still running after %g s: %s", self.prefix, self.join_seconds, names)


def _default_executor(loop: asyncio.AbstractEventLoop) -> ThreadPoolExecutor | None:
    """The loop's default executor (None until first used): asyncio sets it but has no getter."""
    found: ThreadPoolExecutor | None = getattr(loop, "_default_executor", None)
    return found


def _done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
