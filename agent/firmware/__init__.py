"""Firmware updates: ``manifest`` (pure checks of the signed target metadata against the command
and the camera), ``fetcher`` (resumable, bounded HTTP for ngclient), ``updater`` (TUF ngclient:
metadata refresh, verified download). The ``firmware.apply`` action that uses them is
``agent.commands.firmware_apply``.

``tuf`` is imported only by ``fetcher``/``updater``, which the executor loads when a firmware
command arrives (tuf.ngclient costs ~25 MB RSS; lab-notes §9).
"""
