"""Where in a JSON text something is, as a path (``$.metadata.notes[1]``,
``$.metadata["a key"]``): for the answers of application/limits.py. Only a refused document is
read this way, so a tokenizer in Python is fast enough; it reads malformed text as far as it can.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import msgspec

_TOKEN = re.compile(
    rb'"(?:[^"\\]++|\\.)*+"|[\[\]{}:,]|-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?', re.DOTALL
)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _Frame:
    """An open array (``at`` is the index) or object (``at`` is the key, None before it)."""

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.at: str | int | None = None if is_object else 0
        self.expects_key = is_object


def _walk_tokens(raw: bytes) -> Iterator[tuple[re.Match[bytes], list[_Frame]]]:
    """Each token with the containers open before it."""
    frames: list[_Frame] = []
    for token in _TOKEN.finditer(raw):
        yield token, frames
        text = token.group()
        top = frames[-1] if frames else None
        if text in (b"{", b"["):
            frames.append(_Frame(text == b"{"))
        elif text in (b"}", b"]"):
            if frames:
                frames.pop()
        elif text == b"," and top is not None:
            if top.is_object:
                top.at, top.expects_key = None, True
            else:
                top.at = int(top.at or 0) + 1
        elif text.startswith(b'"') and top is not None and top.expects_key:
            top.at, top.expects_key = _key(text), False


def _key(token: bytes) -> str:
    try:
        return str(json.loads(token))
    except ValueError:
        return token[1:-1].decode(errors="replace")


def too_deep(raw: bytes, depth: int) -> str:
    """Where the first container nested deeper than ``depth`` opens."""
    for token, frames in _walk_tokens(raw):
        if token.group() in (b"{", b"[") and len(frames) >= depth:
            return _path(frames)
    return "$"


def at_offset(raw: bytes, offset: int) -> str:
    """Where the value that holds byte ``offset`` (or the first after it) is."""
    last: list[_Frame] = []
    for token, frames in _walk_tokens(raw):
        if token.end() > offset:
            return _path(frames)
        last = frames
    return _path(last)


def huge_number(raw: bytes) -> str:
    """Where the first number that msgspec cannot hold (not even as a float) is."""
    for token, frames in _walk_tokens(raw):
        text = token.group()
        if len(text) >= 19 and text[0] in b"-0123456789":
            try:
                msgspec.json.decode(text)
            except msgspec.ValidationError:
                return _path(frames)
    return "$"


def of(segments: list[str | int]) -> str:
    """The path of keys and indexes, outermost first."""
    return "$" + "".join(_segment(s) for s in segments)


def _path(frames: list[_Frame]) -> str:
    return of([f.at for f in frames if f.at is not None])


def _segment(at: str | int) -> str:
    if isinstance(at, int):
        return f"[{at}]"
    if _NAME.fullmatch(at):
        return f".{at}"
    return f"[{json.dumps(at, ensure_ascii=False)}]"
