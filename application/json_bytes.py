"""What the raw bytes of a JSON text show before anything decodes it: how deep it nests, whether
a container holds many entries, whether a string may be long. Exact for JSON, and for the part of
malformed text that a decoder reads before it stops. Only ``bytes`` methods and C loops: a body
is read at memory speed, and text nested a million levels deep costs no stack.
"""

from __future__ import annotations

import re
from array import array
from itertools import accumulate

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{},')
_PARENTHESES = bytes.maketrans(b"[{]}", b"(())")  # "(" opens a container, ")" closes one
_STEPS = bytes(1 if b == ord("(") else 255 if b == ord(")") else 0 for b in range(256))
_INNERMOST = re.compile(rb"\(,*\)")  # a container holding no container: only its commas are left


def unescaped(raw: bytes) -> bytes:
    """``raw`` with escaped backslashes and quotes replaced, so that every quote left is one that
    opens or ends a string. Escapes pair from the left: \\\\ first, then \\" ends nothing."""
    if b"\\" not in raw:
        return raw
    return raw.replace(b"\\\\", b"__").replace(b'\\"', b"__")


def structure(unescaped: bytes) -> bytes:
    """The brackets (as "(" and ")") and commas that are not inside strings, of a text whose
    escaped quotes and backslashes were replaced. Exact for JSON and for the part of malformed
    text that msgspec reads before it stops."""
    # dropping a pair of adjacent quotes keeps every other quote on its side
    kept = unescaped.translate(None, _NOT_STRUCTURE).replace(b'""', b"")
    return b"".join(kept.split(b'"')[::2]).translate(_PARENTHESES)


def may_hold_a_string_longer_than(chars: int, unescaped: bytes) -> bool:
    """A string of more than ``chars`` characters takes more than ``chars`` bytes, and a run that
    long covers a whole aligned block of half that."""
    block = chars // 2
    starts = range(0, len(unescaped) - block + 1, block)
    if all(unescaped.find(b'"', start, start + block) >= 0 for start in starts):
        return False
    return max(map(len, unescaped.split(b'"'))) > chars


def deeper_than(depth: int, brackets: bytes) -> bool:
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
    return removed + deepest > depth


def wider_than(entries: int, structure: bytes) -> bool:
    """Over "(", ")" and ",", of a text nested not too deep: whether a container holds more than
    ``entries`` entries. Taking away the innermost containers leaves their parents' commas."""
    if structure.count(b",") < entries:
        return False
    wide = re.compile(rb"\(,{%d}" % entries)
    while True:
        if wide.search(structure):
            return True
        structure, removed = _INNERMOST.subn(b"", structure)
        if not removed:
            return False
