"""Webhook endpoints (issue 5): manage a team's webhooks, ping, rotate, deliveries, redeliver.
Team administration: admins only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application.commands import Targeted
from application.webhooks import handlers as webhooks
from application.webhooks.handlers import (
    CreateWebhook,
    DeleteWebhook,
    RotateWebhookSecret,
    UpdateWebhook,
)
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call, expected_version
from interfaces.http.role import role_of, store_of

P = "/api/webhooks/{webhook_id}"


async def create(request: Request) -> Response:
    cmd = await body(request, CreateWebhook)
    allowed = role_of(request).webhooks.allowed
    result = await call(webhooks.create_webhook, store_of(request), cmd, actor(request), allowed)
    return written(request, result)


async def listing(request: Request) -> Response:
    Query(request, set())
    data = await call(webhooks.list_webhooks, store_of(request), actor(request).team_id)
    return ok(request, data)


async def read(request: Request) -> Response:
    Query(request, set())
    ref = request.path_params["webhook_id"]
    data = await call(webhooks.get_webhook, store_of(request), ref, actor(request).team_id)
    return ok(request, data, headers={"ETag": f'"{data["version"]}"'})


async def update(request: Request) -> Response:
    cmd = Targeted(
        target=request.path_params["webhook_id"],
        command=await body(request, UpdateWebhook),
        expected_version=expected_version(request),
    )
    host = role_of(request).webhooks
    result = await call(
        webhooks.update_webhook, store_of(request), cmd, actor(request), host.allowed
    )
    host.poke(result.data["id"])  # enabled again: held deliveries go on
    return written(request, result)


async def delete(request: Request) -> Response:
    Query(request, set())
    cmd = Targeted(target=request.path_params["webhook_id"], command=DeleteWebhook())
    result = await call(webhooks.delete_webhook, store_of(request), cmd, actor(request))
    role_of(request).webhooks.poke(result.data["webhook_id"])
    return written(request, result)


async def ping(request: Request) -> Response:
    Query(request, set())
    ref = request.path_params["webhook_id"]
    data = await role_of(request).webhooks.attempts.ping(ref, actor(request))
    return ok(request, data)


async def rotate(request: Request) -> Response:
    Query(request, set())
    cmd = Targeted(target=request.path_params["webhook_id"], command=RotateWebhookSecret())
    result = await call(webhooks.rotate_secret, store_of(request), cmd, actor(request))
    return written(request, result)


async def deliveries(request: Request) -> Response:
    page, size = Query(request, {"page", "page_size", "limit", "offset"}).paging()
    ref = request.path_params["webhook_id"]
    team = actor(request).team_id
    data = await call(webhooks.list_deliveries, store_of(request), ref, team, page, size)
    return ok(request, data)


async def redeliver(request: Request) -> Response:
    Query(request, set())
    host = role_of(request).webhooks
    ref, key = request.path_params["webhook_id"], request.path_params["delivery_id"]
    data = await host.attempts.redeliver(ref, key, actor(request))
    host.poke(data["webhook_id"])  # a pending delivery made due now: its lane looks again
    return ok(request, data)


def _admin(method: str, path: str, handler, summary: str, **extra) -> Endpoint:
    return Endpoint(
        method, path, handler, summary, "webhooks", permission=Permission.ADMIN, **extra
    )


ENDPOINTS = [
    _admin(
        "POST",
        "/api/webhooks",
        create,
        "Create a webhook; its signing secret (secret) is shown in this answer only",
        body=CreateWebhook,
        status=201,
    ),
    _admin("GET", "/api/webhooks", listing, "List the team's webhooks (never their secrets)"),
    _admin("GET", P, read, "Read a webhook"),
    _admin(
        "PATCH",
        P,
        update,
        "Change a webhook's URL, events or description; enable or disable it",
        body=UpdateWebhook,
        headers=("If-Match",),
    ),
    _admin("DELETE", P, delete, "Delete a webhook: nothing more is sent to it"),
    _admin("POST", P + "/test", ping, "Send a webhook.test ping now; the answer has the attempt"),
    _admin(
        "POST",
        P + "/rotate-secret",
        rotate,
        "A new signing secret, shown in this answer only; the old one signs too for 24 h",
    ),
    _admin(
        "GET",
        P + "/deliveries",
        deliveries,
        "The webhook's deliveries, newest first, with their attempts",
        query=("page", "page_size", "limit", "offset"),
    ),
    _admin(
        "POST",
        P + "/deliveries/{delivery_id}/redeliver",
        redeliver,
        "Send a delivery again now (a pending one: make it due now, in its turn)",
    ),
]
