"""The ledger's transcoder: eventsourcing's JSON transcoder, with stored events parsed by msgspec.

Writing is eventsourcing's own (``json`` with its separators), so the stored bytes do not change.
Reading parses with ``msgspec.json`` and then turns each ``{"_type_": ..., "_data_": ...}`` object
into its value, inner objects first, which is what ``json``'s ``object_hook`` does, at a fraction
of the cost: every consumer decodes every event (the projections on catch-up most of all). What
``msgspec`` does not read the way ``json`` does (``NaN`` and ``Infinity``, which ``json`` writes for
such floats; a number out of a float's range; a lone surrogate escape; nesting deeper than the
walk's stack) fails there and is read by ``json`` instead, so every stored event decodes to what
it decoded to before.
"""

from __future__ import annotations

from typing import Any

import msgspec
from eventsourcing.persistence import JSONTranscoder

_decode = msgspec.json.decode
_NESTED = frozenset({dict, list})


def _is_leaf(item: Any) -> bool:
    """A transcoded object with nothing inside it to decode first."""
    return (
        type(item) is dict
        and len(item) == 2
        and type(item.get("_type_")) is str
        and type(item.get("_data_")) is str
    )


class LedgerTranscoder(JSONTranscoder):
    def decode(self, data: bytes) -> Any:
        try:
            parsed = _decode(data)
            return self._revive(parsed) if type(parsed) in _NESTED else parsed
        except (msgspec.DecodeError, RecursionError):  # json reads it (or fails as it did)
            return super().decode(data)

    def _revive(self, value: Any) -> Any:
        """``value`` with every transcoded object inside it (and itself) decoded."""
        if type(value) is dict:
            for key, item in value.items():
                if type(item) not in _NESTED:
                    continue
                if _is_leaf(item):  # the usual one: a timestamp or an id
                    value[key] = self._decode_obj(item)
                else:
                    value[key] = self._revive(item)
            return value if len(value) != 2 else self._decode_obj(value)
        for index, item in enumerate(value):  # a list
            if type(item) in _NESTED:
                value[index] = self._revive(item)
        return value
