"""Schema migrations: Alembic scripts shipped inside the package, applied up to head."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine

SCRIPT_LOCATION = "server.storage:migrations"


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    with engine.connect() as connection, _foreign_keys_deferred(connection), connection.begin():
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if connection.dialect.name == "sqlite":
            orphan = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
            if orphan is not None:  # rolled back: the schema stays as it was
                raise RuntimeError(f"migration left a row of {orphan[0]} without its parent")


@contextmanager
def _foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite only: foreign keys off while migrating. A batch step copies a table, drops the
    old one and renames the copy; with foreign keys enforced, the drop would delete or refuse
    the rows that refer to it. Checked once at the end instead (``foreign_key_check``).
    The pragma works outside a transaction only: set on the driver's connection."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    if raw is None:  # the connection was invalidated
        raise RuntimeError("no database connection to migrate on")
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")
