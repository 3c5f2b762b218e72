"""One declaration per endpoint, from which both the routes and the OpenAPI document are built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Handler = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type | None = None
    status: int = 200
    query: tuple[str, ...] = ()
    headers: tuple[str, ...] = field(default=())
    optional_body: bool = False


def routes(endpoints: Iterable[Endpoint]) -> list[Route]:
    """Groups endpoints by path; a path with a trailing slash also answers without it."""
    by_path: dict[str, dict[str, Handler]] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = e.handler
    table: list[Route] = []
    for path, methods in by_path.items():
        dispatch = _dispatcher(methods)
        table.append(Route(path, dispatch, methods=list(methods)))
        if path.endswith("/") and path != "/":
            table.append(Route(path.rstrip("/"), dispatch, methods=list(methods)))
    return table


def _dispatcher(methods: dict[str, Handler]) -> Callable[[Request], Any]:
    async def dispatch(request: Request) -> Response:
        return await methods[request.method](request)

    return dispatch
