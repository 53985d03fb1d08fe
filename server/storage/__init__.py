"""Storage: SQLAlchemy models, the repository and the shipped Alembic migrations."""

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
    "DatabaseUnavailable",
    "EnrollmentError",
    "RecordRefused",
    "Repository",
    "StorageError",
    "TokenRejected",
    "read_then_write",
]
