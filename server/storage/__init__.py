"""Storage: SQLAlchemy models, the repository and the shipped Alembic migrations."""

from server.storage.repository import (
    AgentConflict,
    AgentRecord,
    EnrollmentError,
    Repository,
    TokenRejected,
)

__all__ = ["AgentConflict", "AgentRecord", "EnrollmentError", "Repository", "TokenRejected"]
