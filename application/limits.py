"""The input limits, in one place: what a JSON document from outside may hold.

Every HTTP request body and every WebSocket message is read through ``decode`` here, before any
command sees it. Why: a document that msgspec can decode may still break what comes after it.
JSON nested a few hundred levels deep is accepted, stored in an event, and later blows the stack
of the event mapper and of every consumer that walks it; nested about a thousand levels it blows
msgspec's own stack while the request is being read. U+0000 is valid JSON, but no Postgres
``text`` or ``jsonb`` value can hold it, so an event carrying one stops the projection that writes
it. An integer past 64 bits fits neither Postgres ``bigint`` nor SQLite's integers. Refused here,
none of them becomes an event.

The limits (docs/api.md, "Limits"):

- depth: at most ``MAX_DEPTH`` nested arrays and objects, the body itself being level 1; checked
  on the raw bytes before msgspec decodes them;
- ``MAX_ITEMS`` keys in an object, items in an array; ``MAX_STRING_CHARS`` characters in a
  string (keys too); integers in a signed 64-bit integer; no U+0000 in any string or key;
- lone UTF-16 surrogates never get in: msgspec refuses them as malformed JSON;
- the body's size is the setting ``max_body_bytes`` (413), checked by the HTTP and WebSocket
  layers before this module reads anything.

Cost: the raw bytes are screened with ``bytes`` methods (counts, a translate, a split at the
quotes), which settle depth and clear nearly every body of the other limits; only a body they
cannot clear (an escaped NUL, a run of 19 digits, a string or container that may be too large)
is decoded once more without a type and walked in Python. bench/input_limits.py measures it:
a few microseconds on a create body, less than the decode on large ones.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import msgspec

MAX_DEPTH = 64
MAX_ITEMS = 1_000
# the longest string any field takes: an agent's experience (infrastructure/agent/protocol.py),
# which a remote worker reports in a free-form message
MAX_STRING_CHARS = 100_000
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1

TOO_LONG = "VALIDATION_VALUE_TOO_LONG"
INVALID = "VALIDATION_INVALID_FORMAT"


class BadInputError(Exception):
    """A document refused at the edge: ``code`` is one of seed 000's, ``details["field"]`` the
    JSON path of the value at fault (``$.metadata.a[2]``)."""

    def __init__(self, code: str, message: str, field: str | None, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = {"field": field, **details}


def decode(raw: bytes, kind: Any = Any) -> Any:
    """``raw`` decoded into ``kind`` (a type, or a ``msgspec.json.Decoder``) once it is known to
    keep every limit; raises BadInputError (malformed JSON too), or msgspec.ValidationError when
    the value does not fit ``kind``."""
    try:
        if _screened(raw):
            document = _decoded_without_type(raw)
            _check(document)
            if kind is Any:
                return document
        return _decoder(kind).decode(raw)
    except msgspec.ValidationError:  # a subclass of DecodeError: the caller's to answer
        raise
    except msgspec.DecodeError as error:
        raise _malformed(raw, error) from None
    except _Refusal as refusal:
        raise refusal.error() from None


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: Any) -> msgspec.json.Decoder[Any]:
    """One decoder per type (a few dozen, named in the code): a union or a generic type passed
    to ``msgspec.json.decode`` is analysed again on every call. A hot caller with a union passes
    its own Decoder: hashing a union costs about a microsecond."""
    if isinstance(kind, msgspec.json.Decoder):
        return kind
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return decoder


def storable(text: str) -> str:
    """``text`` with each U+0000 as U+FFFD: for output kept whatever it holds (an agent's, a
    command's), which cannot be refused the way a request is."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


# ---- on the raw bytes: depth exactly, the other limits as a suspicion ---------------------------

_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONGEST_INT64 = b"0" * 19  # the shortest integer outside 64 bits has 19 digits
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{},')
_PARENTHESES = bytes.maketrans(b"[{]}", b"(())")  # "(" opens a container, ")" closes one
_STEPS = bytes(1 if b == ord("(") else 255 if b == ord(")") else 0 for b in range(256))
_INNERMOST = re.compile(rb"\(,*\)")  # a container holding no container: only its commas are left
_WIDE = re.compile(rb"\(,{%d}" % MAX_ITEMS)


def _screened(raw: bytes) -> bool:
    """Raises BadInputError if ``raw`` is nested too deep; True when the decoded document must be
    walked because it may break another limit. A NUL can only come escaped (a raw NUL byte is
    malformed JSON), a string of more than MAX_STRING_CHARS characters takes more bytes than
    that, and MAX_ITEMS entries take MAX_ITEMS - 1 commas."""
    suspect = b"\\u0000" in raw or _LONGEST_INT64 in raw.translate(_DIGITS_AS_ZERO)
    few_brackets = raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH
    if few_brackets and raw.count(b",") < MAX_ITEMS and len(raw) <= MAX_STRING_CHARS:
        return suspect
    unescaped = _unescaped(raw)
    structure = _structure(unescaped)
    if not few_brackets and _deeper_than_allowed(structure.replace(b",", b"")):
        field = _path(_stop_when_too_deep(raw))
        message = f"JSON nested deeper than {MAX_DEPTH} levels"
        raise BadInputError(INVALID, message, field, max_depth=MAX_DEPTH)
    return suspect or _may_hold_a_long_string(unescaped) or _wider_than_allowed(structure)


def too_deep(raw: bytes) -> bool:
    """Whether the JSON text ``raw`` nests more than MAX_DEPTH levels: for a reader that takes
    any size (an agent's stream-json) but must not blow its stack."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    return _deeper_than_allowed(_structure(_unescaped(raw)).replace(b",", b""))


def _unescaped(raw: bytes) -> bytes:
    """``raw`` with escaped backslashes and quotes replaced, so that every quote left is one that
    opens or ends a string. Escapes pair from the left: \\\\ first, then \\" ends nothing."""
    if b"\\" not in raw:
        return raw
    return raw.replace(b"\\\\", b"__").replace(b'\\"', b"__")


def _structure(unescaped: bytes) -> bytes:
    """The brackets (as "(" and ")") and commas that are not inside strings, of a text whose
    escaped quotes and backslashes were replaced. Exact for JSON and for the part of malformed
    text that msgspec reads before it stops."""
    # dropping a pair of adjacent quotes keeps every other quote on its side
    kept = unescaped.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    return b"".join(kept.split(b'"')[::2]).translate(_PARENTHESES)


def _may_hold_a_long_string(unescaped: bytes) -> bool:
    """A run of more than MAX_STRING_CHARS bytes covers a whole aligned block of half that."""
    block = MAX_STRING_CHARS // 2
    starts = range(0, len(unescaped) - block + 1, block)
    if all(unescaped.find(b'"', start, start + block) >= 0 for start in starts):
        return False
    return max(map(len, unescaped.split(b'"'))) > MAX_STRING_CHARS


def _deeper_than_allowed(brackets: bytes) -> bool:
    """Over "(" and ")" only. Exact for JSON; an over-estimate for malformed text, which is
    refused either way."""
    # each pass takes away the innermost pairs, one level; a few passes empty most documents
    removed = 0
    while b"()" in brackets and removed < 4:
        brackets = brackets.replace(b"()", b"")
        removed += 1
    if not brackets:
        return False
    deepest = max(accumulate(array("b", brackets.translate(_STEPS))))
    return removed + deepest > MAX_DEPTH


def _wider_than_allowed(structure: bytes) -> bool:
    """Over "(", ")" and ",", nested at most MAX_DEPTH: whether a container holds more than
    MAX_ITEMS entries. Taking away the innermost containers leaves their parents' commas."""
    if structure.count(b",") < MAX_ITEMS:
        return False
    for _ in range(MAX_DEPTH + 1):
        if _WIDE.search(structure):
            return True
        structure, removed = _INNERMOST.subn(b"", structure)
        if not removed:
            break
    return False


# ---- the decoded document: strings, sizes, integers --------------------------------------------


def _decoded_without_type(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.ValidationError:  # a number even a float cannot hold
        field = _path(_stop_at_a_huge_number(raw))
        raise _Refusal("VALIDATION_ERROR", "a number out of range", field) from None


class _Refusal(Exception):
    """Raised deep in the walk; each level adds its key or index on the way out."""

    def __init__(self, code: str, message: str, at: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.at = at
        self.details = details
        self.path: list[str | int] = []

    def error(self) -> BadInputError:
        field = self.at or "$" + "".join(_segment(s) for s in reversed(self.path))
        return BadInputError(self.code, self.message, field, **self.details)


def _check(value: Any) -> None:
    kind = type(value)
    if kind is str:
        _check_text(value)
    elif kind is dict:
        _check_size(value)
        for key, item in value.items():
            if len(key) > MAX_STRING_CHARS:  # named by the object: too long to name itself
                _check_text(key)
            try:
                _check_text(key)
                _check(item)
            except _Refusal as refusal:
                refusal.path.append(key)
                raise
    elif kind is list:
        _check_size(value)
        for index, item in enumerate(value):
            try:
                _check(item)
            except _Refusal as refusal:
                refusal.path.append(index)
                raise
    elif kind is int and not INT_MIN <= value <= INT_MAX:
        raise _Refusal(
            "VALIDATION_ERROR", "an integer must fit in 64 bits", minimum=INT_MIN, maximum=INT_MAX
        )


def _check_text(text: str) -> None:
    if "\x00" in text:
        raise _Refusal(INVALID, "U+0000 (NUL) is not allowed in a string: no store keeps it")
    if len(text) > MAX_STRING_CHARS:
        message = f"a string holds at most {MAX_STRING_CHARS:,} characters"
        raise _Refusal(TOO_LONG, message, max_length=MAX_STRING_CHARS)


def _check_size(container: dict[str, Any] | list[Any]) -> None:
    if len(container) > MAX_ITEMS:
        message = f"an object or array holds at most {MAX_ITEMS:,} entries"
        raise _Refusal(TOO_LONG, message, max_items=MAX_ITEMS)


# ---- where in the raw text: only when something was refused ------------------------------------

_AT_BYTE = re.compile(r"\(byte (\d+)\)")
# msgspec reads six bytes past a high surrogate for its pair; near the end it finds too few and
# speaks of truncated input
_LONE_HIGH_SURROGATE = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])")


def _malformed(raw: bytes, error: msgspec.DecodeError) -> BadInputError:
    message = f"malformed JSON: {error}"
    at = _AT_BYTE.search(str(error))
    if at is not None:
        offset = int(at.group(1))
    elif (lone := _LONE_HIGH_SURROGATE.search(raw)) is not None:
        offset = lone.start()
        message = "malformed JSON: a UTF-16 surrogate escape without its pair"
    else:
        offset = len(raw)
    return BadInputError(INVALID, message, _path(_stop_at(raw, offset)))


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


def _stop_when_too_deep(raw: bytes) -> list[_Frame]:
    for token, frames in _walk_tokens(raw):
        if token.group() in (b"{", b"[") and len(frames) >= MAX_DEPTH:
            return frames
    return []


def _stop_at(raw: bytes, offset: int) -> list[_Frame]:
    last: list[_Frame] = []
    for token, frames in _walk_tokens(raw):
        if token.end() > offset:
            return frames
        last = frames
    return last


def _stop_at_a_huge_number(raw: bytes) -> list[_Frame]:
    for token, frames in _walk_tokens(raw):
        text = token.group()
        if len(text) >= 19 and text[0] in b"-0123456789":
            try:
                msgspec.json.decode(text)
            except msgspec.ValidationError:
                return frames
    return []


def _path(frames: list[_Frame]) -> str:
    return "$" + "".join(_segment(f.at) for f in frames if f.at is not None)


def _segment(at: str | int) -> str:
    if isinstance(at, int):
        return f"[{at}]"
    if _NAME.fullmatch(at):
        return f".{at}"
    return f"[{json.dumps(at, ensure_ascii=False)}]"
