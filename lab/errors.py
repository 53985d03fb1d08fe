"""Errors raised by the camera lab.

LabError                  anything the lab refuses to do
 +-- ConfigError          a LAB.toml or persona file is invalid; the message names key, file, line
 +-- ServiceUnavailable   a camera needs a lab service module that is not installed
 +-- BadImage             a firmware image is not in the persona's format
"""

from __future__ import annotations

__all__ = ["BadImage", "ConfigError", "LabError", "ServiceUnavailable"]


class LabError(Exception):
    """The lab cannot do what it was asked."""


class ConfigError(LabError):
    """An invalid lab or persona file. The message names the key, the file and the line."""


class ServiceUnavailable(LabError):
    """A camera needs a service module (RTSP, SNMP, ...) that this installation lacks."""


class BadImage(LabError):
    """A firmware image is not in the format the persona's upgrade interface accepts."""
