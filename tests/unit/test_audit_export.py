"""The audit export and its verifier on a real (in-memory) store: an intact export verifies; each
kind of tampering (an edited field, a dropped, swapped, inserted or appended record, a cut file, a
head signed by another key) is found at the right position and named as what was done."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from application.audit.chain import GENESIS, canonical, link
from application.audit.export import FORMAT, Scope, export, team_of
from application.audit.verify import Finding, Verdict, verify
from application.store import Store
from domain.values import Actor
from infrastructure.audit_key import AuditKey
from tests.builders import a_task
from tests.clock import ManualClock
from tests.stores import memory_store

KEY = AuditKey(Ed25519PrivateKey.generate())
OTHER_KEY = AuditKey(Ed25519PrivateKey.generate())


@pytest.fixture
def store() -> Iterator[Store]:
    """Team 1 and team 2 take turns: three tasks each, each created then updated twice."""
    store = memory_store(clock=ManualClock())
    for n in range(3):
        for team in ("team-1", "team-2"):
            task = a_task(team_id=team, title=f"{team} task {n}")
            store.commit(task)
            for version in range(2):
                by = Actor(id="user-1", team_id=team, request_id=f"r{n}{version}")
                task.update({"description": f"pass {version}"}, by)
                store.commit(task)
    yield store
    store.close()


def exported(store: Store, scope: Scope | None = None, key: AuditKey = KEY) -> list[bytes]:
    text = b"".join(export(store, key, scope or Scope(), batch=4))
    return text.splitlines(keepends=True)


def checked(lines: list[bytes], key: AuditKey = KEY) -> Verdict:
    return verify(lines, key.public)


def record(line: bytes) -> dict:
    return json.loads(line)


def found(lines: list[bytes], kind: str, position: int | None) -> Finding:
    problem = checked(lines).problem
    assert problem is not None, "not detected"
    assert (problem.kind, problem.position) == (kind, position), problem
    assert position is None or str(position) in problem.reason
    return problem


# ---- the export ---------------------------------------------------------------------------------


def test_an_export_holds_every_event_in_position_order_chained_from_genesis(store):
    lines = exported(store)
    header, *records, head = map(record, lines)
    assert header == {"kind": "header", "format": FORMAT, "team": None, "from": None, "to": 18}
    assert [r["position"] for r in records] == list(range(1, 19))
    digest = GENESIS
    for line, fields in zip(lines[1:-1], records, strict=True):
        stored = fields.pop("hash")
        assert line == canonical({**fields, "hash": stored}) + b"\n"  # each line is canonical
        digest = link(digest, canonical(fields))
        assert stored == digest
    assert head["count"] == 18 and head["last_position"] == 18 and head["hash"] == digest
    assert head["key_id"] == KEY.key_id and head["team"] is None


def test_the_records_are_the_stored_events_as_stored(store):
    _, first, *_ = map(record, exported(store))
    stored = store.notifications(0, 1)[0]
    assert first["state"] == stored.state.decode()
    assert first["topic"] == stored.topic
    assert first["originator_id"] == str(stored.originator_id)
    assert first["originator_version"] == stored.originator_version == 1


def test_the_head_is_signed_over_its_canonical_fields_without_the_signature(store):
    head = record(exported(store)[-1])
    signature = base64.b64decode(head.pop("signature"))
    assert KEY.public.verify(signature, canonical(head))
    assert not OTHER_KEY.public.verify(signature, canonical(head))


def test_an_intact_export_verifies(store):
    verdict = checked(exported(store))
    assert verdict.intact, verdict.problem
    assert (verdict.count, verdict.last_position) == (18, 18)
    assert verdict.summary().startswith("intact: 18 records of every team, positions 1 to 18")


def test_a_team_export_holds_only_that_teams_events_chains_them_alone_and_verifies(store):
    lines = exported(store, Scope(team="team-2"))
    header, *records, head = map(record, lines)
    assert header["team"] == head["team"] == "team-2"
    assert len(records) == head["count"] == 9
    assert all(json.loads(r["state"])["team_id"] == "team-2" for r in records)
    assert head["last_position"] == 18
    verdict = checked(lines)
    assert verdict.intact, verdict.problem
    assert "9 records of team-2" in verdict.summary()


def test_a_team_with_no_events_gets_an_empty_signed_export(store):
    lines = exported(store, Scope(team="team-9"))
    head = record(lines[-1])
    assert (len(lines), head["count"], head["last_position"], head["hash"]) == (2, 0, None, GENESIS)
    assert checked(lines).intact


def test_a_partial_export_chains_from_genesis_and_its_head_states_the_range(store):
    lines = exported(store, Scope(first=5, last=9))
    header, *records, head = map(record, lines)
    assert [r["position"] for r in records] == [5, 6, 7, 8, 9]
    assert (head["from"], head["to"], header["from"], header["to"]) == (5, 9, 5, 9)
    first = {k: v for k, v in records[0].items() if k != "hash"}
    assert records[0]["hash"] == link(GENESIS, canonical(first))
    assert checked(lines).intact


def test_a_range_past_the_log_ends_at_the_log_as_it_was_when_the_export_began(store):
    lines = exported(store, Scope(first=17, last=1000))
    head = record(lines[-1])
    assert (head["to"], head["count"], head["last_position"]) == (18, 2, 18)
    assert checked(lines).intact


def test_the_export_is_written_a_batch_at_a_time(store):
    chunks = list(export(store, KEY, Scope(), batch=4))
    assert [chunk.count(b"\n") for chunk in chunks] == [1, 4, 4, 4, 4, 2, 1]


def test_events_committed_during_an_export_belong_to_the_next_one(store):
    chunks = export(store, KEY, Scope(), batch=4)
    header = record(next(chunks))
    store.commit(a_task(team_id="team-1", title="committed meanwhile"))
    lines = [header_line(header), *b"".join(chunks).splitlines(keepends=True)]
    head = record(lines[-1])
    assert (header["to"], head["to"], head["count"], head["last_position"]) == (18, 18, 18, 18)
    assert checked(lines).intact
    assert record(exported(store)[-1])["count"] == 19


def header_line(header: dict) -> bytes:
    return canonical(header) + b"\n"


def test_the_team_of_an_event_is_read_from_its_stored_state():
    assert team_of(b'{"team_id":"team-1","x":1}') == "team-1"
    assert team_of(b'{"team_id":"team-1","x":NaN}') == "team-1"  # as json reads it
    assert team_of(b'{"x":1}') is None
    assert team_of(b'{"team_id":{"_type_":"uuid","_data_":"x"}}') is None
    assert team_of(b"[1]") is None
    assert team_of(b"not json") is None


# ---- what the verifier finds ----------------------------------------------------------------


def edited(line: bytes, **changes: object) -> bytes:
    fields = record(line)
    fields.update(changes)
    return canonical(fields) + b"\n"


def test_an_edited_field_is_found_at_its_position(store):
    lines = exported(store)
    state = json.loads(record(lines[7])["state"])
    state["title"] = "rewritten"
    lines[7] = edited(lines[7], state=json.dumps(state))
    found(lines, "edited", 7)


def test_an_edited_hash_is_found_at_its_position(store):
    lines = exported(store)
    lines[4] = edited(lines[4], hash="0" * 64)
    found(lines, "edited", 4)


def test_a_dropped_record_is_found_as_removed_at_the_missing_position(store):
    lines = exported(store)
    del lines[10]
    found(lines, "removed", 10)


def test_the_first_and_the_last_record_dropped_are_found_too(store):
    lines = exported(store)
    found(lines[:1] + lines[2:], "removed", 1)
    found(lines[:-2] + lines[-1:], "removed", 18)


def test_a_record_dropped_from_a_team_export_is_found_where_the_chain_breaks(store):
    lines = exported(store, Scope(team="team-1"))
    after = record(lines[5])["position"]
    del lines[4]
    problem = found(lines, "edited", after)
    assert "removed" in problem.reason


def test_two_swapped_records_are_found_as_reordered(store):
    lines = exported(store)
    lines[5], lines[6] = lines[6], lines[5]
    found(lines, "reordered", 5)


def test_a_record_moved_back_is_found_as_reordered(store):
    lines = exported(store)
    moved = lines.pop(3)
    lines.insert(12, moved)
    found(lines, "removed", 3)  # where it is missing comes first


def test_a_foreign_record_inserted_is_found_at_its_position(store):
    lines = exported(store)
    other = memory_store(clock=ManualClock())
    try:
        other.commit(a_task(team_id="team-1", title="not in this log"))
        foreign = exported(other)[1]
    finally:
        other.close()
    assert record(foreign)["position"] == 1
    lines.insert(9, foreign)  # after position 8
    found(lines, "inserted", 1)


def test_a_copy_of_a_record_inserted_is_found(store):
    lines = exported(store)
    lines.insert(9, lines[3])
    found(lines, "inserted", 3)


def test_a_record_with_a_new_position_inserted_before_the_head_is_found(store):
    lines = exported(store)
    lines.insert(-1, edited(lines[-2], position=19))
    found(lines, "inserted", 19)


def test_a_record_appended_after_the_head_is_found(store):
    lines = exported(store)
    lines.append(edited(lines[-2], position=19))
    found(lines, "appended", 19)


def test_a_file_without_its_head_is_truncated(store):
    lines = exported(store)
    problem = found(lines[:-1], "truncated", 18)
    assert "no signed head" in problem.reason


def test_a_file_cut_mid_line_is_truncated(store):
    lines = exported(store)
    cut = lines[:12] + [lines[12][:40]]
    problem = found(cut, "truncated", 11)
    assert "cut off" in problem.reason
    assert found(lines[:-1] + [lines[-1][:-30]], "truncated", 18)


def test_an_empty_file_is_truncated():
    problem = checked([]).problem
    assert problem is not None and problem.kind == "truncated"


def test_a_head_signed_by_another_key_is_refused(store):
    lines = exported(store, key=OTHER_KEY)
    problem = found(lines, "signature", None)
    assert OTHER_KEY.key_id in problem.reason


def test_a_head_re_signed_under_this_key_id_by_another_key_is_refused(store):
    lines = exported(store)
    head = record(lines[-1])
    head.pop("signature")
    forged = base64.b64encode(OTHER_KEY.sign(canonical(head))).decode()
    lines[-1] = canonical({**head, "signature": forged}) + b"\n"
    problem = found(lines, "signature", None)
    assert "does not match" in problem.reason


def test_a_head_whose_count_was_changed_is_refused(store):
    lines = exported(store)
    lines[-1] = edited(lines[-1], count=17)
    found(lines, "signature", None)


def test_a_header_that_disagrees_with_the_signed_head_is_refused(store):
    lines = exported(store, Scope(team="team-1"))
    lines[0] = edited(lines[0], team="team-2")
    found(lines, "header", None)


def test_a_rewritten_chain_re_signed_by_another_key_is_refused(store):
    """Whoever rewrites every hash after an edit still cannot sign the head with our key."""
    lines = exported(store)
    digest, rewritten = GENESIS, [lines[0]]
    for line in lines[1:-1]:
        fields = record(line)
        fields.pop("hash")
        if fields["position"] == 3:
            fields["topic"] = "domain.task:Task.Deleted"
        digest = link(digest, canonical(fields))
        rewritten.append(canonical({**fields, "hash": digest}) + b"\n")
    head = record(lines[-1])
    head.update(hash=digest, key_id=OTHER_KEY.key_id)
    head.pop("signature")
    signature = base64.b64encode(OTHER_KEY.sign(canonical(head))).decode()
    rewritten.append(canonical({**head, "signature": signature}) + b"\n")
    assert verify(rewritten, OTHER_KEY.public).intact  # consistent in itself
    found(rewritten, "signature", None)  # but not ours


def test_the_canonical_form_is_pythons_sorted_compact_json_without_ascii_escapes(store):
    """docs/audit.md says an auditor can re-implement it with json.dumps: hold them together."""
    store.commit(a_task(title='tab\there "quoted" \\ \x00\x1f\x7f é ✓ / \U0001f600 \u2028'))
    for line in exported(store)[1:]:
        fields = record(line)
        python = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert canonical(fields) == python.encode("utf-8") == line.rstrip(b"\n")
