"""SQLite enforces foreign keys as PostgreSQL does, and migrations still rebuild tables that
others refer to: upgrading a 0.2.0 database that holds an alert's deliveries (0009 rebuilds
``alert_events``) keeps every row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Boolean, DateTime, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError

from server.storage import Repository
from server.storage.migrate import upgrade


def _row(table: Table, **given: object) -> dict[str, object]:
    """``given`` and a value for every other column that needs one."""
    row = dict(given)
    for column in table.columns:
        if column.name in row or column.nullable or column.primary_key:
            continue
        kind = column.type
        row[column.name] = (
            datetime(2026, 1, 1, tzinfo=UTC)
            if isinstance(kind, DateTime)
            else False
            if isinstance(kind, Boolean)
            else 0
            if isinstance(kind, Integer)
            else "x"
            if isinstance(kind, String)
            else "{}"
        )
    return row


def test_a_row_naming_no_parent_is_refused(tmp_path: Path) -> None:
    repo = Repository.open(f"sqlite:///{tmp_path / 'c.db'}")
    repo.migrate()
    tables = MetaData()
    tables.reflect(repo.engine, only=["alert_deliveries"])
    with pytest.raises(IntegrityError), repo.engine.begin() as conn:
        conn.execute(
            insert(tables.tables["alert_deliveries"]).values(
                _row(tables.tables["alert_deliveries"], event_id=404, route_id=404)
            )
        )


def test_an_upgrade_rebuilding_a_parent_table_keeps_its_children(tmp_path: Path) -> None:
    repo = Repository.open(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(repo.engine, "0008")
    tables = MetaData()
    tables.reflect(repo.engine, only=["alert_routes", "alert_events", "alert_deliveries"])
    routes, events, deliveries = (
        tables.tables[t] for t in ("alert_routes", "alert_events", "alert_deliveries")
    )
    with repo.engine.begin() as conn:
        conn.execute(insert(routes).values(_row(routes, id=1)))
        conn.execute(insert(events).values(_row(events, id=1)))
        conn.execute(insert(deliveries).values(_row(deliveries, id=1, event_id=1, route_id=1)))
    repo.migrate()  # 0009 copies alert_events, drops the old table, renames the copy
    with repo.engine.connect() as conn:
        assert conn.execute(select(deliveries.c.event_id)).scalars().all() == [1]
        assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
