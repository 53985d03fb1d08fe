"""Storage: SQLAlchemy models, the repository and the shipped Alembic migrations.

``Connection`` is the handle of one transaction (``read_then_write`` yields it) that callers
pass back to storage functions; they never build SQL with it.
"""

from sqlalchemy import Connection

from server.storage.errors import DatabaseUnavailable, RecordRefused, StorageError
from server.storage.repository import (
    AgentConflict,
    AgentRecord,
    EnrollmentError,
    Repository,
    TokenRejected,
    read_then_write,
)

__all__ = [
    "AgentConflict",
    "AgentRecord",
    "Connection",
    "DatabaseUnavailable",
    "EnrollmentError",
    "RecordRefused",
    "Repository",
    "StorageError",
    "TokenRejected",
    "read_then_write",
]
