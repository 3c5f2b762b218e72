"""Request counters and latency buckets, exposed as Prometheus text on /metrics."""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.latency_sum = 0.0

    def observe(self, method: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, status)] += 1
            self.latency_sum += seconds
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    self.buckets[i] += 1
            self.buckets[-1] += 1

    def summary(self) -> dict[str, float]:
        with self._lock:
            total = sum(self.requests.values())
            errors = sum(n for (_, status), n in self.requests.items() if status >= 500)
            mean = self.latency_sum / total if total else 0.0
        return {
            "requests_total": total,
            "error_rate": round(errors / total, 4) if total else 0.0,
            "average_response_time": round(mean * 1000, 2),
        }

    def prometheus(self, head: int, projected: int) -> str:
        lines = [
            "# HELP taskwarden_http_requests_total HTTP requests by method and status.",
            "# TYPE taskwarden_http_requests_total counter",
        ]
        with self._lock:
            for (method, status), count in sorted(self.requests.items()):
                lines.append(
                    f'taskwarden_http_requests_total{{method="{method}",status="{status}"}} {count}'
                )
            lines += [
                "# HELP taskwarden_http_request_duration_seconds Request latency.",
                "# TYPE taskwarden_http_request_duration_seconds histogram",
            ]
            for bound, count in zip(BUCKETS, self.buckets, strict=False):
                lines.append(
                    f'taskwarden_http_request_duration_seconds_bucket{{le="{bound}"}} {count}'
                )
            lines.append(
                f'taskwarden_http_request_duration_seconds_bucket{{le="+Inf"}} {self.buckets[-1]}'
            )
            lines.append(f"taskwarden_http_request_duration_seconds_sum {self.latency_sum:.6f}")
            lines.append(f"taskwarden_http_request_duration_seconds_count {self.buckets[-1]}")
        lines += [
            "# HELP taskwarden_log_position Position of the newest event in the log.",
            "# TYPE taskwarden_log_position gauge",
            f"taskwarden_log_position {head}",
            "# HELP taskwarden_projection_position Position the read model has applied.",
            "# TYPE taskwarden_projection_position gauge",
            f"taskwarden_projection_position {projected}",
            "# HELP taskwarden_projection_lag Events written but not yet in the read model.",
            "# TYPE taskwarden_projection_lag gauge",
            f"taskwarden_projection_lag {max(0, head - projected)}",
        ]
        return "\n".join(lines) + "\n"


CONSUMER_GAUGES = (
    ("position", "gauge", "Position each consumer of the log has reached."),
    ("lag", "gauge", "Positions each consumer of the log is behind its head."),
    ("attempts", "gauge", "Failed attempts on the event each consumer is failing on."),
    ("quarantined", "counter", "Events each consumer quarantined since this process started."),
)


def consumer_metrics(statuses: list[dict[str, Any]]) -> str:
    """Per consumer of the log (application/consumer_state.py): position, lag, attempts and the
    quarantine counter, labelled ``consumer``."""
    lines: list[str] = []
    for field, kind, text in CONSUMER_GAUGES:
        name = f"taskwarden_consumer_{field}" + ("_total" if kind == "counter" else "")
        lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        for status in statuses:
            if status[field] is not None:
                lines.append(f'{name}{{consumer="{status["name"]}"}} {int(status[field])}')
    return "\n".join(lines) + "\n"


class MeasureRequests:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.metrics.observe(scope["method"], status, time.perf_counter() - started)
