"""Quarantined events (docs/api.md, "Quarantine"): list them, read one, ask for a retry.

Admins only. A team admin sees the entries of its own team's events; the entries of events whose
team is not known (an undecodable record) and those of every team need ``X-Admin-Key`` as well
(or the CLI: ``taskwarden quarantine``). Another team's entry answers 404, as a missing one.
"""

from __future__ import annotations

import hmac

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from application.errors import AdminKeyNotConfiguredError, AuthenticationError
from application.quarantine import EVERY_TEAM, entry_data
from application.results import Requested
from domain.quarantine import QUARANTINED, RELEASED, RETRY_REQUESTED
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import PAGING, Query, actor, call
from interfaces.http.role import services_of
from projections.rows import page_of

P = "/api/admin/quarantine"
STATUSES = frozenset({QUARANTINED, RETRY_REQUESTED, RELEASED})


def scope(request: Request) -> str:
    """The caller's team, or every team with a valid ``X-Admin-Key``."""
    presented = request.headers.get("x-admin-key")
    if presented is None:
        return str(request.state.principal.team_id)
    configured = request.app.state.settings.admin_key
    if not configured:
        raise AdminKeyNotConfiguredError("no admin key is configured")
    if not hmac.compare_digest(presented.encode(), configured.encode()):
        raise AuthenticationError("invalid admin key")
    return EVERY_TEAM


async def listing(request: Request) -> Response:
    query = Query(request, {"consumer", "status", *PAGING})
    consumer = query.text("consumer", 100)
    statuses = set(query.words("status", STATUSES))
    page, size = query.paging()
    found = await call(services_of(request).quarantine.entries, consumer, scope(request))
    found = [e for e in found if not statuses or e.status in statuses]
    items = [entry_data(e) for e in found[(page - 1) * size : page * size]]
    return ok(request, msgspec.to_builtins(page_of(items, len(found), page, size)))


async def read(request: Request) -> Response:
    query = Query(request, {"consumer"})
    ref = request.path_params["quarantine_id"]
    entry = await call(
        services_of(request).quarantine.find, ref, query.text("consumer", 100), scope(request)
    )
    return ok(request, entry_data(entry))


async def retry(request: Request) -> Response:
    query = Query(request, {"consumer"})
    ref = request.path_params["quarantine_id"]
    by = actor(request)
    entry, position = await call(
        services_of(request).quarantine.request_retry,
        ref,
        by.id,
        by.request_id,
        query.text("consumer", 100),
        scope(request),
    )
    return written(request, Requested(data=entry_data(entry), position=position))


ENDPOINTS = [
    Endpoint(
        "GET",
        P,
        listing,
        "List quarantined events (the team's; every team's with X-Admin-Key)",
        "quarantine",
        query=("consumer", "status", "page", "page_size", "limit", "offset"),
        headers=("X-Admin-Key",),
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "GET",
        P + "/{quarantine_id}",
        read,
        "A quarantined event, by id or by position (with consumer when several have it)",
        "quarantine",
        query=("consumer",),
        headers=("X-Admin-Key",),
        permission=Permission.ADMIN,
    ),
    Endpoint(
        "POST",
        P + "/{quarantine_id}/retry",
        retry,
        "Ask the consumer to process the quarantined event again (after a fix)",
        "quarantine",
        status=202,
        query=("consumer",),
        headers=("X-Admin-Key",),
        permission=Permission.ADMIN,
    ),
]
