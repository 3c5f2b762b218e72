"""The listing's cursor: what it issues it reads back; anything else is refused."""

from __future__ import annotations

import base64

import pytest

from projections.cursor import CursorError, decode_cursor, encode_cursor
from projections.rows import Keyset


@pytest.mark.parametrize(
    ("sort", "key"),
    [("created_at", "2026-12-04T09:00:00.000Z"), ("priority", 4), ("title", "Étude ✓")],
)
def test_a_cursor_reads_back_its_sort_order_and_place(sort, key):
    text = encode_cursor(sort, "asc", Keyset(key=key, id="0b7f"))
    assert "=" not in text and "+" not in text and "/" not in text
    assert decode_cursor(text) == (sort, "asc", Keyset(key=key, id="0b7f"))


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a cursor!",
        "a" * 2001,
        b64(b"{}"),
        b64(b'["created_at", "desc", "x"]'),
        b64(b'["name", "desc", "x", "id"]'),  # a project sort
        b64(b'["created_at", "up", "x", "id"]'),
        b64(b'["priority", "desc", "high", "id"]'),  # a priority key is its number
        b64(b'["title", "desc", 3, "id"]'),
        b64(b'["title", "desc", "x", ""]'),
        b64(b'["title", "desc", "x", "id", "more"]'),
        b64(b"\xff\xfe"),
    ],
)
def test_anything_but_an_issued_cursor_is_refused(text):
    with pytest.raises(CursorError, match="cursor"):
        decode_cursor(text)
