"""Pure parsers for VAPIX answers: basicdeviceinfo JSON, ``param.cgi`` and ``pwdgrp.cgi``.

Real cameras differ from the lab in ways each parser handles (answers in
``tests/fixtures/real/axis``): ``pwdgrp.cgi`` lists the system's Unix groups, whose members are
mostly services (``wwwa``, ``sdk``, ``streamer``), and the logins are only the ``digusers``;
``param.cgi`` flags have values beyond yes/no (``RemoteService.Enabled=oneclick``) and old
firmware answers in ISO-8859-1; firmware before 9.x has no ``basicdeviceinfo`` and names model
and firmware in the ``Brand`` and ``Properties`` groups.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from agent.vendors.axis import const
from agent.vendors.axis.const import GROUPS, VENDOR
from agent.vendors.base import Unsupported
from agent.vendors.models import Account, DeviceIdentity, LockoutPolicy, TimeInfo, ntp_servers


def _properties(body: bytes, method: str) -> dict[str, Any]:
    doc = json.loads(body)
    if not isinstance(doc, dict):
        raise ValueError("basicdeviceinfo answer is not a JSON object")
    if "error" in doc:
        error = doc["error"]
        raise ValueError(f"basicdeviceinfo {method} error: {str(error)[:120]}")
    props = doc.get("data", {}).get("propertyList") if doc.get("method") == method else None
    if not isinstance(props, dict):
        raise ValueError(f"basicdeviceinfo answer to {method} without data.propertyList")
    return props


def build_date(text: str | None) -> date | None:
    """``BuildDate``: ``Oct 25 2022 12:00`` (AXIS OS 10+, ``Properties.Firmware.BuildDate``
    since 5.x); ``Apr  1 2019 09:42`` pads the day with a space."""
    if not text:
        return None
    return datetime.strptime(" ".join(text.split()), "%b %d %Y %H:%M").date()


def _mac(serial: str | None) -> str | None:
    """Axis serial numbers are the MAC address without separators (12 hex digits)."""
    if serial is None or len(serial) != 12:
        return None
    try:
        int(serial, 16)
    except ValueError:
        return None
    return ":".join(serial[i : i + 2] for i in range(0, 12, 2)).lower()


def parse_basic_device_info(body: bytes, method: str) -> DeviceIdentity:
    """``getAllProperties`` (credentials) or ``getAllUnrestrictedProperties`` (none)."""
    props = _properties(body, method)
    model, version = props.get("ProdNbr"), props.get("Version")
    if not isinstance(model, str) or not isinstance(version, str):
        raise ValueError("basicdeviceinfo without ProdNbr or Version")
    serial = props.get("SerialNumber") if isinstance(props.get("SerialNumber"), str) else None
    hardware = props.get("HardwareID")
    return DeviceIdentity(
        vendor=VENDOR,
        model=model,
        firmware=version,
        build_date=build_date(props.get("BuildDate")),
        serial=serial,
        hardware_id=hardware if isinstance(hardware, str) else None,
        mac=_mac(serial),
        source=f"axis/basicdeviceinfo.{method}",
    )


def decode(body: bytes) -> str:
    """VAPIX text: UTF-8 on AXIS OS; ISO-8859-1 on firmware 5.x (a ``ProdFullName`` or a
    ``FriendlyName`` with an accented letter is not valid UTF-8 there)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("iso-8859-1")


def parse_params(body: bytes, group: str) -> dict[str, str]:
    """``root.<group>.<Name>=<value>`` lines -> ``{Name: value}``."""
    prefix = f"root.{group}."
    params: dict[str, str] = {}
    for line in decode(body).splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.startswith(prefix):
            # Quirk (AXIS OS): an unknown group answers 200 with "# Error: Error -1 getting
            # param in group '<group>'"; it is refused here, never read as an empty group.
            raise ValueError(f"param.cgi line outside root.{group}: {line[:64]!r}")
        params[key.removeprefix(prefix)] = value
    return params


# param.cgi flag values. Beyond yes/no: RemoteService.Enabled is "oneclick" (O3C one-click
# connection, on) or "no" (M1065-LW 9.x); "off"/"on" and "0"/"1" occur in other groups.
_ON = frozenset({"yes", "true", "on", "1", "oneclick", "enabled"})
_OFF = frozenset({"no", "false", "off", "0", "disabled", "none"})


def param_flag(params: dict[str, str], name: str) -> bool | None:
    """The flag ``name``: None when absent; ``ValueError`` for a value that is no flag."""
    value = params.get(name)
    if value is None:
        return None
    if value.strip().lower() in _ON:
        return True
    if value.strip().lower() in _OFF:
        return False
    raise ValueError(f"param {name} is {value[:32]!r}, not a known on/off value")


def parse_group(body: bytes, group: str) -> dict[str, str]:
    """``parse_params`` for a group some firmware lacks: ``{}`` (all its values unknown) when
    the camera answers "# Error" for it."""
    if decode(body).lstrip().startswith("# Error"):
        return {}
    return parse_params(body, group)


def _masked(value: str) -> bool:
    """A value the camera lists masked: "******" (M1065-LW 9.x lists Network.RTSP.ProtViewer
    and System.BoaProtViewer so)."""
    return bool(value) and set(value) == {"*"}


def param_choice(
    params: dict[str, str], name: str, on: frozenset[str], off: frozenset[str]
) -> bool | None:
    """A parameter whose words mean on or off (``const.SETTING_WORDS``), read case-blind: None
    when absent, empty or masked; ``ValueError`` for any other word."""
    value = params.get(name)
    if value is None or not value.strip() or _masked(value):
        return None
    word = value.strip().lower()
    if word in on:
        return True
    if word in off:
        return False
    raise ValueError(f"param {name} is {value[:32]!r}, not one of {sorted(on | off)}")


# Network.HTTP.AuthenticationPolicy: Digest only, or Basic accepted too ("basic_digest"; a
# policy naming Basic alone accepts it all the same, never seen in a recorded answer)
_DIGEST_ONLY = frozenset({"digest"})
_BASIC_TOO = frozenset({"basic_digest", "basic"})
# Network.RTSP.ProtViewer: viewers need a password, or anonymous viewers are let in
_PASSWORD = frozenset({"password"})
_ANONYMOUS = frozenset({"anonymous"})


def parse_auth_policy(params: dict[str, str]) -> bool | None:
    """``Network.HTTP``: whether the web and RTSP servers refuse Basic (True: Digest only)."""
    return param_choice(params, const.AUTH_POLICY, _DIGEST_ONLY, _BASIC_TOO)


def parse_rtsp_viewer(params: dict[str, str]) -> bool | None:
    """``Network.RTSP``: whether RTSP asks every viewer for credentials."""
    return param_choice(params, const.PROT_VIEWER, _PASSWORD, _ANONYMOUS)


def parse_snmp(params: dict[str, str]) -> tuple[bool | None, str | None]:
    """``SNMP``: whether the v1/v2c agent answers (``Enabled`` and ``V1`` or ``V2c``) and its
    read community (``V1ReadCommunity``, also v2c's). Unknown when the flags are missing."""
    enabled = param_flag(params, "Enabled")
    versions = [param_flag(params, v) for v in const.SNMP_VERSIONS]
    running: bool | None
    if enabled is False or versions == [False, False]:
        running = False
    elif enabled and any(versions):
        running = True
    else:
        running = None
    community = params.get("V1ReadCommunity")
    return running, None if not community or _masked(community) else community


def parse_brand_properties(brand: bytes, properties: bytes) -> DeviceIdentity:
    """Identity from ``param.cgi`` groups ``Brand`` and ``Properties``: firmware without
    ``basicdeviceinfo`` (5.x to 8.x, e.g. M3024-L 5.51, M7001 5.20)."""
    names, props = parse_params(brand, "Brand"), parse_params(properties, "Properties")
    model = names.get("ProdNbr") or names.get("ProdShortName")
    version = props.get("Firmware.Version")
    if not model or not version:
        raise ValueError("Brand/Properties without ProdNbr or Firmware.Version")
    serial = props.get("System.SerialNumber") or None
    return DeviceIdentity(
        vendor=VENDOR,
        model=model.removeprefix("AXIS ").strip(),
        firmware=version,
        build_date=build_date(props.get("Firmware.BuildDate")),
        serial=serial,
        hardware_id=props.get("System.HardwareID") or None,
        mac=_mac(serial),
        source="axis/param.Brand+Properties",
    )


def parse_pwdgrp(body: bytes) -> tuple[Account, ...]:
    """The login accounts of ``pwdgrp.cgi?action=get`` with their most privileged role.

    The answer lists Unix groups as ``group="member1,member2"``. On AXIS OS the role groups
    (``admin``, ``operator``, ``viewer``) also hold service accounts (``wwwa``, ``sdk``,
    ``wwwaovp``...) that cannot log in: the logins are the members of ``digusers`` (digest
    users) and of ``users`` (the group VAPIX ``pwdgrp.cgi?action=add`` puts accounts in), plus
    ``root`` where only ``users`` is listed. A name in no role group is not an account: 9.x
    firmware lists the group names ``operator`` and ``viewer`` among ``digusers``.
    """
    groups: dict[str, list[str]] = {}
    for line in decode(body).splitlines():
        if not line.strip():
            continue
        name, sep, members = line.partition("=")
        if not sep:
            raise ValueError(f"pwdgrp line is not group=members: {line[:64]!r}")
        groups[name.strip()] = [m.strip() for m in members.strip().strip('"').split(",") if m]
    if "admin" not in groups:
        raise ValueError("pwdgrp answer without the admin group")
    if "digusers" not in groups and "users" not in groups:
        raise ValueError("pwdgrp answer names no login accounts (no digusers, no users)")
    logins = groups.get("digusers", ["root"]) + groups.get("users", [])
    accounts: dict[str, Account] = {}
    for user in logins:
        role = next((role for group, role in GROUPS if user in groups.get(group, [])), None)
        if role is not None:
            accounts.setdefault(user, Account(name=user, role=role))
    return tuple(accounts.values())


def parse_time(body: bytes) -> TimeInfo:
    """The ``Time`` group: sync source, NTP server and time zone (``TimeZone``, an IANA name
    on AXIS OS); the clock itself is not in it.
    ``NTP.Server=0.0.0.0`` (M1065-LW 9.x, NTP from DHCP) names no server."""
    params = parse_params(body, "Time")
    source = params.get("SyncSource")
    return TimeInfo(
        ntp=None if source is None else source.upper() == "NTP",
        ntp_servers=ntp_servers(params.get("NTP.Server")),
        zone=params.get("TimeZone") or None,
    )


def parse_lockout(body: bytes) -> LockoutPolicy:
    """The brute-force blocking of ``System.PreventDoSAttack`` (``const.BRUTE_FORCE``): the
    client is blocked for DOSBlockingPeriod s after DOSPageCount failures in DOSPageInterval s.
    ``Unsupported`` when the firmware has no such group (before AXIS OS 7.30 param.cgi answers
    "# Error: ..."), so the check says the policy is unknown; a value that is not a number or a
    flag is a bad answer (``ValueError``), never "off"."""
    if decode(body).lstrip().startswith("# Error"):
        raise Unsupported(f"param.cgi has no group {const.BRUTE_FORCE}")
    params = {k.lower(): v for k, v in parse_params(body, const.BRUTE_FORCE).items()}
    count, interval, block = (
        params.get(k) for k in (const.PAGE_COUNT, const.PAGE_INTERVAL_S, const.BLOCK_S)
    )
    return LockoutPolicy(
        enabled=param_flag(params, const.THROTTLING),
        threshold=None if count is None else int(count),
        window_s=None if interval is None else float(int(interval)),
        lock_s=None if block is None else float(int(block)),
    )
