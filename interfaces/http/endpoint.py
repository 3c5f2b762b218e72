"""One declaration per endpoint, from which both the routes and the OpenAPI document are built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from application.auth import authenticate, authenticate_without_store
from application.store import narrow_to_project
from domain.values import Permission
from interfaces.http.identity import credential
from interfaces.http.rate_limits import charge
from interfaces.http.role import services_of

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
    # what the caller's role must grant; None: GET needs read, other methods need operate
    permission: Permission | None = None
    public: bool = False
    # answers outside the envelope (probes, Prometheus): the media type and the JSON Schema of the
    # success body for the OpenAPI document; None: the envelope
    media_type: str = "application/json"
    response: dict[str, Any] | None = None

    @property
    def needs(self) -> Permission | None:
        if self.public:
            return None
        if self.permission is not None:
            return self.permission
        return Permission.READ if self.method == "GET" else Permission.OPERATE


def routes(endpoints: Iterable[Endpoint]) -> list[Route]:
    """Groups endpoints by path; a path with a trailing slash also answers without it."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for e in endpoints:
        by_path.setdefault(e.path, {})[e.method] = e
    table: list[Route] = []
    for path, methods in by_path.items():
        dispatch = _dispatcher(methods)
        table.append(Route(path, dispatch, methods=list(methods)))
        if path.endswith("/") and path != "/":
            table.append(Route(path.rstrip("/"), dispatch, methods=list(methods)))
    return table


def _dispatcher(methods: dict[str, Endpoint]) -> Callable[[Request], Any]:
    async def dispatch(request: Request) -> Response:
        endpoint = methods[request.method]
        permission = endpoint.needs
        if permission is not None:
            services = services_of(request)
            presented = credential(request)
            principal = authenticate_without_store(services.codec, presented)
            if principal is None:  # a user's token or an API key: the store decides
                principal = await run_in_threadpool(
                    authenticate, services.store, services.codec, presented
                )
            await charge(request, principal.actor_id)  # the principal's budget, or 429
            principal.require(permission)
            narrow_to_project(principal.project_id)  # before the handler sees the store
            request.state.principal = principal
        else:
            await charge(request, None)  # a public endpoint: the client IP's budget, or 429
        return await endpoint.handler(request)

    return dispatch
