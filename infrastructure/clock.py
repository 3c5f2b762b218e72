"""The system's clock behind the ``Clock`` port (``application/ports.py``): the one place the
domain's and the application's time comes from in a running process."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
