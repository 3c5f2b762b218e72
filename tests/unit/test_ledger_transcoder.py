"""The ledger reads stored events with msgspec (application/transcoder.py): every stored state
decodes to exactly what eventsourcing's ``json`` transcoder made of it, the states ``msgspec``
refuses included, and the bytes it writes are the ones it wrote before."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import JSONTranscoder, TranscodingNotRegisteredError

from application.ledger import Ledger
from application.transcoder import LedgerTranscoder
from infrastructure.event_store import MEMORY_ENV

FIXTURES = Path(__file__).parent.parent / "fixtures"
STORED = [e["state"] for e in json.loads((FIXTURES / "events_v1.json").read_text())["events"]]
NESTED = 900  # arrays in arrays: deeper than the walk's share of the stack may go


def transcoders() -> tuple[JSONTranscoder, LedgerTranscoder]:
    ledger = Ledger(env=MEMORY_ENV)
    try:
        reference = JSONTranscoder()
        ledger.register_transcodings(reference)
        ours = ledger.mapper.transcoder
        assert isinstance(ours, LedgerTranscoder)
        return reference, ours
    finally:
        ledger.close()


@pytest.mark.parametrize("state", STORED, ids=range(len(STORED)))
def test_every_stored_event_of_an_earlier_version_decodes_as_before(state):
    reference, ours = transcoders()
    assert ours.decode(state.encode()) == reference.decode(state.encode())


VALUES = [
    {"at": datetime(2026, 12, 3, 17, 33, 28, 382784, tzinfo=UTC)},
    {"id": UUID(int=7), "amount": Decimal("1.10"), "ids": [UUID(int=1), [UUID(int=2)]]},
    {"metadata": {"deep": [{"at": datetime(2026, 1, 1, tzinfo=UTC)}, {"_type_": "x"}]}},
    {"_type_": "not a transcoding: three keys", "_data_": 1, "other": 2},
    {"text": 'ünïcode \u2028 \\ " \t', "big": 2**70, "neg": -(2**63) - 1, "f": 0.1, "z": -0.0},
    {"empty": {}, "list": [], "none": None, "flags": [True, False]},
    [1, "two", {"at": datetime(2026, 1, 1, tzinfo=UTC)}],
    "a string",
    12,
    None,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_what_it_writes_it_reads_back_as_json_did(value):
    reference, ours = transcoders()
    stored = reference.encode(value)
    assert ours.encode(value) == stored  # writing is eventsourcing's own: the same bytes
    assert ours.decode(stored) == reference.decode(stored) == value


def test_what_msgspec_refuses_is_read_by_json():
    reference, ours = transcoders()
    for stored in (
        b'{"cost":NaN,"limit":Infinity,"floor":-Infinity}',  # json writes such floats so
        b'{"huge":1e400}',
        b'{"lone":"\\ud800"}',
        ("[" * NESTED + "]" * NESTED).encode(),
    ):
        decoded = ours.decode(stored)
        assert repr(decoded) == repr(reference.decode(stored))
    assert math.isnan(ours.decode(b'{"cost":NaN}')["cost"])


def test_an_unreadable_state_fails_as_it_did():
    reference, ours = transcoders()
    for stored in (b'{"a":', b'{"a":1} trailing', b"\xff\xfe"):
        with pytest.raises(ValueError) as expected:
            reference.decode(stored)
        with pytest.raises(type(expected.value)):
            ours.decode(stored)


def test_an_unknown_transcoding_fails_as_it_did():
    _, ours = transcoders()
    with pytest.raises(TranscodingNotRegisteredError):
        ours.decode(b'{"at":{"_type_":"no_such_type","_data_":"x"}}')
