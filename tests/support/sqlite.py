"""Another writer on a SQLite database, as the running collector's ingest is to the web app."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def another_writer(db_url: str, hold_s: float = 1.0) -> Iterator[None]:
    """Another process's write transaction (the ingest's, say) holds SQLite's write lock for
    ``hold_s`` from the moment the block starts, then commits."""
    holding = threading.Event()

    def write() -> None:
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS scratch (x INTEGER)")
            conn.execute("INSERT INTO scratch VALUES (1)")
            holding.set()
            time.sleep(hold_s)
            conn.execute("COMMIT")
        finally:
            conn.close()

    writer = threading.Thread(target=write)
    writer.start()
    assert holding.wait(10)
    try:
        yield
    finally:
        writer.join()
