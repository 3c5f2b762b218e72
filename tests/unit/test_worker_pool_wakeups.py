"""An idle worker never loses a wake-up (``interfaces/worker_pool.py``): a poke that lands while
its claim is reading the views, after the read, makes it claim again at once instead of sleeping
its whole idle interval (here an hour) with work queued. The backend is a twin whose first claim
finds nothing and is poked meanwhile, as the projection runner pokes once the view shows the new
execution; the test waits for the second claim, which only that poke can bring."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from infrastructure.settings import Settings
from interfaces.worker_pool import WorkerPool

AN_HOUR = 3600.0
WAIT = 30.0  # for the second claim; without the fix it comes after an hour


class PokedWhileClaiming:
    """Claims nothing; pokes the pool during the first claim, after "reading the views"."""

    def __init__(self) -> None:
        self.pool: WorkerPool | None = None
        self.claims = 0
        self.claimed_again = asyncio.Event()

    async def claim(self, worker_id: str) -> Any:
        self.claims += 1
        if self.claims == 1:
            await asyncio.sleep(0)  # the read of the views is done: nothing queued yet
            assert self.pool is not None
            self.pool.poke()  # the view moves on now
            await asyncio.sleep(0)  # the poke's callback runs before this claim returns
        else:
            self.claimed_again.set()
        return None


def test_a_poke_during_a_claim_that_found_nothing_makes_the_worker_claim_again(
    tmp_path: Path,
) -> None:
    async def scenario() -> int:
        backend = PokedWhileClaiming()
        pool = WorkerPool(backend, Settings(data_dir=tmp_path), {}, 1, idle=AN_HOUR)  # type: ignore[arg-type]
        backend.pool = pool
        pool.start()
        try:
            await asyncio.wait_for(backend.claimed_again.wait(), WAIT)
        finally:
            await pool.stop()
        return backend.claims

    assert asyncio.run(scenario()) >= 2
