"""The two refusals of the command executor (see ``agent.commands``)."""

from __future__ import annotations

from typing import Literal

from agent.errors import AgentError


class CommandRefused(AgentError):
    def __init__(self, reason: str, detail: str, *, answer: bool = True) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.answer = answer


class StepFailed(AgentError):
    def __init__(
        self, reason: str, detail: str, *, status: Literal["failed", "rejected"] = "failed"
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status
