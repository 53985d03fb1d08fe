"""Errors of the storage layer. The repository translates every database failure into one of them,
at one edge (``translate``), so that callers never handle a driver's or SQLAlchemy's exceptions.

StorageError                  the database did not store what it was given; nothing of the
 |                            transaction was kept
 +-- DatabaseUnavailable      down, unreachable, locked, a deadlock, a lost connection, or any
 |                            failure that says nothing about the data: the same work may succeed
 |                            later, so the caller retries it
 +-- RecordRefused            the database refused the data itself (a value it cannot hold, such
      |                       as a NUL in PostgreSQL text, a value too long for its column, a
      |                       constraint): the same rows will never be stored, so the caller
      |                       isolates and quarantines them instead of retrying
      +-- Conflict            a uniqueness or reference constraint: the row clashes with one
                              already stored (a name taken twice)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError, StatementError

from protocol.text import clean_text

__all__ = ["Conflict", "DatabaseUnavailable", "RecordRefused", "StorageError", "translate"]

_DETAIL_MAX = 512


class StorageError(Exception):
    """The database did not store what it was given. ``detail`` is the database's own reason,
    without control characters and at most 512 characters (it is stored and shown)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class DatabaseUnavailable(StorageError):
    """Nothing was stored, for a reason outside the data: retry later."""


class RecordRefused(StorageError):
    """The database refused the data itself: storing the same rows again cannot succeed."""


class Conflict(RecordRefused):
    """A constraint refused the row: it clashes with one already stored."""


def _reason(exc: SQLAlchemyError) -> str:
    # the driver's message, without the SQL statement and its parameters SQLAlchemy appends
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    first = str(cause).strip().splitlines()
    return clean_text(f"{type(cause).__name__}: {first[0] if first else ''}", _DETAIL_MAX)


@contextmanager
def translate() -> Iterator[None]:
    """Run a database operation; its SQLAlchemy errors leave as ``StorageError``."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict(_reason(exc)) from exc
    except DataError as exc:
        raise RecordRefused(_reason(exc)) from exc
    except StatementError as exc:
        if isinstance(exc, DBAPIError):  # the server or the driver failed, not our values
            raise DatabaseUnavailable(_reason(exc)) from exc
        # a bound value that could not be converted for the database (e.g. an integer beyond
        # SQLite's 64 bits): that row can never be stored
        raise RecordRefused(_reason(exc)) from exc
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(_reason(exc)) from exc
