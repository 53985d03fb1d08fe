"""Dahua CGI endpoints (public Dahua HTTP API; † = seen in client code only)."""

from __future__ import annotations

from typing import Final

from agent.vendors.models import Setting

VENDOR: Final = "dahua"
SERVER_BANNERS: Final = frozenset({"webs"})  # the Server header of the lab's Dahua persona
SOFTWARE_VERSION: Final = "/cgi-bin/magicBox.cgi?action=getSoftwareVersion"
DEVICE_TYPE: Final = "/cgi-bin/magicBox.cgi?action=getDeviceType"
SERIAL_NO: Final = "/cgi-bin/magicBox.cgi?action=getSerialNo"
SYSTEM_INFO: Final = "/cgi-bin/magicBox.cgi?action=getSystemInfo"
USERS: Final = "/cgi-bin/userManager.cgi?action=getUserInfoAll"
CURRENT_TIME: Final = "/cgi-bin/global.cgi?action=getCurrentTime"
CONFIG: Final = "/cgi-bin/configManager.cgi?action=getConfig&name="
UPNP: Final = "UPnP"
P2P: Final = "T2UServer"  # † Easy4ip / DMSS cloud relay
SSHD: Final = "SSHD"  # †
TELNET: Final = "Telnet"  # † Telnet.Enable
SNMP: Final = "SNMP"  # † SNMP.Enable (the v1/v2c agent), SNMP.GetCommunity (read community)
DDNS: Final = "DDNS"  # †
NTP: Final = "NTP"  # †
# NTP.TimeZone: the camera's zone as an index into a table of fixed offsets (NTP.TimeZoneDesc, a
# label beside it on newer firmware, is not read or written). The table, in minutes east of
# UTC: Dahua NetSDK's EM_CFG_TIME_ZONE_TYPE, "time zone definition (NTP)", 0 "GMT+00:00" ...
# 32 "GMT-12:00" (the NetSDK Java binding in github.com/brucejiao/NFCProject,
# app/src/main/java/com/company/NetSDK/EM_CFG_TIME_ZONE_TYPE.java). Recorded answers agree:
# 25 with TimeZoneDesc "Easterntime" (UTC-5) on a DH-NVR608H, 22 "Brasilia" (UTC-3), 3
# "Moscow" (UTC+3). Summer time is a separate setting (Locales.DSTEnable), not read here.
TIME_ZONES: Final = (
    *(h * 60 for h in (0, 1, 2, 3)),
    3 * 60 + 30,
    4 * 60,
    4 * 60 + 30,
    5 * 60,
    5 * 60 + 30,
    5 * 60 + 45,
    6 * 60,
    6 * 60 + 30,
    *(h * 60 for h in (7, 8, 9)),
    9 * 60 + 30,
    *(h * 60 for h in (10, 11, 12, 13, -1, -2, -3)),
    -(3 * 60 + 30),
    *(h * 60 for h in (-4, -5, -6, -7, -8, -9, -10, -11, -12)),
)
# UserGlobal.OnvifLoginCheck: ONVIF asks for credentials (false: anonymous callers answered)
USER_GLOBAL: Final = "UserGlobal"  # †
# RTSP.AuthType: digest, basic or disable (disable: streams without credentials), the key
# public Dahua client code sets with setConfig (deemnz/dahua_change_settings on GitHub,
# dahua_api/camera_rtsp.py: "RTSP.AuthType=digest / basic / disable"). One key holds two
# settings: RTSP authentication (disable: off) and Digest only (digest: on, basic: off; read
# from the words' names [no vendor document found]).
RTSP: Final = "RTSP"
RTSP_AUTH_TYPE: Final = f"{RTSP}.AuthType"
# † The login lock lives in the General table: LockLoginEnable (true/false), LockLoginTimes
# (failures before the lock) and LoginFailLockTime (seconds), as read by a public Intelbras
# (Dahua OEM) DVR/NVR client that states it confirmed them on three live recorders
# (github.com/bggcreate/gerador-de-relatorio, 2026). LoginFailureAlarm only raises an alarm.
GENERAL: Final = "General"
LOCK_ENABLE: Final = "table.General.LockLoginEnable"
LOCK_TIMES: Final = "table.General.LockLoginTimes"
LOCK_TIME_S: Final = "table.General.LoginFailLockTime"

# IPC-HFW/HDW firmware 2.800 answers "text/plain;charset=utf-8"; some 2.6xx builds answer with
# no content type at all [unverified]. Only text/plain is accepted until one is recorded.
TEXT_TYPES: Final = frozenset({"text/plain"})

# userManager Group -> camwarden role.
ROLES: Final = {"admin": "administrator", "user": "user"}
UPLOAD_FIRMWARE: Final = "/cgi-bin/upgrader.cgi?action=uploadFirmware"
# + name (query), pwd and pwdOld (secret query parameters); answers "OK"
MODIFY_PASSWORD: Final = "/cgi-bin/userManager.cgi?action=modifyPassword"  # noqa: S105 (a URL)

# Settings a remediation writes, in one setConfig request: setting -> config key (the tables
# the audit reads above; "true"/"false" for flags).
SET_CONFIG: Final = "/cgi-bin/configManager.cgi?action=setConfig"
SETTING_KEYS: Final = {
    Setting.TELNET: "Telnet.Enable",
    Setting.SSH: "SSHD.Enable",
    Setting.UPNP: "UPnP.Enable",
    Setting.P2P: "T2UServer.Enable",
    Setting.DDNS: "DDNS[0].Enable",
    Setting.NTP: "NTP.Enable",
    Setting.NTP_SERVER: "NTP.Address",
    Setting.TIME_ZONE: f"{NTP}.TimeZone",  # the index of TIME_ZONES
    Setting.SNMP: "SNMP.Enable",
    Setting.SNMP_COMMUNITY: "SNMP.GetCommunity",
    Setting.ONVIF_AUTH: f"{USER_GLOBAL}.OnvifLoginCheck",
    Setting.RTSP_AUTH: RTSP_AUTH_TYPE,
    Setting.RTSP_DIGEST_ONLY: RTSP_AUTH_TYPE,
}
FLAG_WORDS: Final = ("true", "false")
# RTSP.AuthType for the two settings it holds (``parsers.rtsp_auth_type``)
RTSP_OFF: Final = "disable"
RTSP_DIGEST: Final = "digest"
RTSP_BASIC: Final = "basic"
RTSP_SETTINGS: Final = frozenset({Setting.RTSP_AUTH, Setting.RTSP_DIGEST_ONLY})
# recorders (NVR/DVR): the remote devices (IP cameras) with their stored logins, and the
# connection state per channel (public Dahua HTTP API)
REMOTE_DEVICE: Final = "RemoteDevice"
CAMERA_STATE: Final = "/cgi-bin/LogicDeviceManager.cgi?action=getCameraState&uniqueChannels[0]=-1"
