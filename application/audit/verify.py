"""The verifier of an audit export (docs/audit.md, "Verifying an export").

It walks the file once, holding one line ahead: each record must hash, after the one before it
(``chain.link``), to the ``hash`` it carries, with positions rising; the head must count those
records, end at their last position and hash, agree with the header, and carry an Ed25519
signature by the given key over its other fields. The first thing found wrong is reported, with
the position it names and, where the file tells, what was done there:

- ``removed``: the record does not chain, and positions are missing before it (a whole export:
  a team's export has gaps of other teams' events, so there it reads as ``edited``); or the
  head counts more records than the file has;
- ``inserted``: the record does not chain and the chain goes on without it (the next record, or
  the head, follows from the record before it);
- ``reordered``: the next record's position is lower, or this one's is not above the last one's;
- ``edited``: positions in order, the record does not hash to its chain value;
- ``truncated``: no head (cut after a whole line), or a last line cut in the middle;
- ``appended``: lines after the head; ``signature``, ``head``, ``header``, ``malformed``.

``verify`` returns a ``Verdict`` (never raises for a bad file), so that a caller can go on from
it, for instance to compare the file with the live store.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from application.audit.chain import GENESIS, canonical, link
from application.audit.export import FORMAT
from application.audit.keys import SignatureCheck

_decode = msgspec.json.decode
HEADER_FIELDS = ("format", "team", "from", "to")


class Finding(msgspec.Struct, frozen=True, kw_only=True):
    """The first thing wrong: its kind, the position it names (None: the file has none to name),
    the line, and a one-line reason."""

    kind: str
    position: int | None
    line: int
    reason: str


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    count: int  # records that chained before the first problem (all of them if intact)
    last_position: int | None
    hash: str
    head: dict[str, Any] | None = None
    problem: Finding | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        if self.problem is not None:
            return f"{self.problem.kind}: {self.problem.reason}"
        head = self.head or {}
        team = head.get("team") or "every team"
        return (
            f"intact: {self.count} records of {team}, positions {head.get('from') or 1} to "
            f"{head.get('to')}, hash {self.hash}, signed by key {head.get('key_id')}"
        )


class _Line(msgspec.Struct, frozen=True):
    number: int
    fields: dict[str, Any] | None  # None: not a JSON object (a record's without its hash)
    whole: bool  # ends with a newline
    record: tuple[int, str, bytes] | None  # a record's (position, hash, canonical form)


def _lines(raw: Iterable[bytes]) -> Iterator[_Line]:
    """Each line parsed once, a record's canonical form computed once (it is looked at twice:
    as the line after, then as the line)."""
    for number, line in enumerate(raw, 1):
        try:
            fields = _decode(line)
        except msgspec.DecodeError:
            fields = None
        if type(fields) is not dict:
            yield _Line(number, None, line.endswith(b"\n"), None)
            continue
        record = None
        stored, position = fields.get("hash"), fields.get("position")
        if "kind" not in fields and type(stored) is str and type(position) is int:
            del fields["hash"]
            record = (position, stored, canonical(fields))
        yield _Line(number, fields, line.endswith(b"\n"), record)


def _record(line: _Line | None) -> tuple[int, str, bytes] | None:
    """(position, hash, canonical record) of a record line; None for anything else."""
    return None if line is None else line.record


class _Walk:
    """The state of one pass: what chained so far, and the header it was held to."""

    def __init__(self, header: dict[str, Any]) -> None:
        self.header = header
        self.digest, self.count = GENESIS, 0
        self.position: int | None = None

    def verdict(self, problem: Finding | None = None, head: Any = None) -> Verdict:
        return Verdict(
            count=self.count,
            last_position=self.position,
            hash=self.digest,
            head=head,
            problem=problem,
        )

    def after(self) -> str:
        return "the start" if self.position is None else f"position {self.position}"

    def expected(self) -> int:
        """The next position a whole export would hold."""
        return self.position + 1 if self.position is not None else (self.header.get("from") or 1)

    def follows(self, line: _Line | None, digest: str) -> bool:
        """Whether ``line`` (a record, or the head) chains on from ``digest``."""
        found = _record(line)
        if found is not None:
            return link(digest, found[2]) == found[1]
        fields = line.fields if line is not None else None
        return fields is not None and fields.get("kind") == "head" and fields.get("hash") == digest

    def misplaced(
        self, line: _Line, found: tuple[int, str, bytes], following: _Line | None
    ) -> Finding:
        """A record that does not chain on: say what was done, as far as the file tells."""
        position, stored, record = found
        at = f"(line {line.number}, after {self.after()})"
        nxt = _record(following)
        if nxt is not None and nxt[0] < position and link(nxt[1], record) == stored:
            reason = f"position {nxt[0]} (line {line.number + 1}) and position {position} "
            reason += "are swapped"
            return Finding(kind="reordered", position=nxt[0], line=line.number, reason=reason)
        if self.follows(following, self.digest):
            reason = f"the record at position {position} {at} does not belong: the chain goes "
            reason += "on without it"
            return Finding(kind="inserted", position=position, line=line.number, reason=reason)
        if self.position is not None and position <= self.position:
            reason = f"position {position} {at} is out of order"
            return Finding(kind="reordered", position=position, line=line.number, reason=reason)
        if nxt is not None and nxt[0] < position:
            reason = f"position {nxt[0]} (line {line.number + 1}) comes after position {position}"
            return Finding(kind="reordered", position=nxt[0], line=line.number + 1, reason=reason)
        whole = self.header.get("team") is None
        if whole and position > self.expected():
            reason = f"position {self.expected()} is missing: {self.after()} is followed by "
            reason += f"position {position} (line {line.number}), which does not chain on"
            return Finding(
                kind="removed", position=self.expected(), line=line.number, reason=reason
            )
        reason = f"the record at position {position} {at} does not hash to its chain value "
        reason += "(or the record before it was changed with its hash"
        reason += ")" if whole else ", or a record of the team before it was removed)"
        return Finding(kind="edited", position=position, line=line.number, reason=reason)


def verify(raw: Iterable[bytes], key: SignatureCheck) -> Verdict:
    """Checks an export, given as its lines (bytes, with their newlines, as a binary file
    iterates), against the public ``key``."""
    lines = _lines(raw)
    first = next(lines, None)
    if first is None:
        walk = _Walk({})
        return walk.verdict(Finding(kind="truncated", position=None, line=0, reason="empty file"))
    walk = _Walk(first.fields or {})
    if walk.header.get("kind") != "header" or walk.header.get("format") != FORMAT:
        reason = f"line 1 is not the header of a {FORMAT} export"
        return walk.verdict(Finding(kind="malformed", position=None, line=1, reason=reason))
    line, following = next(lines, None), next(lines, None)
    while line is not None:
        if line.fields is not None and line.fields.get("kind") == "head":
            return _end(walk, line, following, key)
        problem = _step(walk, line, following)
        if problem is not None:
            return walk.verdict(problem)
        line, following = following, next(lines, None)
    reason = f"no signed head after {walk.after()} ({walk.count} records): the file was cut"
    return walk.verdict(Finding(kind="truncated", position=walk.position, line=0, reason=reason))


def _step(walk: _Walk, line: _Line, following: _Line | None) -> Finding | None:
    """One record line: chained on, or the problem with it."""
    found = _record(line)
    if found is None:
        if following is None and not line.whole:
            reason = f"the last line ({line.number}) is cut off after {walk.after()}"
            return Finding(
                kind="truncated", position=walk.position, line=line.number, reason=reason
            )
        reason = f"line {line.number} (after {walk.after()}) is not an export record"
        return Finding(kind="malformed", position=walk.position, line=line.number, reason=reason)
    position, stored, record = found
    in_order = walk.position is None or position > walk.position
    if not in_order or link(walk.digest, record) != stored:
        return walk.misplaced(line, found, following)
    walk.digest, walk.count, walk.position = stored, walk.count + 1, position
    return None


def _end(walk: _Walk, line: _Line, following: _Line | None, key: SignatureCheck) -> Verdict:
    """The head: signed by ``key``, nothing after it, agreeing with the header and the records."""
    head = line.fields or {}
    problem = _signature(head, line.number, key)
    if problem is None and following is not None:
        position = (following.fields or {}).get("position")
        reason = f"line {following.number} comes after the head"
        reason += f" (position {position})" if isinstance(position, int) else ""
        where = position if isinstance(position, int) else None
        problem = Finding(kind="appended", position=where, line=following.number, reason=reason)
    if problem is None:
        problem = _header(walk, head) or _totals(walk, head, line.number)
    return walk.verdict(problem, head)


def _signature(head: dict[str, Any], number: int, key: SignatureCheck) -> Finding | None:
    def wrong(reason: str) -> Finding:
        return Finding(kind="signature", position=None, line=number, reason=reason)

    if head.get("key_id") != key.key_id:
        return wrong(f"the head is signed by key {head.get('key_id')}, not by key {key.key_id}")
    unsigned = {k: v for k, v in head.items() if k != "signature"}
    try:
        signature = base64.b64decode(str(head.get("signature")), validate=True)
    except (binascii.Error, ValueError):
        return wrong("the head's signature is not base64")
    if not key.verify(signature, canonical(unsigned)):
        return wrong(f"the head's signature does not match its fields (key {key.key_id})")
    return None


def _header(walk: _Walk, head: dict[str, Any]) -> Finding | None:
    differ = [name for name in HEADER_FIELDS if walk.header.get(name) != head.get(name)]
    if not differ:
        return None
    reason = f"the header's {', '.join(differ)} differ from the signed head's"
    return Finding(kind="header", position=None, line=1, reason=reason)


def _totals(walk: _Walk, head: dict[str, Any], number: int) -> Finding | None:
    count, last = head.get("count"), head.get("last_position")
    if count == walk.count and last == walk.position and head.get("hash") == walk.digest:
        return None
    if isinstance(count, int) and count > walk.count:
        reason = f"the head counts {count} records up to position {last}; "
        reason += f"the file has {walk.count}, ending at {walk.after()}"
        missing = walk.expected() if walk.header.get("team") is None else last
        return Finding(kind="removed", position=missing, line=number, reason=reason)
    reason = f"the head (count {count}, last position {last}) does not end the chain of "
    reason += f"{walk.count} records ending at {walk.after()}"
    return Finding(kind="head", position=walk.position, line=number, reason=reason)
