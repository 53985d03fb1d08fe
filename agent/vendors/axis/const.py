"""VAPIX endpoints (public VAPIX documentation)."""

from __future__ import annotations

from typing import Final

from agent.vendors.models import Setting

VENDOR: Final = "axis"
SERVER_BANNERS: Final = frozenset({"apache"})  # AXIS OS 10-11 (Apache httpd, as the lab persona)
BASIC_DEVICE_INFO: Final = "/axis-cgi/basicdeviceinfo.cgi"
BASIC_DEVICE_INFO_VERSION: Final = "1.3"
PARAM: Final = "/axis-cgi/param.cgi?action=list&group="
PWDGRP: Final = "/axis-cgi/pwdgrp.cgi?action=get"
BRAND: Final = "Brand"  # readable by any user: the cheap protected URL for try_login
PROPERTIES: Final = "Properties"  # Firmware.Version, System.SerialNumber (all firmware)
SSH: Final = "Network.SSH"
# the built-in FTP server: Enabled=yes|no (recorded parameter lists of AXIS M1065-LW 9.10.1,
# github.com/Kane610/axis tests/parameters/test_param_cgi.py, and P5534 5.40)
FTP: Final = "Network.FTP"
UPNP: Final = "Network.UPnP"
REMOTE_SERVICE: Final = "RemoteService"  # O3C / AVHS one-click cloud connection
TIME: Final = "Time"
# AXIS OS 7.30+ "Prevent brute-force attacks" (Plain config > System; on by default since 11.5:
# 20 failures in 1 s block the client for 10 s). Sources: the AXIS OS knowledge base, "Brute
# force delay protection" (help.axis.com/en-us/axis-os-knowledge-base), which names the
# settings DOSBlockingPeriod, DOSPageCount, DOSPageInterval, DOSSiteCount, DOSSiteInterval
# and "Activate Password Throttling"; a device's parameter tree lists them in this group as
# ActivatePasswordThrottling=On, DoSBlockingPeriod=10 and so on (spelling read case-blind).
BRUTE_FORCE: Final = "System.PreventDoSAttack"
THROTTLING: Final = "activatepasswordthrottling"
BLOCK_S: Final = "dosblockingperiod"
PAGE_COUNT: Final = "dospagecount"  # failures per page (URI) per DOSPageInterval
PAGE_INTERVAL_S: Final = "dospageinterval"

# AXIS OS 10-11 answers param.cgi as "text/plain"; basicdeviceinfo as "application/json".
TEXT_TYPES: Final = frozenset({"text/plain"})

# pwdgrp groups, most privileged first -> camwarden role.
GROUPS: Final = (("admin", "administrator"), ("operator", "operator"), ("viewer", "user"))
FIRMWARE_MANAGEMENT: Final = "/axis-cgi/firmwaremanagement.cgi"
FIRMWARE_API_VERSION: Final = "1.4"
# + user (query) and pwd (secret query parameter); answers "Modified account <user>."
PWDGRP_UPDATE: Final = "/axis-cgi/pwdgrp.cgi?action=update"

# Settings a remediation writes, in one param.cgi update: setting -> parameter ("yes"/"no" for
# flags; the time source is "NTP" or "None").
PARAM_UPDATE: Final = "/axis-cgi/param.cgi?action=update"
SETTING_PARAMS: Final = {
    Setting.SSH: f"{SSH}.Enabled",
    Setting.FTP: f"{FTP}.Enabled",
    Setting.UPNP: f"{UPNP}.Enabled",
    Setting.P2P: f"{REMOTE_SERVICE}.Enabled",
    Setting.NTP: f"{TIME}.SyncSource",
    Setting.NTP_SERVER: f"{TIME}.NTP.Server",
    Setting.TIME_ZONE: f"{TIME}.TimeZone",
}
FLAG_WORDS: Final = ("yes", "no")
SYNC_SOURCES: Final = ("NTP", "None")
