"""The firmware package's one error; the ``firmware.apply`` action turns it into ``StepFailed``.

::

    AgentError
     +-- FirmwareError   an image or its signed metadata failed a check, or could not be
                         fetched; ``reason`` is a stable code of ``protocol.commands.REASONS``,
                         ``status`` is ``rejected`` for a refusal (an unapproved downgrade)
                         and ``failed`` otherwise
"""

from __future__ import annotations

from typing import Literal

from agent.errors import AgentError


class FirmwareError(AgentError):
    def __init__(
        self, reason: str, detail: str, *, status: Literal["failed", "rejected"] = "failed"
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.status = status
