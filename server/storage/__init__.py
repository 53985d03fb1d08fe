"""Storage: SQLAlchemy models, the repository and the shipped Alembic migrations."""

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
    "EnrollmentError",
    "Repository",
    "TokenRejected",
    "read_then_write",
]
