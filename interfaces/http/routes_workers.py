"""Remote workers over REST: claim the team's work, then report on the claimed execution.

An agent-role token or API key (or an admin's) is a worker's credential; it claims its team's
work only. Every report names the task and the worker, and must come from the worker that holds
the execution's lease (else 409 LEASE_LOST: stop without reporting further); another team's
task answers 404, as a missing execution.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from application import execution_reports as reports
from application.errors import PermissionDeniedError
from application.worker_requests import (
    ClaimWork,
    FinishExecution,
    RecordOutput,
    ReportMessage,
    SendHeartbeat,
    WorkerReport,
    held_claim,
)
from domain.values import Permission
from infrastructure.agent.protocol import Checkpoint, Experience, Phase, Progress, Question, Usage
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import BadRequestError
from interfaces.http.inputs import actor, body, call
from interfaces.http.role import services_of, store_of

# what an agent reports; its result travels with the finish, its output as chunks
Reportable = Progress | Phase | Question | Checkpoint | Experience | Usage
MAX_REF = 100


async def claim(request: Request) -> Response:
    """The claim, or ``data: null`` when the team has nothing this worker may start now (in the
    envelope like every answer, so not 204: the OpenAPI document declares one success status)."""
    cmd = await body(request, ClaimWork)
    principal = request.state.principal
    if principal.project_id is not None:  # a worker's credential is the whole team's
        raise PermissionDeniedError("claim work", f"{principal.role} (project-scoped)")
    by = actor(request)
    claimed = await call(services_of(request).scheduler.claim, cmd.worker_id, team_id=by.team_id)
    return ok(request, None if claimed is None else msgspec.to_builtins(claimed))


async def _held(request: Request, kind: type[WorkerReport]) -> tuple[Any, Any]:
    execution_id = request.path_params["execution_id"]
    if len(execution_id) > MAX_REF:
        raise BadRequestError("execution_id is too long", field="execution_id")
    cmd = await body(request, kind)
    team_id = actor(request).team_id
    run = await call(held_claim, store_of(request), team_id, execution_id, cmd)
    return cmd, run


async def heartbeat(request: Request) -> Response:
    """Renews the lease; answers a pending cancel and the decision the agent waits for."""
    cmd, run = await _held(request, SendHeartbeat)
    lease = request.app.state.settings.lease_seconds
    beat = await call(reports.heartbeat, store_of(request), run, cmd.waiting_on, lease)
    return ok(request, msgspec.to_builtins(beat))


async def output(request: Request) -> Response:
    """Stores output chunks; a chunk sent again (same sequence number) is stored once."""
    cmd, run = await _held(request, RecordOutput)
    chunks = [(c.seq, c.stream, c.text) for c in cmd.chunks]
    position = await call(reports.record_output, store_of(request), run, chunks)
    data = {"accepted": len(chunks), "position": position}
    return ok(request, data, position=position, headers={"X-Position": str(position)})


async def report(request: Request) -> Response:
    """One agent protocol message; a question or checkpoint answers the id people decide by."""
    cmd, run = await _held(request, ReportMessage)
    message = msgspec.convert(cmd.message, Reportable)  # the protocol's bounds: else 422
    timeout = request.app.state.settings.hitl_timeout_seconds
    item_id = await call(
        reports.report,
        store_of(request),
        run,
        msgspec.to_builtins(message),
        timeout,
    )
    return ok(request, {"item_id": item_id})


async def finish(request: Request) -> Response:
    """How the execution ended; queues an automatic retry when attempts are left."""
    cmd, run = await _held(request, FinishExecution)
    data = await call(reports.finish, store_of(request), run, cmd.outcome, cmd.result)
    return ok(request, data)


E = "/api/workers/executions/{execution_id}"
ENDPOINTS = [
    Endpoint(
        "POST",
        "/api/workers/claim",
        claim,
        "Claim the team's best queued execution (data null: nothing to do)",
        "workers",
        ClaimWork,
        permission=Permission.AGENT,
    ),
    Endpoint(
        "POST",
        E + "/heartbeat",
        heartbeat,
        "Keep the lease; learn of a cancel or a person's decision",
        "workers",
        SendHeartbeat,
        permission=Permission.AGENT,
    ),
    Endpoint(
        "POST",
        E + "/output",
        output,
        "Store output chunks (idempotent per sequence number)",
        "workers",
        RecordOutput,
        permission=Permission.AGENT,
    ),
    Endpoint(
        "POST",
        E + "/report",
        report,
        "Report an agent protocol message",
        "workers",
        ReportMessage,
        permission=Permission.AGENT,
    ),
    Endpoint(
        "POST",
        E + "/finish",
        finish,
        "Record how the execution ended",
        "workers",
        FinishExecution,
        permission=Permission.AGENT,
    ),
]
