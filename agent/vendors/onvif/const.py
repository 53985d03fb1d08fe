"""ONVIF service names, access classes and vocabularies (ONVIF Core specification)."""

from __future__ import annotations

from typing import Final

VENDOR: Final = "onvif"
DEVICE_PATH: Final = "/onvif/device_service"  # the fixed device service address (ONVIF Core)
DEVICE_NS: Final = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS: Final = "http://www.onvif.org/ver10/media/wsdl"
DEVICE_BINDING: Final = "{" + DEVICE_NS + "}DeviceBinding"
MEDIA_BINDING: Final = "{" + MEDIA_NS + "}MediaBinding"
DEVICE_WSDL: Final = "devicemgmt.wsdl"
MEDIA_WSDL: Final = "media.wsdl"

# AUTH-10: operations that must refuse an anonymous caller (not PRE_AUTH in ONVIF Core).
PROTECTED_PROBES: Final = (
    "GetDeviceInformation",
    "GetProfiles",
    "GetStreamUri",
    "GetNetworkInterfaces",
    "GetUsers",
)
# GetStreamUri needs a token even when GetProfiles is refused. A camera enforcing auth refuses
# before it looks at the token; one that does not answers a URI or a ter:NoProfile fault, and
# either answer shows the operation ran without credentials.
PLACEHOLDER_PROFILE: Final = "Profile_1"

# ONVIF UserLevel -> camwarden role.
ROLES: Final = {
    "Administrator": "administrator",
    "Operator": "operator",
    "User": "user",
    "Anonymous": "anonymous",
    "Extended": "extended",
}
