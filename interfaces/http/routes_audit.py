"""The audit trail's routes (docs/audit.md, docs/api.md "Audit").

``GET /api/audit/head``: the newest digest the event store wrote with a transaction, so an
auditor can note it and later prove that nothing before it changed. Admins only: the digest
covers every team's events (it tells nothing of them but their count, which positions already
show).

``GET /api/audit/export``: the caller's team's events as a signed, hash-chained export
(``application.audit.export``), streamed as JSON lines; admins only, and always the caller's own
team. ``GET /api/audit/key``: the public key that checks an export's head, for any reader.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from application.audit.export import Scope, export
from application.audit.head import audit_head
from application.audit.keys import public_key_data
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import BadRequestError
from interfaces.http.inputs import Query, actor, call
from interfaces.http.role import services_of


async def head(request: Request) -> Response:
    Query(request, set())  # no parameters: an unknown one is refused
    return ok(request, await call(audit_head, services_of(request).store))


MAX_POSITION = 2**63 - 1
NDJSON = "application/x-ndjson"


async def export_log(request: Request) -> Response:
    """Streamed a batch at a time; a failure midway ends the stream without its signed head,
    which the verifier reports as a truncated file."""
    q = Query(request, {"from", "to"})
    first = q.integer("from", None, 0, MAX_POSITION)
    last = q.integer("to", None, 0, MAX_POSITION)
    if first is not None and last is not None and first > last:
        raise BadRequestError("from must not be after to", field="from")
    services = services_of(request)
    scope = Scope(team=actor(request).team_id, first=first, last=last)
    headers = {"Content-Disposition": 'attachment; filename="audit.jsonl"'}
    chunks = export(services.store, services.audit_key, scope)
    return StreamingResponse(chunks, media_type=NDJSON, headers=headers)


async def key(request: Request) -> Response:
    Query(request, set())
    return ok(request, public_key_data(services_of(request).audit_key.public))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/audit/head",
        head,
        "The log's head: the newest write-time digest, its position and time",
        "audit",
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        "/api/audit/export",
        export_log,
        "The team's events as a hash-chained export with a signed head (JSON lines)",
        "audit",
        query=("from", "to"),
        permission=Permission.ADMIN,
        media_type=NDJSON,
        response={"type": "string", "description": "JSON lines: header, records, signed head"},
    ),
    Endpoint(
        "GET",
        "/api/audit/key",
        key,
        "The public key (Ed25519) that checks an audit export's signed head",
        "audit",
    ),
]
