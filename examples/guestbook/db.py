"""A few pooled PostgreSQL connections, configured the libpq way (PGHOST, PGUSER, ...).

The password is POSTGRES_PASSWORD, the secret the db accessory receives too (set once with
`dockyard env set POSTGRES_PASSWORD -`), or PGPASSWORD.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

_pool: queue.LifoQueue[psycopg.Connection] = queue.LifoQueue(maxsize=8)


def connect() -> psycopg.Connection:
    password = os.environ.get("PGPASSWORD") or os.environ.get("POSTGRES_PASSWORD")
    url = os.environ.get("DATABASE_URL", "")
    return psycopg.connect(url, password=password, connect_timeout=5, autocommit=True)


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    """A pooled connection; a broken one is dropped, never reused."""
    try:
        conn = _pool.get_nowait()
    except queue.Empty:
        conn = connect()
    try:
        yield conn
    except psycopg.Error:
        conn.close()
        raise
    if conn.closed or conn.broken:
        return
    try:
        _pool.put_nowait(conn)
    except queue.Full:
        conn.close()


def wait_for_database(seconds: float = 60.0) -> None:
    """The database may still be starting (first boot, a restart): try for a while."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with connection() as conn:
                conn.execute("SELECT 1")
            return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"database unreachable: {exc}") from None
            time.sleep(1)
