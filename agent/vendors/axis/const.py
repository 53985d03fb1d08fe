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
UPNP: Final = "Network.UPnP"
REMOTE_SERVICE: Final = "RemoteService"  # O3C / AVHS one-click cloud connection
TIME: Final = "Time"
# The groups below as real cameras list them (tests/fixtures/real/axis): AXIS P3268-LVE 11.8.61
# (FouxFox/AxisPowershell on GitHub, ref/Property_List.txt), AXIS M1065-LW 9.x (Kane610/axis,
# tests/parameters/test_param_cgi.py) and AXIS P5534 5.40.9.5 (b01xy/astroflux,
# armoire/axis/paramlist.cgi).
# Network.HTTP.AuthenticationPolicy: "digest" (P3268-LVE, M1065-LW) or "basic_digest" (P5534).
# The product manuals call it "HTTP/RTSP Password Settings" (encrypted only, or encrypted &
# unencrypted, the default): one setting for the web server and the RTSP server alike (e.g.
# the AXIS P3915-R Mk II user manual, System options > Security > Users).
HTTP: Final = "Network.HTTP"
AUTH_POLICY: Final = "AuthenticationPolicy"
# Network.RTSP.ProtViewer: "password" (P3268-LVE, P5534) or "anonymous", the manuals' "Enable
# anonymous viewer login" for RTSP; public provisioning code writes "anonymous" to let RTSP
# viewers in without credentials (aquakube/kube-axis, apps/workflow/src/axis/configure.py). The
# web's own switch is System.BoaProtViewer (not written here). M1065-LW lists it as "******".
RTSP: Final = "Network.RTSP"
PROT_VIEWER: Final = "ProtViewer"
# SNMP: Enabled (the agent), V1, V2c, V3 (the versions it answers), V1ReadCommunity (the read
# community of v1 and v2c: there is no V2c community; "public" on all three cameras). The v1/v2c
# agent answers when Enabled and V1 or V2c are "yes" (kube-axis above turns it on with
# SNMP.Enabled, V1 and V2c = yes). V3 is never touched.
SNMP: Final = "SNMP"
SNMP_VERSIONS: Final = ("V1", "V2c")
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
# flags unless SETTING_WORDS spells them otherwise).
PARAM_UPDATE: Final = "/axis-cgi/param.cgi?action=update"
SETTING_PARAMS: Final = {
    Setting.SSH: f"{SSH}.Enabled",
    Setting.UPNP: f"{UPNP}.Enabled",
    Setting.P2P: f"{REMOTE_SERVICE}.Enabled",
    Setting.NTP: f"{TIME}.SyncSource",
    Setting.NTP_SERVER: f"{TIME}.NTP.Server",
    Setting.TIME_ZONE: f"{TIME}.TimeZone",
    # one parameter for both: a write of either changes the other (the adapter refuses to
    # be asked for different values of the two)
    Setting.HTTP_DIGEST_ONLY: f"{HTTP}.{AUTH_POLICY}",
    Setting.RTSP_DIGEST_ONLY: f"{HTTP}.{AUTH_POLICY}",
    Setting.RTSP_AUTH: f"{RTSP}.{PROT_VIEWER}",
    # with SNMP.V1 written alike; on: SNMP.Enabled=yes too (SNMP_ON)
    Setting.SNMP: f"{SNMP}.V2c",
    Setting.SNMP_COMMUNITY: f"{SNMP}.V1ReadCommunity",
}
FLAG_WORDS: Final = ("yes", "no")
# flags spelt otherwise: (on, off)
SETTING_WORDS: Final = {
    Setting.NTP: ("NTP", "None"),
    Setting.HTTP_DIGEST_ONLY: ("digest", "basic_digest"),
    Setting.RTSP_DIGEST_ONLY: ("digest", "basic_digest"),
    Setting.RTSP_AUTH: ("password", "anonymous"),
}
SNMP_ALSO: Final = f"{SNMP}.V1"  # written with SNMP.V2c: the v1/v2c agent is one switch
SNMP_ON: Final = f"{SNMP}.Enabled"  # "yes" with a write that turns v1/v2c on
