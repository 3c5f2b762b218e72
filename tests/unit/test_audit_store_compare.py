"""``compare_with_store``: an export's records held to the store's rows, on the in-memory store,
one kind of difference per test (the databases' own tests: tests/integration/test_audit_*)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from application.audit.chain import GENESIS, canonical, link, of
from application.audit.digests import Divergence, compare_with_store
from application.store import Store
from tests.builders import a_task
from tests.stores import memory_store


@pytest.fixture
def store() -> Iterator[Store]:
    opened = memory_store()
    for n in range(5):
        opened.commit(a_task(title=f"task {n}"))
    yield opened
    opened.close()


def exported(store: Store) -> list[dict[str, Any]]:
    """The records of an export of the whole log, each with its hash."""
    records, digest = [], GENESIS
    for notification in store.notifications(0, 100):
        fields = of(notification)
        digest = link(digest, canonical(fields))
        records.append({**fields, "hash": digest})
    return records


def test_an_export_of_the_store_as_it_is_matches(store):
    assert compare_with_store(store, exported(store), whole_log=True) is None
    assert compare_with_store(store, exported(store)[2:], whole_log=False) is None
    assert compare_with_store(store, [], whole_log=True) is None


def test_a_record_edited_in_the_file_or_the_store_is_named(store):
    records = exported(store)
    records[2] = {**records[2], "state": records[2]["state"].replace("task 2", "task X")}
    found = compare_with_store(store, records, whole_log=True)
    assert found == Divergence(3, "the stored event differs from the exported record")


def test_a_stored_event_the_whole_export_lacks_is_named(store):
    records = exported(store)
    del records[1]
    found = compare_with_store(store, records, whole_log=True)
    assert found == Divergence(2, "in the store, not in the export")
    assert compare_with_store(store, records, whole_log=False) is None  # a team's: gaps are others'


def test_a_record_the_store_lacks_is_named(store):
    records = exported(store)
    extra = {**records[-1], "position": 9}
    found = compare_with_store(store, [*records, extra], whole_log=False)
    assert found == Divergence(9, "in the export, not in the store")


def test_a_hash_that_is_not_the_stores_digest_is_named_for_a_whole_export(store):
    records = exported(store)
    records[3] = {**records[3], "hash": "f" * 64}
    found = compare_with_store(store, records, whole_log=True)
    assert found == Divergence(4, "the export's hash differs from the store's digest there")
    assert compare_with_store(store, records, whole_log=False) is None  # its own chain's hashes


def test_a_record_without_a_position_is_refused(store):
    found = compare_with_store(store, [{"topic": "x"}], whole_log=False)
    assert found == Divergence(0, "a record without a position")
    found = compare_with_store(store, [{"position": "3"}], whole_log=False)
    assert found == Divergence(0, "a record without a position")
