"""The two refusals of the command executor (see ``agent.commands``)."""

from __future__ import annotations

from typing import Literal

from agent.errors import AgentError, StepError
from protocol.messages import EvidenceValue


class CommandRefused(AgentError):
    def __init__(self, reason: str, detail: str, *, answer: bool = True) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.answer = answer


class StepFailed(StepError):
    """A step's stable refusal; ``details`` go with the final result (a failure that still
    hands something over, e.g. the sealed password of a camera that kept it)."""

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        status: Literal["failed", "rejected"] = "failed",
        details: dict[str, EvidenceValue] | None = None,
    ) -> None:
        super().__init__(reason, detail, status=status)
        self.details = details or {}
