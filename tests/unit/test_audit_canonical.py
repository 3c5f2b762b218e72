"""The event store's fast canonical form and chain (``canonical_of``, ``links``) give exactly the
bytes and hashes of the one definition (``canonical(record(...))``, ``link``), for any event."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from application.audit.chain import (
    GENESIS,
    canonical,
    canonical_around,
    canonical_of,
    link,
    links,
    links_around,
    record,
)

states = st.one_of(
    st.text().map(lambda t: t.encode("utf-8")),  # any text, quotes and controls included
    st.binary(),  # not always UTF-8: carried as state_base64
)


@given(
    position=st.integers(min_value=1, max_value=2**62),
    originator=st.uuids(),
    version=st.integers(min_value=1, max_value=2**31),
    topic=st.text(min_size=1),
    state=states,
)
def test_canonical_of_is_the_canonical_record(
    position: int, originator: UUID, version: int, topic: str, state: bytes
) -> None:
    expected = canonical(record(position, originator, version, topic, state))
    assert canonical_of(position, originator, version, topic, state) == expected
    assert canonical_of(position, str(originator), version, topic, state) == expected


@given(st.lists(st.binary(max_size=64), max_size=8))
def test_links_is_link_after_link(records: list[bytes]) -> None:
    digest = GENESIS
    for r in records:
        digest = link(digest, r)
    assert links(GENESIS, records) == digest


names = st.one_of(  # a text id, quotes and the field's own bytes included, or a UUID
    st.uuids(),
    st.text(),
    st.sampled_from(['"position":0,', 'x","position":0,"y', '\\"position\\":0,']),
)


@given(
    position=st.integers(min_value=1, max_value=2**62),
    originator=names,
    version=st.integers(min_value=0, max_value=2**62),
    topic=st.one_of(st.text(min_size=1), st.just('"position":0,')),
    state=st.one_of(states, st.just(b'{"position":0,"a":1}')),
)
def test_canonical_around_puts_the_position_where_canonical_of_has_it(
    position: int, originator: UUID | str, version: int, topic: str, state: bytes
) -> None:
    before, after = canonical_around(originator, version, topic, state)
    expected = canonical_of(position, originator, version, topic, state)
    assert before + str(position).encode() + after == expected


@given(
    st.lists(st.tuples(st.integers(min_value=1, max_value=2**40), st.text(), states), max_size=6)
)
def test_links_around_is_links_over_the_canonical_records(
    events: list[tuple[int, str, bytes]],
) -> None:
    uid = UUID(int=7)
    records = [canonical_of(p, uid, 1, topic, state) for p, topic, state in events]
    parts = [canonical_around(uid, 1, topic, state) for _, topic, state in events]
    assert links_around(GENESIS, [p for p, _, _ in events], parts) == links(GENESIS, records)
