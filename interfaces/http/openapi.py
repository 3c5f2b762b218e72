"""``/openapi.json`` built from the endpoint declarations and the msgspec command schemas."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from interfaces.http.endpoint import Endpoint

ENVELOPE = {
    "type": "object",
    "required": ["data", "error", "meta"],
    "properties": {
        "data": {},
        "error": {"anyOf": [{"type": "null"}, {"$ref": "#/components/schemas/Error"}]},
        "meta": {"$ref": "#/components/schemas/Meta"},
    },
}
ERROR = {
    "type": "object",
    "required": ["code", "message", "details"],
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "object"},
    },
}
META = {
    "type": "object",
    "properties": {
        "timestamp": {"type": "string", "format": "date-time"},
        "request_id": {"type": "string"},
        "version": {"type": "string"},
        "position": {"type": "integer"},
    },
}
ERROR_STATUSES = {
    "401": "Missing or invalid credentials (public routes: wrong password, token or admin key)",
    "404": "Not found",
    "409": "Conflict",
    "413": "Body too large",
    "422": "Invalid input",
    "429": "Rate limit exceeded; see Retry-After",
    "503": "A dependency is unavailable",
}
FORBIDDEN = {"403": "The caller's role does not grant this operation"}
RATE_HEADERS = {
    f"X-RateLimit-{name}": {"description": text, "schema": {"type": "integer"}}
    for name, text in {
        "Limit": "requests allowed per window",
        "Remaining": "requests that could follow at once",
        "Reset": "epoch seconds when the whole budget is back",
        "Window": "the window, in seconds",
    }.items()
}
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "A JWT or a tw_ API key"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def document(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    bodies = sorted({e.body for e in endpoints if e.body is not None}, key=lambda t: t.__name__)
    _, components = msgspec.json.schema_components(
        bodies, ref_template="#/components/schemas/{name}"
    )
    components.update({"Envelope": ENVELOPE, "Error": ERROR, "Meta": META})
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Taskwarden",
            "version": version,
            "description": "Control plane for AI coding agents. Every /api answer is an envelope.",
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


def _operation(e: Endpoint) -> dict[str, Any]:
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", e.path)
    ]
    parameters += [{"name": q, "in": "query", "schema": {"type": "string"}} for q in e.query]
    parameters += [{"name": h, "in": "header", "schema": {"type": "string"}} for h in e.headers]
    operation: dict[str, Any] = {
        "summary": e.summary,
        "tags": [e.tag],
        "operationId": _operation_id(e),
        "parameters": parameters,
        "responses": {str(e.status): {"description": "Success", "content": envelope}},
    }
    if e.response is not None:
        body = {e.media_type: {"schema": e.response}}
        operation["responses"] = {str(e.status): {"description": "Success", "content": body}}
        if e.path == "/ready":
            operation["responses"]["503"] = {"description": "Not ready", "content": body}
    if e.path.startswith("/api"):
        statuses = ERROR_STATUSES if e.public else {**ERROR_STATUSES, **FORBIDDEN}
        for status, text in statuses.items():
            operation["responses"][status] = {"description": text, "content": envelope}
        for answer in operation["responses"].values():
            answer["headers"] = RATE_HEADERS
    if not e.public:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]
    if e.body is not None:
        operation["requestBody"] = {
            "required": not e.optional_body,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{e.body.__name__}"}}
            },
        }
    return operation


def _operation_id(e: Endpoint) -> str:
    return f"{e.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', e.path.lower()).strip('_')}"
