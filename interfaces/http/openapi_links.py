"""OpenAPI links: how the id in a creating operation's answer feeds the operations on that object.

A client (and schemathesis' stateful phase) follows them: create a project, then read, change,
clone and delete it, or create a task in it; create a task, then read its history, execute,
cancel or approve it. Without them, generated ids find nothing but 404s.

A creating operation is a POST answering 201 or 202 on a collection (``/api/projects/``); its
targets are the operations whose path is that collection followed by one path parameter
(``/api/projects/{project_id}``, ``/api/projects/{project_id}/clone``). The answer's
``ETag`` feeds their ``If-Match``. ``EXTRA`` adds what the paths do not show.
"""

from __future__ import annotations

import re
from typing import Any

from interfaces.http.endpoint import Endpoint

ID = "$response.body#/data/id"
VERSION = "$response.header.ETag"  # "3": If-Match takes it as it is
# (method, path) of a creating operation -> (where its answer keeps the new id, the collection
# whose operations it feeds); for those whose own path does not show it
CREATES: dict[tuple[str, str], tuple[str, str]] = {
    ("POST", "/api/tasks/submit"): ("$response.body#/data/task_id", "/api/tasks"),
    ("POST", "/api/projects/{project_id}/clone"): (ID, "/api/projects"),
    ("POST", "/api/commands/execute"): (ID, "/api/commands"),
}
# (method, path) of a creating operation -> (target (method, path), the request body the link
# sets, merged into the generated one)
EXTRA: dict[tuple[str, str], list[tuple[tuple[str, str], dict[str, Any]]]] = {
    ("POST", "/api/projects/"): [
        (("POST", "/api/tasks/"), {"project_id": ID, "dependencies": []}),
        (("POST", "/api/tasks/submit"), {"project_id": ID}),
    ],
}


def links(endpoints: list[Endpoint]) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) of each creating operation -> its response's ``links``."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for e in endpoints:
        key = (e.method, e.path)
        if e.method != "POST" or e.status not in (201, 202):
            continue
        source, collection = CREATES.get(key, (ID, e.path.rstrip("/")))
        named = {
            _name(t): _link(t, source)
            for t in endpoints
            if re.fullmatch(re.escape(collection) + r"/\{\w+\}(/[\w-]+)*", t.path)
        }
        for (method, path), body in EXTRA.get(key, []):
            target = next(t for t in endpoints if (t.method, t.path) == (method, path))
            named[_name(target)] = {"operationId": operation_id(target), "requestBody": body}
        if named:
            found[key] = named
    return found


def _link(target: Endpoint, source: str) -> dict[str, Any]:
    (name,) = re.findall(r"{(\w+)}", target.path)
    parameters = {f"path.{name}": source}
    if "If-Match" in target.headers and source == ID:
        parameters["header.If-Match"] = VERSION
    return {"operationId": operation_id(target), "parameters": parameters}


def _name(target: Endpoint) -> str:
    words = re.sub(r"{\w+}", "", target.path).strip("/").replace("-", "/").split("/")
    return target.method.capitalize() + "".join(w.capitalize() for w in words if w and w != "api")


def operation_id(e: Endpoint) -> str:
    return f"{e.method.lower()}_{re.sub(r'[^a-z0-9]+', '_', e.path.lower()).strip('_')}"
