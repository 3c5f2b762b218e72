"""``simple_query`` (infrastructure/audit_digests.py): the event store's own statements sent
through libpq's ``PQexec``, failing as psycopg fails, so that the recorder's retries and the
callers' error handling see the same exceptions as through a cursor."""

from __future__ import annotations

import psycopg
import pytest

from infrastructure.audit_digests import simple_query


def status(conn: psycopg.Connection) -> psycopg.pq.TransactionStatus:
    return conn.info.transaction_status


def test_the_last_statements_rows_come_back_and_the_transaction_stays_open(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        result = simple_query(conn, b"BEGIN; SELECT 41 + 1, 'a'")
        assert (result.ntuples, result.get_value(0, 0), result.get_value(0, 1)) == (1, b"42", b"a")
        assert status(conn) == psycopg.pq.TransactionStatus.INTRANS
        simple_query(conn, b"COMMIT")
        assert status(conn) == psycopg.pq.TransactionStatus.IDLE


def test_a_server_error_is_raised_as_psycopg_raises_it_by_its_sqlstate(postgres_url):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedTable):
            simple_query(conn, b"BEGIN; SELECT * FROM no_such_table")
        assert status(conn) == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            simple_query(conn, b"EXECUTE no_such_statement")
        assert conn.execute("SELECT 1").fetchone() == (1,)  # still usable


def test_a_lost_connection_is_an_operational_error(postgres_url):
    with (
        psycopg.connect(postgres_url, autocommit=True) as conn,
        psycopg.connect(postgres_url, autocommit=True) as other,
    ):
        pid = conn.info.backend_pid
        other.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # waits for it to end
        with pytest.raises(psycopg.OperationalError):
            simple_query(conn, b"BEGIN; SELECT 1")
        assert conn.broken or conn.closed
