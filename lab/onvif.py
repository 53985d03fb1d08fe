"""ONVIF Device Management and Media over SOAP 1.2, as a camera answers them.

Authentication is WS-UsernameToken (PasswordDigest checked against the camera's clock, ±5 min,
nonces single-use) or HTTP Digest. Operations carry the access class of the ONVIF Core spec;
anything not PRE_AUTH (or seeded into ``onvif_noauth_ops``, until the camera's ``onvif_auth``
setting is turned on) needs a user whose role the class
allows. Response bodies are shaped to the ONVIF WSDLs so that real clients parse them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple
from xml.sax.saxutils import escape

from lxml import etree

from lab.camera import AuthScheme, Camera
from lab.config import User
from lab.errors import BadImage
from lab.settings import SettingName

__all__ = [
    "ACCESS",
    "PARSER",
    "PRE_AUTH",
    "Login",
    "OnvifReply",
    "handle_soap",
    "handle_upload",
]

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
}
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
CONTENT_TYPE = "application/soap+xml; charset=utf-8"
CREATED_TOLERANCE_S = 300
UPLOAD_PATH = "/onvif/firmware/"
NOT_SUPPORTED = "ter:ActionNotSupported"
SENDER_FAULTS = frozenset({"ter:NotAuthorized", "ter:InvalidArgVal", "ter:InvalidArgs"})

Access = Literal[
    "pre_auth", "read_system", "read_secret", "write_system", "unrecoverable", "read_media"
]
ALLOWED_ROLES: dict[Access, frozenset[str]] = {
    "pre_auth": frozenset({"admin", "operator", "user"}),
    "read_system": frozenset({"admin", "operator", "user"}),
    "read_media": frozenset({"admin", "operator", "user"}),
    "read_secret": frozenset({"admin"}),
    "write_system": frozenset({"admin"}),
    "unrecoverable": frozenset({"admin"}),
}
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True)


@dataclass(frozen=True, slots=True)
class OnvifReply:
    status: int
    body: bytes
    op: str
    auth: AuthScheme
    user: str | None
    challenge: bool = False  # add a WWW-Authenticate header (401 personas)


class Login(NamedTuple):
    """The outcome of the credentials a request carried: scheme, user (None: refused), name."""

    scheme: AuthScheme
    user: User | None
    name: str | None  # the user name presented, if any


@dataclass(frozen=True, slots=True)
class _Call:
    camera: Camera
    request: etree._Element  # the operation element inside the Body
    base: str  # scheme://host:port of the interface the client used


Handler = Callable[[_Call], str]


def _t(tag: str, value: object) -> str:
    return f"<tt:{tag}>{escape(str(value))}</tt:{tag}>"


def _arg(call: _Call, name: str) -> str:
    found = call.request.find(f".//{{*}}{name}")
    return (found.text or "").strip() if found is not None else ""


def _datetime(when: dt.datetime) -> str:
    return (
        f"<tt:Time>{_t('Hour', when.hour)}{_t('Minute', when.minute)}{_t('Second', when.second)}"
        f"</tt:Time><tt:Date>{_t('Year', when.year)}{_t('Month', when.month)}{_t('Day', when.day)}"
        "</tt:Date>"
    )


def _system_date_and_time(call: _Call) -> str:
    now = call.camera.now()
    kind = "NTP" if call.camera.settings["ntp"] else "Manual"
    return (
        f"<tds:SystemDateAndTime>{_t('DateTimeType', kind)}{_t('DaylightSavings', 'false')}"
        f"<tt:TimeZone>{_t('TZ', 'UTC0')}</tt:TimeZone>"
        f"<tt:UTCDateTime>{_datetime(now)}</tt:UTCDateTime>"
        f"<tt:LocalDateTime>{_datetime(now)}</tt:LocalDateTime></tds:SystemDateAndTime>"
    )


def _services(call: _Call) -> str:
    def service(ns: str, path: str, minor: int) -> str:
        return (
            f"<tds:Service><tds:Namespace>{ns}</tds:Namespace>"
            f"<tds:XAddr>{call.base}{path}</tds:XAddr>"
            f"<tds:Version>{_t('Major', 2)}{_t('Minor', minor)}</tds:Version></tds:Service>"
        )

    return service(NS["tds"], "/onvif/device_service", 60) + service(
        NS["trt"], "/onvif/media_service", 60
    )


def _tls_flags(camera: Camera) -> dict[str, bool]:
    versions = set(camera.spec.tls.versions) if camera.spec.https else set()
    return {v: f"TLSv{v[3:]}" in versions for v in ("TLS1.0", "TLS1.1", "TLS1.2")}


def _service_capabilities(call: _Call) -> str:
    tls = " ".join(f'{k}="{str(v).lower()}"' for k, v in _tls_flags(call.camera).items())
    return (
        '<tds:Capabilities><tds:Network IPFilter="false" ZeroConfiguration="false" '
        f'IPVersion6="false" DynDNS="true" NTP="1"/><tds:Security {tls} '
        'OnboardKeyGeneration="false" AccessPolicyConfig="false" DefaultAccessPolicy="true" '
        'Dot1X="false" RemoteUserHandling="false" X.509Token="false" SAMLToken="false" '
        'KerberosToken="false" UsernameToken="true" HttpDigest="true" RELToken="false" '
        'MaxUsers="16"/><tds:System DiscoveryResolve="false" DiscoveryBye="true" '
        'RemoteDiscovery="false" SystemBackup="false" SystemLogging="true" '
        'FirmwareUpgrade="true" HttpFirmwareUpgrade="true" HttpSystemBackup="false" '
        'HttpSystemLogging="false" HttpSupportInformation="false"/></tds:Capabilities>'
    )


def _capabilities(call: _Call) -> str:
    tls = _tls_flags(call.camera)
    return (
        f"<tds:Capabilities><tt:Device>{_t('XAddr', call.base + '/onvif/device_service')}"
        f"<tt:Network>{_t('IPFilter', 'false')}{_t('ZeroConfiguration', 'false')}"
        f"{_t('IPVersion6', 'false')}{_t('DynDNS', 'true')}</tt:Network>"
        f"<tt:System>{_t('DiscoveryResolve', 'false')}{_t('DiscoveryBye', 'true')}"
        f"{_t('RemoteDiscovery', 'false')}{_t('SystemBackup', 'false')}"
        f"{_t('SystemLogging', 'true')}{_t('FirmwareUpgrade', 'true')}"
        f"<tt:SupportedVersions>{_t('Major', 2)}{_t('Minor', 60)}</tt:SupportedVersions>"
        "</tt:System>"
        f"<tt:IO>{_t('InputConnectors', 0)}{_t('RelayOutputs', 0)}</tt:IO>"
        f"<tt:Security>{_t('TLS1.1', str(tls['TLS1.1']).lower())}"
        f"{_t('TLS1.2', str(tls['TLS1.2']).lower())}{_t('OnboardKeyGeneration', 'false')}"
        f"{_t('AccessPolicyConfig', 'false')}{_t('X.509Token', 'false')}"
        f"{_t('SAMLToken', 'false')}{_t('KerberosToken', 'false')}{_t('RELToken', 'false')}"
        f"</tt:Security></tt:Device><tt:Media>{_t('XAddr', call.base + '/onvif/media_service')}"
        f"<tt:StreamingCapabilities>{_t('RTPMulticast', 'false')}{_t('RTP_TCP', 'true')}"
        f"{_t('RTP_RTSP_TCP', 'true')}</tt:StreamingCapabilities></tt:Media></tds:Capabilities>"
    )


def _device_information(call: _Call) -> str:
    cam = call.camera
    firmware = cam.persona.onvif_firmware.replace("${version}", cam.version).replace(
        "${build}", cam.persona.build_string(cam.build)
    )
    return (
        f"<tds:Manufacturer>{escape(cam.persona.onvif_manufacturer)}</tds:Manufacturer>"
        f"<tds:Model>{escape(cam.spec.model)}</tds:Model>"
        f"<tds:FirmwareVersion>{escape(firmware)}</tds:FirmwareVersion>"
        f"<tds:SerialNumber>{escape(cam.serial)}</tds:SerialNumber>"
        f"<tds:HardwareId>{escape(cam.persona.hardware_id)}</tds:HardwareId>"
    )


def _network_protocols(call: _Call) -> str:
    cam = call.camera
    rows = [("HTTP", True, cam.ports["http"]), ("RTSP", True, cam.ports["rtsp"])]
    rows.insert(1, ("HTTPS", cam.spec.https, cam.ports["https"]))
    return "".join(
        f"<tds:NetworkProtocols>{_t('Name', name)}{_t('Enabled', str(on).lower())}"
        f"{_t('Port', port)}</tds:NetworkProtocols>"
        for name, on, port in rows
    )


def _network_interfaces(call: _Call) -> str:
    cam = call.camera
    return (
        f'<tds:NetworkInterfaces token="eth0">{_t("Enabled", "true")}<tt:Info>{_t("Name", "eth0")}'
        f"{_t('HwAddress', cam.mac)}{_t('MTU', 1500)}</tt:Info><tt:IPv4>{_t('Enabled', 'true')}"
        f"<tt:Config><tt:Manual>{_t('Address', cam.host)}{_t('PrefixLength', 24)}</tt:Manual>"
        f"{_t('DHCP', 'false')}</tt:Config></tt:IPv4></tds:NetworkInterfaces>"
    )


def _users(call: _Call) -> str:
    levels = {"admin": "Administrator", "operator": "Operator", "user": "User"}
    return "".join(
        f"<tds:User>{_t('Username', u.name)}{_t('UserLevel', levels[u.role])}</tds:User>"
        for u in call.camera.users.values()
    )


def _set_user(call: _Call) -> str:
    if not call.camera.spec.onvif_user_management:  # turned off: the vendor API only
        raise _Fault("Receiver", "ter:ActionNotSupported", "", "User management is disabled")
    roles = {"Administrator": "admin", "Operator": "operator", "User": "user"}
    for item in call.request.findall("{*}User"):
        name = _arg_in(item, "Username")
        level = roles.get(_arg_in(item, "UserLevel"))
        if not call.camera.set_password(name, _arg_in(item, "Password"), level):
            raise _Fault("Sender", "ter:InvalidArgVal", "ter:UsernameMissing", "No such user")
    return ""


def _arg_in(element: etree._Element, name: str) -> str:
    found = element.find(f"{{*}}{name}")
    return (found.text or "").strip() if found is not None else ""


def _ntp(call: _Call) -> str:
    settings = call.camera.settings
    name = str(settings["ntp_server"])
    try:
        ipaddress.IPv4Address(name)
        server = _t("Type", "IPv4") + _t("IPv4Address", name)
    except ValueError:
        server = _t("Type", "DNS") + _t("DNSname", name)
    manual = f"<tt:NTPManual>{server}</tt:NTPManual>" if settings["ntp"] else ""
    return f"<tds:NTPInformation>{_t('FromDHCP', 'false')}{manual}</tds:NTPInformation>"


def _write(call: _Call, writes: list[tuple[SettingName, str]]) -> str:
    """Setting writes of a Set operation (``Camera.write_settings``); a refusal is a fault."""
    if not call.camera.write_settings(writes):
        raise _Fault("Sender", "ter:InvalidArgVal", "ter:SettingsInvalid", "Setting refused")
    return ""


def _set_ntp(call: _Call) -> str:
    """SetNTP: NTPManual with a DNSname or IPv4Address turns NTP on with that server; no
    NTPManual and FromDHCP false turns it off (the clock is set by hand)."""
    manual = call.request.find("{*}NTPManual")
    if manual is None:
        on = _arg(call, "FromDHCP").lower() == "true"
        return _write(call, [("ntp", str(on))])
    server = _arg_in(manual, "DNSname") or _arg_in(manual, "IPv4Address")
    return _write(call, [("ntp", "true"), ("ntp_server", server)])


def _set_dynamic_dns(call: _Call) -> str:
    return _write(call, [("ddns", str(_arg(call, "Type") != "NoUpdate"))])


def _set_discovery_mode(call: _Call) -> str:
    return _write(call, [("discoverable", str(_arg(call, "DiscoveryMode") == "Discoverable"))])


def _scopes(call: _Call) -> str:
    return "".join(
        f"<tds:Scopes>{_t('ScopeDef', 'Fixed')}{_t('ScopeItem', scope)}</tds:Scopes>"
        for scope in scopes(call.camera)
    )


def scopes(camera: Camera) -> list[str]:
    """The WS-Discovery / GetScopes scope URIs of a camera."""
    base = "onvif://www.onvif.org"
    return [
        f"{base}/type/video_encoder",
        f"{base}/Profile/Streaming",
        f"{base}/hardware/{camera.spec.model}",
        f"{base}/name/{camera.persona.onvif_manufacturer}",
        f"{base}/location/lab",
    ]


def _dynamic_dns(call: _Call) -> str:
    if not call.camera.settings["ddns"]:
        return f"<tds:DynamicDNSInformation>{_t('Type', 'NoUpdate')}</tds:DynamicDNSInformation>"
    name = f"{call.camera.serial.lower()}.ddns.invalid"
    return (
        f"<tds:DynamicDNSInformation>{_t('Type', 'ClientUpdates')}{_t('Name', name)}"
        "</tds:DynamicDNSInformation>"
    )


def _hostname(call: _Call) -> str:
    return (
        f"<tds:HostnameInformation>{_t('FromDHCP', 'false')}{_t('Name', call.camera.id)}"
        "</tds:HostnameInformation>"
    )


def _start_upgrade(call: _Call) -> str:
    upgrade = call.camera.spec.firmware_upgrade
    token = call.camera.secret.hex()[:16]
    call.camera.upload_opens_at = time.monotonic() + upgrade.upload_delay_s
    return (
        f"<tds:UploadUri>{call.base}{UPLOAD_PATH}{token}</tds:UploadUri>"
        f"<tds:UploadDelay>PT{upgrade.upload_delay_s:g}S</tds:UploadDelay>"
        f"<tds:ExpectedDownTime>PT{int(upgrade.reboot_s)}S</tds:ExpectedDownTime>"
    )


_RESOLUTIONS = ((1920, 1080, 4096), (640, 360, 512))


def _profiles(call: _Call) -> str:
    out = []
    for n, (width, height, bitrate) in enumerate(_RESOLUTIONS, 1):
        out.append(
            f'<trt:Profiles token="Profile_{n}" fixed="true">{_t("Name", f"Stream{n}")}'
            f'<tt:VideoSourceConfiguration token="VideoSourceConfig_1">{_t("Name", "VideoSource")}'
            f"{_t('UseCount', 2)}{_t('SourceToken', 'VideoSource_1')}"
            '<tt:Bounds x="0" y="0" width="1920" height="1080"/></tt:VideoSourceConfiguration>'
            f'<tt:VideoEncoderConfiguration token="VideoEncoder_{n}">{_t("Name", f"Encoder{n}")}'
            f"{_t('UseCount', 1)}{_t('Encoding', 'H264')}<tt:Resolution>{_t('Width', width)}"
            f"{_t('Height', height)}</tt:Resolution>{_t('Quality', 5)}<tt:RateControl>"
            f"{_t('FrameRateLimit', 25)}{_t('EncodingInterval', 1)}{_t('BitrateLimit', bitrate)}"
            f"</tt:RateControl><tt:H264>{_t('GovLength', 50)}{_t('H264Profile', 'Main')}</tt:H264>"
            f"<tt:Multicast><tt:Address>{_t('Type', 'IPv4')}{_t('IPv4Address', '0.0.0.0')}"  # noqa: S104  # XML text, not a bind
            f"</tt:Address>{_t('Port', 0)}{_t('TTL', 1)}{_t('AutoStart', 'false')}</tt:Multicast>"
            f"{_t('SessionTimeout', 'PT60S')}</tt:VideoEncoderConfiguration></trt:Profiles>"
        )
    return "".join(out)


def _stream_uri(call: _Call) -> str:
    cam = call.camera
    token = _arg(call, "ProfileToken")
    tokens = [f"Profile_{n}" for n in range(1, len(_RESOLUTIONS) + 1)]
    if token not in tokens:
        raise _Fault("Sender", "ter:InvalidArgVal", "ter:NoProfile", "No such profile")
    paths = cam.persona.stream_uris
    path = paths[min(tokens.index(token), len(paths) - 1)]
    uri = f"rtsp://{cam.host}:{cam.ports['rtsp']}{path}"
    return (
        f"<trt:MediaUri>{_t('Uri', uri)}{_t('InvalidAfterConnect', 'false')}"
        f"{_t('InvalidAfterReboot', 'false')}{_t('Timeout', 'PT60S')}</trt:MediaUri>"
    )


# operation -> (response prefix, access class, body builder)
OPERATIONS: dict[str, tuple[str, Access, Handler]] = {
    "GetSystemDateAndTime": ("tds", "pre_auth", _system_date_and_time),
    "GetServices": ("tds", "pre_auth", _services),
    "GetServiceCapabilities": ("tds", "pre_auth", _service_capabilities),
    "GetCapabilities": ("tds", "pre_auth", _capabilities),
    "GetHostname": ("tds", "pre_auth", _hostname),
    "GetWsdlUrl": (
        "tds",
        "pre_auth",
        lambda _c: "<tds:WsdlUrl>http://www.onvif.org/</tds:WsdlUrl>",
    ),
    "GetEndpointReference": (
        "tds",
        "pre_auth",
        lambda c: f"<tds:GUID>urn:uuid:{c.camera.uuid}</tds:GUID>",
    ),
    "GetDeviceInformation": ("tds", "read_system", _device_information),
    "GetNetworkProtocols": ("tds", "read_system", _network_protocols),
    "GetNetworkInterfaces": ("tds", "read_system", _network_interfaces),
    "GetNTP": ("tds", "read_system", _ntp),
    "GetDiscoveryMode": (
        "tds",
        "read_system",
        lambda c: (
            "<tds:DiscoveryMode>"
            f"{'Discoverable' if c.camera.settings['discoverable'] else 'NonDiscoverable'}"
            "</tds:DiscoveryMode>"
        ),
    ),
    "GetScopes": ("tds", "read_system", _scopes),
    "GetDynamicDNS": ("tds", "read_system", _dynamic_dns),
    "GetUsers": ("tds", "read_secret", _users),
    "SetUser": ("tds", "write_system", _set_user),
    "SetNTP": ("tds", "write_system", _set_ntp),
    "SetDynamicDNS": ("tds", "write_system", _set_dynamic_dns),
    "SetDiscoveryMode": ("tds", "write_system", _set_discovery_mode),
    "StartFirmwareUpgrade": ("tds", "unrecoverable", _start_upgrade),
    "GetProfiles": ("trt", "read_media", _profiles),
    "GetStreamUri": ("trt", "read_media", _stream_uri),
}
ACCESS: dict[str, Access] = {op: access for op, (_p, access, _h) in OPERATIONS.items()}
PRE_AUTH = frozenset(op for op, access in ACCESS.items() if access == "pre_auth")


class _Fault(Exception):
    def __init__(self, code: str, subcode: str, detail: str, reason: str) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.detail, self.reason = code, subcode, detail, reason

    def xml(self) -> bytes:
        inner = (
            f"<env:Subcode><env:Value>{self.detail}</env:Value></env:Subcode>"
            if self.detail
            else ""
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<env:Envelope xmlns:env="{NS["s"]}" xmlns:ter="http://www.onvif.org/ver10/error">'
            f"<env:Body><env:Fault><env:Code><env:Value>env:{self.code}</env:Value>"
            f"<env:Subcode><env:Value>{self.subcode}</env:Value>{inner}</env:Subcode></env:Code>"
            f'<env:Reason><env:Text xml:lang="en">{escape(self.reason)}</env:Text></env:Reason>'
            "</env:Fault></env:Body></env:Envelope>"
        ).encode()


def _envelope(prefix: str, op: str, inner: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<env:Envelope xmlns:env="{NS["s"]}" xmlns:tds="{NS["tds"]}" xmlns:trt="{NS["trt"]}" '
        f'xmlns:tt="{NS["tt"]}"><env:Body><{prefix}:{op}Response>{inner}'
        f"</{prefix}:{op}Response></env:Body></env:Envelope>"
    ).encode()


def _wsse_login(camera: Camera, token: etree._Element) -> Login:
    username = _arg_in(token, "Username")
    password = token.find("{*}Password")
    given = (password.text or "").strip() if password is not None else ""
    if password is None or not password.get("Type", "").endswith("#PasswordDigest"):
        user = camera.login(username, lambda stored: hmac.compare_digest(stored, given))
        return Login("wsse-text", user, username)
    nonce_text, created = _arg_in(token, "Nonce"), _arg_in(token, "Created")
    try:
        nonce = base64.b64decode(nonce_text, validate=True)
        when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except (binascii.Error, ValueError):
        return Login("wsse-digest", None, None)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    stale = abs((when - camera.now()).total_seconds()) > CREATED_TOLERANCE_S
    if stale or not camera.fresh_nonce(nonce_text):
        return Login("wsse-digest", None, None)

    def check(stored: str) -> bool:
        digest = hashlib.sha1(nonce + created.encode() + stored.encode()).digest()  # noqa: S324  # the WS-Security algorithm
        return hmac.compare_digest(base64.b64encode(digest).decode(), given)

    return Login("wsse-digest", camera.login(username, check), username)


def handle_soap(
    camera: Camera, body: bytes, base: str, http_login: Callable[[], Login]
) -> OnvifReply:
    """Answer one SOAP request. ``http_login`` checks an HTTP Authorization header, if any."""
    try:
        root = etree.fromstring(body, PARSER)
        soap_body = root.find(f"{{{NS['s']}}}Body")
        if soap_body is None:
            soap_body = root.find(f"{{{SOAP11}}}Body")
        request = soap_body[0] if soap_body is not None and len(soap_body) else None
    except etree.XMLSyntaxError:
        request = None
    if request is None:
        fault = _Fault("Sender", "ter:InvalidArgVal", "", "Malformed SOAP request")
        return OnvifReply(400, fault.xml(), "?", "none", None)
    op = etree.QName(request).localname
    token = root.find(".//{*}Security/{*}UsernameToken")
    scheme, user, name = _wsse_login(camera, token) if token is not None else http_login()
    seeded = camera.onvif_faults.get(op)
    if op not in OPERATIONS or (seeded is not None and seeded.soap_fault):
        subcode = seeded.soap_fault if seeded is not None and seeded.soap_fault else NOT_SUPPORTED
        code = "Sender" if subcode in SENDER_FAULTS else "Receiver"
        reason = "Optional Action Not Implemented" if subcode == NOT_SUPPORTED else subcode
        fault = _Fault(code, subcode, "", reason)
        status = 400 if code == "Sender" else 500
        return OnvifReply(status, fault.xml(), op, scheme, user.name if user else None)
    prefix, access, build = OPERATIONS[op]
    open_op = access == "pre_auth" or (
        op in camera.spec.onvif_noauth_ops and not camera.settings["onvif_auth"]
    )
    if not open_op and (user is None or user.role not in ALLOWED_ROLES[access]):
        locked = camera.persona.auth_locked
        if user is None and locked is not None and name is not None and camera.locked(name):
            fault = _Fault("Sender", "ter:NotAuthorized", locked.onvif_subcode, locked.onvif_reason)
        else:
            fault = _Fault("Sender", "ter:NotAuthorized", "", "Sender not Authorized")
        status = camera.persona.onvif_unauthorized_status if user is None else 400
        return OnvifReply(
            status, fault.xml(), op, scheme, user.name if user else None, status == 401
        )
    try:
        inner = build(_Call(camera, request, base))
    except _Fault as fault:
        return OnvifReply(400, fault.xml(), op, scheme, user.name if user else None)
    return OnvifReply(200, _envelope(prefix, op, inner), op, scheme, user.name if user else None)


def handle_upload(camera: Camera, image: bytes) -> int:
    """POST of an image to the UploadUri: 200, 415 if the image is not valid, 503 if it came
    before the UploadDelay that StartFirmwareUpgrade named had passed."""
    if time.monotonic() < camera.upload_opens_at:
        return 503
    try:
        camera.accept_image(image)
    except BadImage:
        return 415
    return 200
