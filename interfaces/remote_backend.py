"""A worker's backend over REST: the same worker loop, talking to ``/api/workers`` of a server.

Requests carry the worker's credential (an agent-role API key or token of one team) and time out.
What failed to reach the server is sent again with a growing, jittered pause: a request that was
never sent (no connection) always, one that may have arrived only when sending it twice is
harmless (heartbeats, output chunks, the end); a 429 waits for its ``Retry-After``. Heartbeats are
sent every few seconds whatever the worker loop's pace, to stay within the rate limits; the answer
in between is the last one. Claims are remembered until their end is recorded, so a worker that
stops can record the end of what it still holds (``release_all``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import httpx
import msgspec

from application.execution_reports import Beat
from application.scheduler import Claim

log = logging.getLogger("taskwarden.worker")

MAX_PAUSE_SECONDS = 10.0
MAX_RETRY_AFTER_SECONDS = 60.0
WAITING_BEAT_SECONDS = 1.0  # while the agent waits on a person: the answer reaches it quickly
OUTPUT_BATCH_CHARS = 256 * 1024  # per request, under the server's body limit
OUTPUT_BATCH_CHUNKS = 1_000
RETRYABLE_STATUS = frozenset({502, 503, 504})
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class RemoteError(Exception):
    """The server refused a request: its status and envelope error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.repeated = False  # sent more than once: an earlier attempt may have arrived


class RemoteLeaseLostError(RemoteError):
    """409: the execution is no longer this worker's (recovered, or finished meanwhile)."""


class RemoteBackend:
    def __init__(
        self,
        base_url: str,
        credential: str,
        *,
        timeout: float = 30.0,
        retries: int = 5,
        pause: float = 0.5,
        heartbeat_seconds: float = 5.0,
        idle_seconds: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {credential}"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
        )
        self._retries = retries
        self._pause = pause
        self._heartbeat = heartbeat_seconds
        self._idle = idle_seconds
        self._idle_until = 0.0
        self._beats: dict[str, tuple[float, str | None, Beat]] = {}
        self.held: dict[str, Claim] = {}  # execution id -> claim, until its end is recorded

    async def close(self) -> None:
        await self._client.aclose()

    # ---- the Backend protocol -----------------------------------------------------------------

    async def claim(self, worker_id: str) -> Claim | None:
        """None when the team has nothing to start; then every worker of this backend waits
        ``idle_seconds`` before asking again."""
        if time.monotonic() < self._idle_until:
            return None
        try:
            data = await self._post("/api/workers/claim", {"worker_id": worker_id}, repeat=False)
        except RemoteError as error:
            if error.status in (401, 403):  # wrong credentials: do not hammer the server
                self._idle_until = time.monotonic() + 10 * self._idle
            raise
        if data is None:
            self._idle_until = time.monotonic() + self._idle
            return None
        claim = msgspec.convert(data, Claim)
        self.held[claim.execution_id] = claim
        return claim

    async def heartbeat(self, claim: Claim, waiting_on: str | None) -> Beat:
        last = self._beats.get(claim.execution_id)
        now = time.monotonic()
        if (
            last is not None
            and last[1] == waiting_on
            and now - last[0] < _interval(last[2], self._heartbeat, waiting_on)
        ):
            return last[2]
        body = {"task_id": claim.task_id, "worker_id": claim.worker_id, "waiting_on": waiting_on}
        try:
            data = await self._post(self._path(claim, "heartbeat"), body, repeat=True)
        except RemoteError as error:
            if error.status not in (404, 409):
                raise
            beat = Beat(lease_until=0.0, cancel_requested=True, lost=True)
        else:
            beat = msgspec.convert(data, Beat)
        # a reply is handed over once; the beats in between carry none
        self._beats[claim.execution_id] = (
            now,
            waiting_on,
            msgspec.structs.replace(beat, reply=None),
        )
        return beat

    async def output(self, claim: Claim, chunks: list[tuple[int, str, str]]) -> None:
        for batch in _batches(chunks):
            body = {
                "task_id": claim.task_id,
                "worker_id": claim.worker_id,
                "chunks": [
                    {"seq": seq, "stream": stream, "text": text} for seq, stream, text in batch
                ],
            }
            await self._post(self._path(claim, "output"), body, repeat=True)

    async def report(self, claim: Claim, message: dict[str, Any]) -> str | None:
        body = {"task_id": claim.task_id, "worker_id": claim.worker_id, "message": message}
        data = await self._post(self._path(claim, "report"), body, repeat=False)
        return data["item_id"]

    async def finish(self, claim: Claim, outcome: str, result: dict[str, Any]) -> dict[str, Any]:
        body = {
            "task_id": claim.task_id,
            "worker_id": claim.worker_id,
            "outcome": outcome,
            "result": result,
        }
        try:
            data = await self._post(self._path(claim, "finish"), body, repeat=True)
        except RemoteLeaseLostError as error:
            self._forget(claim)
            if error.repeated:  # the first attempt arrived and recorded the end
                return {"status": outcome, "repeated": True}
            raise
        self._forget(claim)
        return dict(data or {})

    async def release_all(self, outcome: str, result: dict[str, Any]) -> int:
        """Records the end of every execution still held (the worker is stopping)."""
        released = 0
        for claim in list(self.held.values()):
            try:
                await self.finish(claim, outcome, result)
            except (RemoteError, httpx.HTTPError) as error:
                log.warning("execution %s: recording the end failed: %s", claim.execution_id, error)
                self._forget(claim)
            else:
                released += 1
        return released

    # ---- transport ----------------------------------------------------------------------------

    def _path(self, claim: Claim, action: str) -> str:
        return f"/api/workers/executions/{claim.execution_id}/{action}"

    def _forget(self, claim: Claim) -> None:
        self.held.pop(claim.execution_id, None)
        self._beats.pop(claim.execution_id, None)

    async def _post(self, path: str, body: dict[str, Any], *, repeat: bool) -> Any:
        """``repeat``: sending it twice is harmless, so a request that may have arrived is sent
        again too; otherwise only one that surely did not."""
        repeated = False
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = await self._client.post(path, json=body)
            except NOT_SENT:
                if last:
                    raise
            except httpx.TransportError:
                if last or not repeat:
                    raise
                repeated = True
            else:
                if response.status_code == 429 and not last:
                    await asyncio.sleep(_retry_after(response))
                    continue
                if response.status_code in RETRYABLE_STATUS and repeat and not last:
                    repeated = True
                else:
                    return _data(response, repeated)
            await asyncio.sleep(self._backoff(attempt))
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def _backoff(self, attempt: int) -> float:
        ceiling = min(MAX_PAUSE_SECONDS, self._pause * 2**attempt)
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(MAX_RETRY_AFTER_SECONDS, max(0.0, float(response.headers["Retry-After"])))
    except (KeyError, ValueError):
        return 1.0


def _interval(beat: Beat, pace: float, waiting_on: str | None) -> float:
    """Seconds a heartbeat's answer stands: a third of the lease left, at most ``pace`` (a second
    while the agent waits on a person); a cancel or a lost lease is final."""
    if beat.lost or beat.cancel_requested:
        return float("inf")
    if waiting_on is not None:
        pace = min(pace, WAITING_BEAT_SECONDS)
    return max(0.0, min(pace, (beat.lease_until - time.time()) / 3))


def _data(response: httpx.Response, repeated: bool) -> Any:
    """The envelope's data, or the error it carries as an exception."""
    try:
        envelope = response.json()
    except ValueError:
        envelope = {}
    if response.is_success:
        return envelope.get("data")
    error = envelope.get("error") or {}
    code = str(error.get("code") or "ERROR")
    message = str(error.get("message") or response.reason_phrase)
    kind = RemoteLeaseLostError if response.status_code == 409 else RemoteError
    error = kind(response.status_code, code, message)
    error.repeated = repeated
    raise error


def _batches(chunks: list[tuple[int, str, str]]) -> list[list[tuple[int, str, str]]]:
    """Chunks in order, split so that no request carries too much."""
    batches: list[list[tuple[int, str, str]]] = [[]]
    size = 0
    for chunk in chunks:
        full = len(batches[-1]) >= OUTPUT_BATCH_CHUNKS or size + len(chunk[2]) > OUTPUT_BATCH_CHARS
        if batches[-1] and full:
            batches.append([])
            size = 0
        batches[-1].append(chunk)
        size += len(chunk[2])
    return [b for b in batches if b]
