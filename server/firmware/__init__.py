"""Firmware distribution (TUF), signed commands and rollout campaigns (collector side)."""

from __future__ import annotations

from datetime import timedelta

from server.config import FirmwareConfig
from server.firmware.tuf_repo import Lifetimes


def lifetimes(config: FirmwareConfig) -> Lifetimes:
    return Lifetimes(
        root=timedelta(seconds=config.root_expiry_s),
        targets=timedelta(seconds=config.targets_expiry_s),
        snapshot=timedelta(seconds=config.snapshot_expiry_s),
        timestamp=timedelta(seconds=config.timestamp_expiry_s),
    )
