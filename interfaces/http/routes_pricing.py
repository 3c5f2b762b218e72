"""The team's price table (docs/costs.md): read it, change a model's price (admins), and list
the models usage reported that no price covers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from application import pricing
from application.commands import Targeted
from application.pricing import SetPrice
from domain.values import Permission
from interfaces.http.endpoint import Endpoint
from interfaces.http.envelope import ok
from interfaces.http.errors import written
from interfaces.http.inputs import Query, actor, body, call
from interfaces.http.role import store_of


async def read(request: Request) -> Response:
    Query(request, set())
    return ok(request, await call(pricing.price_list, store_of(request), actor(request)))


async def unpriced(request: Request) -> Response:
    Query(request, set())
    return ok(request, await call(pricing.unpriced_models, store_of(request), actor(request)))


async def set_price(request: Request) -> Response:
    cmd = await body(request, SetPrice)
    targeted = Targeted(target=request.path_params["model"], command=cmd)
    return written(
        request, await call(pricing.set_price, store_of(request), targeted, actor(request))
    )


ENDPOINTS = [
    Endpoint(
        "GET",
        "/api/pricing",
        read,
        "The team's price table: each model's prices per million tokens and since when",
        "pricing",
    ),
    Endpoint(
        "GET",
        "/api/pricing/unpriced",
        unpriced,
        "Models that usage reported and no price covers (their usage cost 0)",
        "pricing",
    ),
    Endpoint(
        "PUT",
        "/api/pricing/models/{model}",
        set_price,
        "Set a model's prices from a date: a new price version; earlier usage keeps its cost",
        "pricing",
        SetPrice,
        permission=Permission.ADMIN,
    ),
]
