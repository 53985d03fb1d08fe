"""Which settings close which finding, and which settings each vendor's API writes (pure).

The contract between the collector, which plans a remediation from stored findings, and the
agent, whose vendor adapters write the settings (``agent.vendors``: each adapter's ``settable``
is its vendor's row here, and a test holds every adapter to it). A finding is closed by all of
its settings or left alone; a flag takes its safe value (``protocol.commands.SAFE_VALUES``),
a text setting the value the plan gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from protocol.commands import SettingName

__all__ = ["ONVIF_SETTINGS", "ON_REQUEST", "REMEDIES", "VENDOR_SETTINGS"]

# finding code -> the settings that close it
REMEDIES: Final[Mapping[str, tuple[SettingName, ...]]] = {
    "svc.telnet_open": ("telnet",),
    "svc.ssh_open": ("ssh",),
    "svc.ftp_open": ("ftp",),
    "svc.upnp_answers": ("upnp",),
    "svc.p2p_enabled": ("p2p",),
    "svc.ddns_enabled": ("ddns",),
    "svc.discoverable": ("discoverable",),
    "com.snmp_community": ("snmp",),
    "log.time_manual": ("ntp", "ntp_server"),
    "auth.http_basic": ("http_digest_only",),
    "auth.rtsp_anonymous": ("rtsp_auth",),
    "auth.rtsp_basic": ("rtsp_digest_only",),
    "onvif.anonymous_access": ("onvif_auth",),
}
# fixed only when a plan's selection names it: a site may rely on it (discovery by its recorder)
ON_REQUEST: Final = frozenset({"svc.discoverable"})
# The settings each vendor's own API writes (the adapter of ``agent.vendors.<vendor>``).
VENDOR_SETTINGS: Final[Mapping[str, frozenset[SettingName]]] = {
    "hikvision": frozenset(
        {
            "telnet",
            "ssh",
            "upnp",
            "p2p",
            "ntp",
            "ntp_server",
            "time_zone",
            "snmp",
            "snmp_community",
            "http_digest_only",
            "rtsp_digest_only",
        }
    ),
    "dahua": frozenset(
        {
            "telnet",
            "ssh",
            "upnp",
            "p2p",
            "ddns",
            "ntp",
            "ntp_server",
            "snmp",
            "snmp_community",
            "onvif_auth",
            "rtsp_auth",
        }
    ),
    "axis": frozenset(
        {
            "ssh",
            "upnp",
            "p2p",
            "ntp",
            "ntp_server",
            "time_zone",
            "snmp",
            "snmp_community",
            "http_digest_only",
            "rtsp_digest_only",
            "rtsp_auth",
        }
    ),
}
# the settings any camera's ONVIF service writes, beside its vendor's API
ONVIF_SETTINGS: Final[frozenset[SettingName]] = frozenset({"discoverable", "ddns"})
