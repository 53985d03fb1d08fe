"""The two refusals of the command executor (see ``agent.commands``)."""

from __future__ import annotations

from agent.errors import AgentError, StepError


class CommandRefused(AgentError):
    def __init__(self, reason: str, detail: str, *, answer: bool = True) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.answer = answer


class StepFailed(StepError):
    pass
