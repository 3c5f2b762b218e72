"""Closing the ledger while another thread still reads through it."""

from __future__ import annotations

import threading
from pathlib import Path

from application.ledger import Ledger
from infrastructure.event_store import ledger_env
from infrastructure.settings import Settings


def test_closing_waits_for_a_read_in_another_thread_to_give_its_connection_back(tmp_path: Path):
    settings = Settings(data_dir=tmp_path)
    Ledger(env=ledger_env(settings, create_tables=True)).close()
    ledger = Ledger(env=ledger_env(settings, create_tables=False))
    ledger.close_grace = 600.0  # however slow the machine, close waits for the reader here
    holding, release = threading.Event(), threading.Event()
    answers: list[object] = []

    def reader() -> None:
        datastore = ledger.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as cursor:
            holding.set()
            release.wait(60)
            cursor.execute(f"SELECT MAX(rowid) FROM {ledger.events_table}")  # noqa: S608
            answers.append(tuple(cursor.fetchone()))

    reading = threading.Thread(target=reader)
    reading.start()
    assert holding.wait(60)
    closing = threading.Thread(target=ledger.close)
    closing.start()
    closing.join(0.5)
    assert closing.is_alive(), "close did not wait for the connection in use"
    release.set()
    reading.join(60)
    closing.join(60)
    assert answers == [(None,)] and not closing.is_alive()
