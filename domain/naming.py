"""Public event names: ``Task.ExecutionRequested`` is known as ``task.execution_requested``."""

from __future__ import annotations

import re
from typing import Any

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def public_name(event: Any) -> str:
    owner, _, name = type(event).__qualname__.partition(".")
    return f"{owner.lower()}.{_CAMEL.sub('_', name).lower()}"
