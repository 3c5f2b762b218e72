"""``/openapi.json`` built from the endpoint declarations and the msgspec command schemas.

The schemas state the input limits of application/limits.py where JSON Schema can (a string's
``maxLength``, an integer's bounds, an object's ``maxProperties``, an array's ``maxItems``);
depth and the NUL character are said in words, in the document's description (a ``pattern``
against NUL on every string would double the time schemathesis takes to generate bodies).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from application import limits
from interfaces.http.endpoint import Endpoint
from interfaces.http.openapi_links import links, operation_id
from projections.cursor import MAX_CURSOR_CHARS

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
    "422": "Invalid input",
    "429": "Rate limit exceeded; see Retry-After",
    "503": "A dependency is unavailable",
}
FORBIDDEN = {"403": "The caller's role does not grant this operation"}
BODY_STATUSES = {
    "413": "PAYLOAD_TOO_LARGE: the body is over TASKWARDEN_MAX_BODY_BYTES (default 1 MiB)",
    "415": "UNSUPPORTED_MEDIA_TYPE: a Content-Type other than application/json or "
    "application/*+json",
}
JSON_LIMITS = (
    f"Every JSON body (and WebSocket message) is held to these limits, else 422 with "
    f"`details.field`: nested at most {limits.MAX_DEPTH} levels (the body is level 1; "
    f"VALIDATION_INVALID_FORMAT); at most {limits.MAX_ITEMS:,} keys in an object or items in an "
    f"array and at most {limits.MAX_STRING_CHARS:,} characters in a string or key "
    f"(VALIDATION_VALUE_TOO_LONG); integers from {limits.INT_MIN} to {limits.INT_MAX} "
    f"(VALIDATION_ERROR); no U+0000 (NUL) in any string or key, and no lone UTF-16 surrogate "
    f"(VALIDATION_INVALID_FORMAT). Fields with their own limits state them below."
)
FREE_FORM = (
    f"Free-form JSON: nested at most {limits.MAX_DEPTH} levels in the body, at most "
    f"{limits.MAX_ITEMS:,} entries per object or array, {limits.MAX_STRING_CHARS:,} characters "
    f"per string or key, 64-bit integers, no U+0000."
)
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
    for schema in components.values():
        _bounded(schema)
    components.update({"Envelope": ENVELOPE, "Error": ERROR, "Meta": META})
    linked = links(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for e in endpoints:
        operation = _operation(e)
        if (e.method, e.path) in linked:
            operation["responses"][str(e.status)]["links"] = linked[(e.method, e.path)]
        paths.setdefault(e.path, {})[e.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Taskwarden",
            "version": version,
            "description": "Control plane for AI coding agents. Every /api answer is an envelope. "
            + JSON_LIMITS,
            "x-input-limits": {
                "max_depth": limits.MAX_DEPTH,
                "max_items": limits.MAX_ITEMS,
                "max_string_chars": limits.MAX_STRING_CHARS,
                "integer_minimum": limits.INT_MIN,
                "integer_maximum": limits.INT_MAX,
            },
        },
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


# query parameters whose values are a closed set (a task's timeline, docs/api.md)
_KIND = "(task|reviews|usage|executions|questions|checkpoints|experiences|webhooks|output)"
QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "view": {"type": "string", "enum": ["timeline", "changes"]},
    "include": {"type": "string", "pattern": f"^{_KIND}(,{_KIND})*$"},
    "after": {"type": "integer", "minimum": 0, "maximum": 10**18},
    "cursor": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$", "maxLength": MAX_CURSOR_CHARS},
}
TIMELINE_SCHEMAS = {"limit": {"type": "integer", "minimum": 1, "maximum": 1000}}


def _operation(e: Endpoint) -> dict[str, Any]:
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", e.path)
    ]
    own = TIMELINE_SCHEMAS if e.path.endswith("/history") and e.tag == "tasks" else {}
    parameters += [
        {"name": q, "in": "query", "schema": own.get(q) or QUERY_SCHEMAS.get(q, {"type": "string"})}
        for q in e.query
    ]
    parameters += [{"name": h, "in": "header", "schema": {"type": "string"}} for h in e.headers]
    operation: dict[str, Any] = {
        "summary": e.summary,
        "tags": [e.tag],
        "operationId": operation_id(e),
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
        if e.body is not None:
            statuses = {**statuses, **BODY_STATUSES}
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


def _bounded(schema: Any) -> None:
    """Adds the limits every value is held to where msgspec's schema states none."""
    if isinstance(schema, list):
        for item in schema:
            _bounded(item)
        return
    if not isinstance(schema, dict):
        return
    for value in schema.values():
        _bounded(value)
    kind = schema.get("type")
    if kind == "string" and not {"enum", "const", "format"} & schema.keys():
        schema.setdefault("maxLength", limits.MAX_STRING_CHARS)
    elif kind == "integer":
        schema.setdefault("minimum", limits.INT_MIN)
        schema.setdefault("maximum", limits.INT_MAX)
    elif kind == "array":
        schema.setdefault("maxItems", limits.MAX_ITEMS)
    elif kind == "object" and "properties" not in schema:  # free-form JSON
        schema.setdefault("maxProperties", limits.MAX_ITEMS)
        schema.setdefault("description", FREE_FORM)
