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

import re
from typing import Any

import msgspec

from application import json_bytes, json_paths

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


def _screened(raw: bytes) -> bool:
    """Raises BadInputError if ``raw`` is nested too deep; True when the decoded document must be
    walked because it may break another limit. A NUL can only come escaped (a raw NUL byte is
    malformed JSON), a string of more than MAX_STRING_CHARS characters takes more bytes than
    that, and MAX_ITEMS entries take MAX_ITEMS - 1 commas."""
    suspect = b"\\u0000" in raw or _LONGEST_INT64 in raw.translate(_DIGITS_AS_ZERO)
    few_brackets = raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH
    if few_brackets and raw.count(b",") < MAX_ITEMS and len(raw) <= MAX_STRING_CHARS:
        return suspect
    unescaped = json_bytes.unescaped(raw)
    structure = json_bytes.structure(unescaped)
    if not few_brackets and json_bytes.deeper_than(MAX_DEPTH, structure.replace(b",", b"")):
        field = json_paths.too_deep(raw, MAX_DEPTH)
        message = f"JSON nested deeper than {MAX_DEPTH} levels"
        raise BadInputError(INVALID, message, field, max_depth=MAX_DEPTH)
    return (
        suspect
        or json_bytes.may_hold_a_string_longer_than(MAX_STRING_CHARS, unescaped)
        or json_bytes.wider_than(MAX_ITEMS, structure)
    )


def too_deep(raw: bytes) -> bool:
    """Whether the JSON text ``raw`` nests more than MAX_DEPTH levels: for a reader that takes
    any size (an agent's stream-json) but must not blow its stack."""
    if raw.count(b"[") + raw.count(b"{") <= MAX_DEPTH:
        return False
    structure = json_bytes.structure(json_bytes.unescaped(raw))
    return json_bytes.deeper_than(MAX_DEPTH, structure.replace(b",", b""))


# ---- the decoded document: strings, sizes, integers --------------------------------------------


def _decoded_without_type(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.ValidationError:  # a number even a float cannot hold
        field = json_paths.huge_number(raw)
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
        field = self.at or json_paths.of(self.path[::-1])
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


# ---- malformed text -----------------------------------------------------------------------------

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
    return BadInputError(INVALID, message, json_paths.at_offset(raw, offset))
