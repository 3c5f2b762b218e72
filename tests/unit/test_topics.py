"""Stored topics are public API: every topic an earlier version could store still resolves, to a
class of the same name, however modules have moved since (application/topics.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eventsourcing.utils import resolve_topic

from application import topics

FIXTURES = Path(__file__).parent.parent / "fixtures"
TOPICS = [
    line
    for line in (FIXTURES / "topics_v1.txt").read_text().splitlines()
    if line and not line.startswith("#")
]


@pytest.mark.parametrize("topic", TOPICS)
def test_every_topic_stored_by_an_earlier_version_resolves_to_its_class(topic):
    topics.register()  # as every Ledger does when it is made
    cls = resolve_topic(topic)
    assert isinstance(cls, type)
    qualname = topic.partition(":")[2]
    if "." in qualname:  # an aggregate's event: renaming an aggregate keeps its events' names
        assert cls.__qualname__.rsplit(".", 1)[-1] == qualname.rsplit(".", 1)[-1]
