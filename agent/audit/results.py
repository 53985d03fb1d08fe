"""What one audit found: built by ``agent.audit.auditor``, carried from the audit worker to the
daemon as JSON (``agent.audit.worker``), sent in status reports. Kept apart from
``agent.audit.auditor`` so that the daemon can read a worker's result without importing the
audit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from protocol.messages import Camera, Finding


@dataclass(frozen=True, slots=True)
class AuditResult:
    cameras: tuple[Camera, ...]
    host_findings: tuple[Finding, ...]
    started_at: datetime
    duration_s: float
