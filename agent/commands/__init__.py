"""Signed commands from the collector: verification, replay store, journal and execution.

``verify`` (pure) -> ``replay`` (nonce claimed) -> ``journal`` -> ``executor``, which hands each
action a ``context.Run`` and nothing more. One module per action: ``firmware_apply``
(``firmware.apply``), ``password_rotate`` (``password.rotate``), ``remediate``
(``settings.apply`` and ``settings.restore``); ``escrow`` checks the organisation's escrow key
and seals to it; ``schedule`` makes the agent's own scheduled rotations and runs them through
the same executor.

Errors::

    AgentError
     +-- CommandRefused     the command is not carried out; ``reason`` is a stable code
     |                      (``protocol.commands.REASONS`` or a ``ProtocolError`` reason) and
     |                      ``answer`` says whether a signed ``rejected`` result is sent: not for
     |                      bytes the collector did not sign, nor for another agent, nor for a
     |                      replay (the original was answered already)
     +-- StepFailed         a started command stopped cleanly at a step; ``reason`` as above,
                            ``status`` is ``failed`` (or ``rejected`` for a refusal found in
                            preflight, e.g. a downgrade without approval)

Nothing is sent to a camera before the command verified, was claimed in the replay store and
its journal entry was written.
"""
