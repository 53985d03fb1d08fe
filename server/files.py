"""Durable file replacement for the collector's own state (keys, CRL, TUF metadata, feeds)."""

from __future__ import annotations

from service.install import write_file as atomic_write

__all__ = ["atomic_write"]
