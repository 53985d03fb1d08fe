"""ISAPI endpoints and vocabularies (public ISAPI documentation; † = seen in client code only)."""

from __future__ import annotations

from typing import Final

from agent.vendors.models import Setting

VENDOR: Final = "hikvision"
# Server headers: "webserver" (DS-2CD2xx3G2, 5.5+ firmware, as the lab persona), "App-webs/"
# (older IP cameras), "DNVRS-Webs" (DVR/NVR web servers)
SERVER_BANNERS: Final = frozenset({"webserver", "app-webs", "dnvrs-webs"})
DEVICE_INFO: Final = "/ISAPI/System/deviceInfo"
USERS: Final = "/ISAPI/Security/users"
ACTIVATE_STATUS: Final = "/SDK/activateStatus"  # answers without credentials, by design
TELNETD: Final = "/ISAPI/System/Network/telnetd"  # †
SSH: Final = "/ISAPI/System/Network/ssh"  # †
UPNP: Final = "/ISAPI/System/Network/UPnP"  # †
EZVIZ: Final = "/ISAPI/System/Network/EZVIZ"  # † Hik-Connect / EZVIZ cloud relay
SNMP_V2C: Final = "/ISAPI/System/Network/SNMP/V2c"  # † SNMPv2c: enabled, readCommunity
ILLEGAL_LOGIN_LOCK: Final = "/ISAPI/Security/illegalLoginLock"
TIME: Final = "/ISAPI/System/time"
NTP_SERVERS: Final = "/ISAPI/System/time/ntpServers"
# RTSP and web authentication: certificateType / CertificateType "digest" (Basic refused) or
# "digest/basic" (both)
RTSP_CERTIFICATE: Final = "/ISAPI/Security/RTSPCertificate"
WEB_CERTIFICATE: Final = "/ISAPI/Security/webCertificate"
CERTIFICATE_TYPES: Final = ("digest", "digest/basic")  # for digest-only True, False
# RTSP authentication on or off: the main stream's StreamingChannel, Transport/Security/enabled
# (false: streams to anyone without credentials; the channel's own <enabled> is another thing).
# The element the older web pages' "RTSP Authentication" setting reads and writes on channel
# 101; the manuals' "RTSP Authentication: basic or disable ... if you disable the RTSP
# authentication, anyone can access the video stream" (DS-2CD833 operation manual, section 10.2,
# http://38.142.81.21:8001/manual/hikvision/ds-2cd833-ei3/operation-manual-english/page-83.html).
# Recorded "true" on cameras of firmware 5.2 to 5.7, e.g. DS-2CD2532F-IWS and DS-2CD2386G2-IU
# (github.com/maciej-or/hikvision_next, tests/fixtures/devices/*.json, Streaming/channels/101);
# absent on an NVR's channel (unknown). Newer firmware's page offers only digest or digest/basic:
# such a camera is not found with it off, and may refuse "false".
STREAMING_CHANNEL: Final = "/ISAPI/Streaming/channels/101"
RTSP_AUTH_ELEMENT: Final = "Transport/Security/enabled"

# DS-2CD2xx3G2 firmware 5.5+ answers XML as "application/xml"; older 5.4 firmware (DS-2CD2x32)
# sends "text/xml". Both are accepted.
XML_TYPES: Final = frozenset({"application/xml", "text/xml"})

# ISAPI userLevel -> camwarden role.
ROLES: Final = {"administrator": "administrator", "operator": "operator", "viewer": "user"}
UPDATE_FIRMWARE: Final = "/ISAPI/System/updateFirmware"
USER: Final = "/ISAPI/Security/users/"  # + the id from USERS: PUT a User document
NAMESPACE: Final = "http://www.hikvision.com/ver20/XMLSchema"

# Settings a remediation writes: GET the resource, change one element, PUT the document back
# (resource, document element, element changed).
SETTING_RESOURCES: Final = {
    Setting.TELNET: (TELNETD, "Telnetd", "enabled"),
    Setting.SSH: (SSH, "SSH", "enabled"),
    Setting.UPNP: (UPNP, "UPnP", "enabled"),
    Setting.P2P: (EZVIZ, "EZVIZ", "enabled"),
    Setting.NTP: (TIME, "Time", "timeMode"),
    Setting.NTP_SERVER: (NTP_SERVERS, "NTPServerList", "hostName"),
    Setting.TIME_ZONE: (TIME, "Time", "timeZone"),  # a POSIX offset, "CST-7:00:00" is UTC+7
    Setting.SNMP: (SNMP_V2C, "SNMPv2c", "enabled"),
    Setting.SNMP_COMMUNITY: (SNMP_V2C, "SNMPv2c", "readCommunity"),
    Setting.RTSP_DIGEST_ONLY: (RTSP_CERTIFICATE, "RTSPCertificate", "certificateType"),
    Setting.HTTP_DIGEST_ONLY: (WEB_CERTIFICATE, "WebCertificate", "CertificateType"),
    Setting.RTSP_AUTH: (STREAMING_CHANNEL, "StreamingChannel", RTSP_AUTH_ELEMENT),
}
TIME_MODES: Final = ("NTP", "manual")  # timeMode for True, False
# recorders (NVR/DVR): the IP channels and their connection state (ContentMgmt InputProxy)
INPUT_PROXY: Final = "/ISAPI/ContentMgmt/InputProxy/channels"
INPUT_PROXY_STATUS: Final = "/ISAPI/ContentMgmt/InputProxy/channels/status"
