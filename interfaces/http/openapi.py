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
    "404": "Not found",
    "409": "Conflict",
    "413": "Body too large",
    "422": "Invalid input",
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
        "components": {"schemas": components},
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
    if e.path.startswith("/api"):
        for status, text in ERROR_STATUSES.items():
            operation["responses"][status] = {"description": text, "content": envelope}
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
