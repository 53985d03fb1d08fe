"""Pure parsers for ISAPI XML bodies: bytes in, vendor-neutral models out.

Every function raises ``ValueError`` (the base adapter turns it into ``BadResponse``) when the
body is not the document it should be. Element names are matched without their namespace:
firmware generations differ in the ``version`` and namespace they declare (ver10 / ver20).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from xml.sax.saxutils import escape

from agent.probes._xml import refuse_dtd
from agent.vendors.base import BadResponse
from agent.vendors.hikvision.const import NAMESPACE, ROLES, VENDOR
from agent.vendors.models import (
    Account,
    DeviceIdentity,
    LockoutPolicy,
    RecorderChannel,
    TimeInfo,
    ntp_servers,
)
from agent.vendors.zones import fixed_offset, offset_zone

# firmwareReleasedDate shapes: "build 221114" (5.5+), "221114" (older, and bootReleasedDate),
# "build 20221114" and "2022-11-14" (OEM builds, access-control terminals).
_RELEASED: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?:build|b)?\s*(\d{8})", re.IGNORECASE), "%Y%m%d"),
    (re.compile(r"(?:build|b)?\s*(\d{6})", re.IGNORECASE), "%y%m%d"),
    (re.compile(r"(\d{4}-\d{2}-\d{2})"), "%Y-%m-%d"),
)


def parse_xml(body: bytes, root: str) -> ET.Element:
    """The document element, which must be ``root``. DTDs and entities are refused in any
    encoding (``refuse_dtd``: no entity expansion)."""
    try:
        refuse_dtd(body)
        element = ET.fromstring(body)  # noqa: S314  # DTDs refused above
    except BadResponse as exc:
        raise ValueError(f"ISAPI body refused: {exc}") from None
    except ET.ParseError as exc:
        raise ValueError(f"ISAPI body is not XML: {exc}") from exc
    if _local(element.tag) != root:
        raise ValueError(f"ISAPI body is <{_local(element.tag)}>, expected <{root}>")
    return element


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            text = (child.text or "").strip()
            return text or None
    return None


def _flag(element: ET.Element, name: str) -> bool | None:
    text = _text(element, name)
    if text is None:
        return None
    if text.lower() not in ("true", "false"):
        raise ValueError(f"<{name}> is {text!r}, not a boolean")
    return text.lower() == "true"


def _int(element: ET.Element, name: str) -> int | None:
    text = _text(element, name)
    return None if text is None else int(text)


def build_date(released: str | None) -> date | None:
    """``firmwareReleasedDate`` -> date; None when absent or of a shape no table row reads
    (an unknown date is left unknown, it does not spoil the rest of the identity)."""
    if released is None:
        return None
    for pattern, fmt in _RELEASED:
        match = pattern.fullmatch(released.strip())
        if match is not None:
            try:
                return datetime.strptime(match.group(1), fmt).date()
            except ValueError:
                return None
    return None


def parse_device_info(body: bytes) -> DeviceIdentity:
    info = parse_xml(body, "DeviceInfo")
    firmware = _text(info, "firmwareVersion")
    model = _text(info, "model")
    if firmware is None or model is None:
        raise ValueError("DeviceInfo without model or firmwareVersion")
    mac = _text(info, "macAddress")
    return DeviceIdentity(
        vendor=VENDOR,
        model=model,
        firmware=firmware,
        build_date=build_date(_text(info, "firmwareReleasedDate")),
        serial=_text(info, "serialNumber"),
        hardware_id=_text(info, "telecontrolID") or _text(info, "hardwareVersion"),
        mac=mac.lower() if mac else None,
        source="hikvision/isapi",
    )


def parse_users(body: bytes) -> tuple[Account, ...]:
    users = parse_xml(body, "UserList")
    accounts = []
    for user in users:
        if _local(user.tag) != "User":
            continue
        name = _text(user, "userName")
        if name is None:
            raise ValueError("User without userName")
        level = (_text(user, "userLevel") or "").lower()
        accounts.append(Account(name=name, role=ROLES.get(level, level or None)))
    return tuple(accounts)


def user_id(body: bytes, username: str) -> str:
    """The ``id`` of ``username`` in a ``UserList`` (the key of ``/ISAPI/Security/users/<id>``)."""
    for user in parse_xml(body, "UserList"):
        if _local(user.tag) == "User" and _text(user, "userName") == username:
            found = _text(user, "id")
            if found is None or not found.isdigit():
                raise ValueError(f"User {username!r} without a numeric id")
            return found
    raise LookupError(f"no user {username!r}")


def user_document(user: str, username: str, password: str, login_password: str) -> bytes:
    """The ``User`` document of a password change; ``loginPassword`` is the caller's own
    password, which 5.5+ firmware asks for before it changes an administrator's."""
    fields = {
        "id": user,
        "userName": username,
        "password": password,
        "loginPassword": login_password,
    }
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in fields.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<User version="2.0" xmlns="{NAMESPACE}">{inner}</User>'
    ).encode()


def channel_document(channels: bytes, key: str, username: str, password: str) -> bytes:
    """The ``InputProxyChannel`` of channel ``key`` from the recorder's own list, with the
    camera login it stores set to ``username``/``password`` (``sourceInputPortDescriptor``):
    what ``PUT .../InputProxy/channels/<id>`` takes. Everything else goes back as listed."""
    for item in parse_xml(channels, "InputProxyChannelList"):
        source = _child(item, "sourceInputPortDescriptor")
        if _text(item, "id") != key or source is None:
            continue
        for name, value in (("userName", username), ("password", password)):
            field = _child(source, name)
            if field is None:
                field = ET.SubElement(source, name)
            field.text = value
        for element in item.iter():  # written back as sent: one default namespace
            element.tag = _local(element.tag)
        item.set("xmlns", NAMESPACE)
        return bytes(ET.tostring(item, encoding="utf-8", xml_declaration=True))
    raise ValueError(f"the recorder lists no IP channel {key}")


def status_ok(body: bytes) -> bool:
    """A ``ResponseStatus`` with statusCode 1 (OK) or 7 (Reboot Required)."""
    return _text(parse_xml(body, "ResponseStatus"), "statusCode") in ("1", "7")


def parse_activated(body: bytes) -> bool:
    value = _flag(parse_xml(body, "ActivateStatus"), "Activated")
    if value is None:
        raise ValueError("ActivateStatus without Activated")
    return value


def parse_enabled(body: bytes, root: str) -> bool | None:
    """``<enabled>`` of a network service document (Telnetd, SSH, UPnP, EZVIZ)."""
    return _flag(parse_xml(body, root), "enabled")


# IllegalLoginLock's lock duration in seconds, by element name: "lockTime" (the lab's persona,
# client code), "maxIllegalLoginLockTime" (recorded from a 5.x camera, 1800 = the 30 min default).
_LOCK_SECONDS = ("lockTime", "maxIllegalLoginLockTime")


def parse_digest_only(body: bytes, root: str) -> bool | None:
    """``RTSPCertificate`` / ``WebCertificate``: True for certificateType "digest" (Basic
    refused), False for "digest/basic" (or "basic"); None when absent or another type."""
    document = parse_xml(body, root)
    kind = _text(document, "certificateType") or _text(document, "CertificateType")
    return {"digest": True, "digest/basic": False, "basic": False}.get((kind or "").lower())


def parse_rtsp_auth(body: bytes) -> bool | None:
    """``StreamingChannel`` (``/ISAPI/Streaming/channels/101``): whether RTSP asks for
    credentials, ``Transport/Security/enabled`` (false: streams to anyone); None when the
    channel carries no such element. The channel's own ``<enabled>`` is another thing."""
    security = _path(parse_xml(body, "StreamingChannel"), ("Transport", "Security"))
    return None if security is None else _flag(security, "enabled")


def parse_snmp(body: bytes) -> tuple[bool | None, str | None]:
    """``SNMPv2c``: whether the v1/v2c agent runs, and its read community."""
    root = parse_xml(body, "SNMPv2c")
    return _flag(root, "enabled"), _text(root, "readCommunity")


def parse_lockout(body: bytes) -> LockoutPolicy:
    lock = parse_xml(body, "IllegalLoginLock")
    seconds = next((s for s in (_int(lock, name) for name in _LOCK_SECONDS) if s is not None), None)
    return LockoutPolicy(
        enabled=_flag(lock, "enabled"),
        threshold=_int(lock, "maxIllegalLoginTimes"),
        window_s=None,  # ISAPI does not expose the counting window
        lock_s=None if seconds is None else float(seconds),
    )


def parse_time(time_body: bytes, ntp_body: bytes | None) -> TimeInfo:
    """``/ISAPI/System/time`` (+ ``ntpServers``). Shape from the ISAPI documentation."""
    clock = parse_xml(time_body, "Time")
    mode = (_text(clock, "timeMode") or "").lower()
    local = _text(clock, "localTime")
    camera_utc = None
    if local is not None:
        parsed = datetime.fromisoformat(local.replace("Z", "+00:00"))
        camera_utc = parsed.astimezone(UTC) if parsed.tzinfo is not None else None
    servers: list[str | None] = []
    if ntp_body is not None:
        for server in parse_xml(ntp_body, "NTPServerList"):
            # addressingFormatType names the field in use; the other may hold a stale value
            if (_text(server, "addressingFormatType") or "").lower() == "ipaddress":
                servers.append(_text(server, "ipAddress") or _text(server, "ipv6Address"))
            else:
                servers.append(_text(server, "hostName") or _text(server, "ipAddress"))
    return TimeInfo(
        camera_utc=camera_utc,
        ntp=mode == "ntp" if mode else None,
        ntp_servers=ntp_servers(*servers),
        zone=zone_name(_text(clock, "timeZone") or ""),
    )


# timeZone as Hikvision writes it: a POSIX TZ name and offset west of UTC ("CST-7:00:00" is
# UTC+7); the name is not read. Summer time is a separate setting (not written here).
_POSIX_ZONE = re.compile(r"^[A-Za-z]{3,6}([+-]?)([0-9]{1,2}):([0-9]{2})(?::([0-9]{2}))?$")


def zone_name(posix: str) -> str | None:
    """A ``timeZone`` as the IANA name of its fixed offset ("UTC", "Etc/GMT-7" for UTC+7);
    None when absent, malformed or not whole hours (no IANA name to report)."""
    match = _POSIX_ZONE.fullmatch(posix.strip())
    if match is None or match[3] != "00" or (match[4] or "00") != "00":
        return None
    west = int(match[2]) * (-1 if match[1] == "-" else 1)
    return offset_zone(-60 * west)


def posix_zone(name: str) -> str:
    """The ``timeZone`` text for IANA zone ``name`` (``zoneinfo``); ValueError for an unknown
    zone, one with summer time or an offset not in whole hours (the camera could not report it
    back as a zone)."""
    hours, rest = divmod(fixed_offset(name), 60)
    if rest:
        raise ValueError(f"time zone {name!r} is not a whole number of hours from UTC")
    return f"CST{'-' if hours > 0 else '+'}{abs(hours)}:00:00"


def lock_signal(body: bytes) -> str | None:
    """The lock a 401 body announces, or None.

    DS-2CD2xx3G2 firmware 5.5+ answers a refused digest with a ``userCheck`` document carrying
    ``lockStatus`` (``lock``/``unlock``) and ``unlockTime`` in seconds [field names from
    client code, unverified against a vendor document]. Older firmware sends a plain 401.
    """
    if b"userCheck" not in body:
        return None
    try:
        check = parse_xml(body, "userCheck")
    except ValueError:
        return None
    if (_text(check, "lockStatus") or "").lower() != "lock":
        return None
    return f"account locked, unlockTime={_text(check, 'unlockTime') or '?'} s"


def with_text(body: bytes, root: str, name: str, text: str) -> bytes:
    """The ``root`` document ``body`` with its first ``name`` element set to ``text``, to PUT
    back (the namespace kept as the camera's default one). A ``name`` with slashes is a path
    from the document element ("Transport/Security/enabled"): that element and no other."""
    document = parse_xml(body, root)
    if "/" in name:
        *parents, last = name.split("/")
        parent = _path(document, tuple(parents))
        element = None if parent is None else _child(parent, last)
    else:
        element = next((e for e in document.iter() if _local(e.tag) == name), None)
    if element is None:
        raise ValueError(f"<{root}> has no <{name}>")
    element.text = text
    namespace = document.tag[1:].partition("}")[0] if document.tag.startswith("{") else ""
    for each in document.iter():  # written back as the camera wrote it: a default namespace
        each.tag = _local(each.tag)
    if namespace:
        document.set("xmlns", namespace)
    return bytes(ET.tostring(document, encoding="utf-8", xml_declaration=True))


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _path(element: ET.Element, names: tuple[str, ...]) -> ET.Element | None:
    """The element reached from ``element`` through children ``names``, or None."""
    found: ET.Element | None = element
    for name in names:
        found = None if found is None else _child(found, name)
    return found


def parse_input_proxy(channels: bytes, status: bytes | None) -> tuple[RecorderChannel, ...]:
    """An NVR's ``InputProxyChannelList`` (what each IP channel connects to, as the camera told
    the recorder) with ``online`` from its ``InputProxyChannelStatusList`` when given. ISAPI
    leaves the stored password out of GET answers; a firmware that includes it is noted."""
    online: dict[int, bool | None] = {}
    if status is not None:
        for item in parse_xml(status, "InputProxyChannelStatusList"):
            number = _int(item, "id")
            if number is not None:
                online[number] = _flag(item, "online")
    out = []
    for item in parse_xml(channels, "InputProxyChannelList"):
        number = _int(item, "id")
        source = _child(item, "sourceInputPortDescriptor")
        if number is None or source is None:
            raise ValueError("InputProxyChannel without id or sourceInputPortDescriptor")
        port = _int(source, "managePortNo")
        out.append(
            RecorderChannel(
                number=number,
                address=_text(source, "ipAddress") or _text(source, "hostName"),
                port=port,
                protocol=_text(source, "proxyProtocol"),
                username=_text(source, "userName"),
                model=_text(source, "model"),
                serial=_text(source, "serialNumber"),
                firmware=_text(source, "firmwareVersion"),
                online=online.get(number),
                password_shown=_text(source, "password") is not None,
                key=str(number),
            )
        )
    return tuple(out)
