"""The task listing's keyset cursor: where the last page ended, opaque to the client.

A cursor is the base64url text (no padding) of ``[sort, order, key, id]``: the sort and order it
was issued under, and the sort key and id of the last row served. The next page is the rows that
come after that (key, id) pair in the same order, so rows inserted meanwhile never shift it: a walk
by cursor neither repeats nor skips a row that was there when it started, whatever is created
between pages (new rows appear on a later page, or not at all if they sort before the cursor).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated

import msgspec
from msgspec import Meta

from projections.rows import Keyset, Order, TaskSort

MAX_CURSOR_CHARS = 2_000
ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
Key = int | Annotated[str, Meta(max_length=1_000)]
_Shape = tuple[TaskSort, Order, Key, Annotated[str, Meta(min_length=1, max_length=100)]]
_decode = msgspec.json.Decoder(_Shape).decode


class CursorError(ValueError):
    """Text that is not a cursor this listing issued."""


def encode_cursor(sort: TaskSort, order: Order, after: Keyset) -> str:
    raw = msgspec.json.encode([sort, order, after.key, after.id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(text: str) -> tuple[TaskSort, Order, Keyset]:
    """The sort, order and position a cursor names; ``CursorError`` if it names none."""
    if len(text) > MAX_CURSOR_CHARS or not ALPHABET.fullmatch(text):
        raise CursorError("cursor is not one this listing issued")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        sort, order, key, row_id = _decode(raw)
    except (binascii.Error, ValueError, msgspec.ValidationError):  # DecodeError is a ValueError
        raise CursorError("cursor is not one this listing issued") from None
    if (sort == "priority") != isinstance(key, int):
        raise CursorError("cursor is not one this listing issued")
    return sort, order, Keyset(key=key, id=row_id)
