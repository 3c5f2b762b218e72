"""Public event names: ``Task.ExecutionRequested`` is known as ``task.execution_requested``."""

from __future__ import annotations

import re
from typing import Any

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_NAMES: dict[type, str] = {}  # once per event class: the relay, the projections and the
# history name every event


def public_name(event: Any) -> str:
    kind = type(event)
    found = _NAMES.get(kind)
    if found is None:
        owner, _, name = kind.__qualname__.partition(".")
        found = _NAMES[kind] = f"{owner.lower()}.{_CAMEL.sub('_', name).lower()}"
    return found
