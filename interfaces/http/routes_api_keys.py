"""Placeholder: endpoints arrive with the identity work."""

from __future__ import annotations

from interfaces.http.endpoint import Endpoint

ENDPOINTS: list[Endpoint] = []
