"""``IndexedRouter`` answers every request as Starlette's own router does, and takes the dict
lookup only where the scan would reach the same route."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.testclient import TestClient

from interfaces.http.indexed_router import IndexedRouter


def named(name: str):
    async def endpoint(request: Request) -> Response:
        return PlainTextResponse(f"{name} {dict(request.path_params)}")

    return endpoint


async def mounted(scope, receive, send) -> None:
    await PlainTextResponse(f"mounted {scope['path']}")(scope, receive, send)


ROUTES = [
    Route("/items/{item}", named("item"), methods=["GET"]),
    Route("/items/new", named("new item"), methods=["GET", "POST"]),  # GET: the one above
    Route("/items", named("list"), methods=["GET"]),
    Route("/items", named("create"), methods=["POST"]),
    Route("/only-post", named("only post"), methods=["POST"]),
    Route("/trailing/", named("trailing"), methods=["GET"]),
    Mount("/mounted", app=mounted),
    Route("/mounted/inside", named("shadowed"), methods=["GET"]),  # the mount takes it
]
REQUESTS = [
    ("GET", "/items"),
    ("POST", "/items"),
    ("HEAD", "/items"),
    ("DELETE", "/items"),  # 405
    ("GET", "/items/new"),
    ("POST", "/items/new"),
    ("GET", "/items/42"),
    ("GET", "/only-post"),  # 405
    ("POST", "/only-post"),
    ("GET", "/trailing"),  # redirect
    ("GET", "/trailing/"),
    ("GET", "/mounted/inside"),
    ("GET", "/nowhere"),  # 404
]


def client(router_class: type[Router]) -> TestClient:
    app = Starlette()
    app.router = router_class(ROUTES)
    return TestClient(app, follow_redirects=False)


@pytest.mark.parametrize(("method", "path"), REQUESTS)
def test_every_request_gets_the_answer_starlettes_router_gives(method: str, path: str) -> None:
    mine = client(IndexedRouter).request(method, path)
    theirs = client(Router).request(method, path)
    assert (mine.status_code, mine.text, mine.headers.get("location")) == (
        theirs.status_code,
        theirs.text,
        theirs.headers.get("location"),
    )


def test_only_what_the_scan_would_reach_is_indexed() -> None:
    router = IndexedRouter(ROUTES)
    index = router._build()
    assert index[("/items", "GET")] is ROUTES[2] and index[("/items", "POST")] is ROUTES[3]
    assert index[("/items/new", "POST")] is ROUTES[1]
    assert ("/items/new", "GET") not in index  # the route with a parameter comes first
    assert ("/mounted/inside", "GET") not in index  # the mount comes first
    assert ("/items/{item}", "GET") not in index


def test_the_apis_create_and_listing_are_found_in_the_index(tmp_path) -> None:
    from infrastructure.settings import Settings  # noqa: PLC0415 - the app only here
    from interfaces.http.app import create_app  # noqa: PLC0415

    app = create_app(Settings(data_dir=tmp_path))
    assert isinstance(app.router, IndexedRouter)
    index = app.router._build()
    assert {("/api/tasks", "POST"), ("/api/tasks", "GET")} <= set(index)
