"""Errors raised by the camera lab.

LabError                  anything the lab refuses to do
 +-- ConfigError          a LAB.toml or persona file is invalid; the message names key, file, line
 +-- ServiceUnavailable   a system dependency is missing (GStreamer for RTSP)
 +-- BadImage             a firmware image is not in the persona's format
"""

from __future__ import annotations

__all__ = ["BadImage", "ConfigError", "LabError", "ServiceUnavailable"]


class LabError(Exception):
    """The lab cannot do what it was asked."""


class ConfigError(LabError):
    """An invalid lab or persona file. The message names the key, the file and the line."""


class ServiceUnavailable(LabError):
    """A lab service needs a system package this machine lacks; the message names it."""


class BadImage(LabError):
    """A firmware image is not in the format the persona's upgrade interface accepts."""
