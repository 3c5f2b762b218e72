"""The order every role stops in, so that nothing is closed under a thread still using it:

1. what runs on the event loop, each stopped and awaited, in the order the role names (its
   tasks end, though a call one of them handed to a thread may still be running);
2. its connections on the loop: the bus, the rate limiter;
3. the threads its tasks handed calls to (``threads.py``), every one finished;
4. the services: the projection runner (its thread joined), the relay's tracking, the read
   model, and the store (what its committer holds is written, then the ledger closes).

A step that fails is logged and the next ones run all the same; the first failure is raised
at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from interfaces.bootstrap.threads import Threads
from interfaces.services import Services

log = logging.getLogger("taskwarden.bootstrap")

Step = tuple[str, Callable[[], Awaitable[object]]]


async def stop_in_order(
    role: str, running: Sequence[Step], services: Services, threads: Threads
) -> None:
    failures: list[BaseException] = []
    for name, stop in [*running, *_closing(services, threads)]:
        log.debug("%s: stopping %s", role, name)
        try:
            await stop()
        except Exception as error:  # noqa: BLE001 - the other steps still run; raised below
            log.exception("%s: stopping %s failed", role, name)
            failures.append(error)
    if failures:
        raise failures[0]


def _closing(services: Services, threads: Threads) -> list[Step]:
    async def rate_limiter() -> None:
        if services.rate_limiter is not None:
            await services.rate_limiter.close()  # an async pool: on its loop

    async def close_services() -> None:
        services.close()  # on the loop: no thread is handed anything any more

    return [
        ("bus", services.bus.close),
        ("rate limiter", rate_limiter),
        ("threads", threads.join),
        ("services", close_services),
    ]
