"""The event store's fast canonical form and chain (``canonical_of``, ``links``) give exactly the
bytes and hashes of the one definition (``canonical(record(...))``, ``link``), for any event."""

from __future__ import annotations

from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from application.audit.chain import GENESIS, canonical, canonical_of, link, links, record

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
