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

__all__ = ["ONVIF_SETTINGS", "ON_REQUEST", "REMEDIES", "VENDOR_SETTINGS", "WITHHELD"]

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
            "rtsp_auth",
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
            "time_zone",
            "snmp",
            "snmp_community",
            "onvif_auth",
            "rtsp_auth",
            "rtsp_digest_only",
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
# Settings a vendor's API reaches only through a change no plan makes on its own, with the
# reason a plan shows (the catalogue's ``remediation.reason.<reason>``; otherwise a setting
# missing from the vendor's row is ``not_settable``). Hikvision: ONVIF's only switches are
# ONVIF on or off, its users and the login schemes it accepts (ISAPI Integrate, <ONVIF><enable>
# and <certificateType>, as public client code writes it; the manuals' "Enable ONVIF" and ONVIF
# users, e.g. http://38.142.81.21:8001/manual/hikvision/ds-2xm6726g0-is-nd-2mm/user-manual-
# english/page-83.html); none makes the camera refuse an anonymous caller, and turning ONVIF
# off cuts off the recorders and video management software that use it. Axis: no public source
# names a VAPIX parameter for anonymous ONVIF callers; the device answers them until an ONVIF
# user exists ("By creating a user you automatically enable ONVIF communication. Use the
# username and password with all ONVIF communication", the product manuals, e.g. AXIS P3915-R
# Mk II; "anonymous ONVIF calls" in the factory default state, the AXIS OS knowledge base,
# https://help.axis.com/en-us/axis-os-knowledge-base#device-access): an account, not a setting.
WITHHELD: Final[Mapping[str, Mapping[SettingName, str]]] = {
    "hikvision": {"onvif_auth": "onvif_off_only"},
    "axis": {"onvif_auth": "onvif_user_only"},
}
# the settings any camera's ONVIF service writes, beside its vendor's API
ONVIF_SETTINGS: Final[frozenset[SettingName]] = frozenset({"discoverable", "ddns"})
