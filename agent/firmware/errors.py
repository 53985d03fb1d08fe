"""The firmware package's one error; the ``firmware.apply`` action turns it into ``StepFailed``.

::

    AgentError
     +-- StepError (agent.errors)
          +-- FirmwareError   an image or its signed metadata failed a check, or could not be
                         fetched; ``reason`` is a stable code of ``protocol.commands.REASONS``,
                         ``status`` is ``rejected`` for a refusal (an unapproved downgrade)
                         and ``failed`` otherwise
"""

from __future__ import annotations

from agent.errors import StepError


class FirmwareError(StepError):
    pass
