"""What the routes and the WebSocket gateway are handed: the api role the app's lifespan built
and started (``interfaces/bootstrap/api.py``), kept in ``app.state.api`` and read only here,
typed. Routes build nothing and park nothing in ``app.state``."""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from application.store import Store
from interfaces.bootstrap.api import ApiRole
from interfaces.services import Services


def api_role(app: Any) -> ApiRole:
    """The app's started role (set by its lifespan before the first request)."""
    role: ApiRole = app.state.api
    return role


def role_of(connection: HTTPConnection) -> ApiRole:
    """The role serving a request or a WebSocket."""
    return api_role(connection.app)


def services_of(connection: HTTPConnection) -> Services:
    return api_role(connection.app).services


def store_of(connection: HTTPConnection) -> Store:
    return api_role(connection.app).services.store
