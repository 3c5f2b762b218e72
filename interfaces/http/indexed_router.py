"""Starlette's Router, finding a request for a route without path parameters by one dict
lookup of its path and method instead of trying every route's regular expression in turn.

About 110 routes are tried in order for each request; for the ones the API serves most (``POST
/api/tasks``, ``GET /api/tasks``) that scan was about 5 % of a create's CPU (py-spy, ``bench/
http_load.py --paths create --profile``). The index holds a (path, method) only where the scan
itself would hand it to that route: it is built by running Starlette's own ``matches`` of every
route, in order, on the path and method alone (what a ``Route``, ``Mount`` or ``WebSocketRoute``
matches on). Anything else (a path with parameters, a mounted app, a 405, a redirect, a
``root_path``) goes through Starlette's scan unchanged.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute, Match, Mount, Route, Router, WebSocketRoute
from starlette.types import Receive, Scope, Send

Key = tuple[str, str]  # path, method


class IndexedRouter(Router):
    _index: dict[Key, Route] | None = None

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            index = self._index if self._index is not None else self._build()
            route = index.get((scope["path"], scope["method"]))
            if route is not None:
                if "router" not in scope:
                    scope["router"] = self
                scope["route"] = route
                scope["endpoint"] = route.endpoint
                scope["path_params"] = dict(scope.get("path_params", {}))
                await route.handle(scope, receive, send)
                return
        await super().app(scope, receive, send)

    def _build(self) -> dict[Key, Route]:
        """Built on the first request (routes may be added after the router is made)."""
        index: dict[Key, Route] = {}
        if all(type(r) in (Route, Mount, WebSocketRoute) for r in self.routes):
            for route in self.routes:
                if isinstance(route, Route) and not route.param_convertors:
                    for method in route.methods or ():
                        found = _scanned(self.routes, route.path, method)
                        if found is route:
                            index.setdefault((route.path, method), route)
        self._index = index
        return index


def _scanned(routes: list[BaseRoute], path: str, method: str) -> Any:
    """The route Starlette's scan hands a request for ``path`` and ``method`` to, if any takes
    it fully."""
    scope = {"type": "http", "path": path, "root_path": "", "method": method}
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
    return None
