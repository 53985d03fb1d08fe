"""Pure parsers for VAPIX answers: basicdeviceinfo JSON, ``param.cgi`` and ``pwdgrp.cgi``."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from agent.vendors.axis.const import GROUPS, VENDOR
from agent.vendors.models import Account, DeviceIdentity, TimeInfo


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
    """``BuildDate``: ``Oct 25 2022 12:00`` (AXIS OS 10+)."""
    if not text:
        return None
    return datetime.strptime(text.strip(), "%b %d %Y %H:%M").date()


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


def parse_params(body: bytes, group: str) -> dict[str, str]:
    """``root.<group>.<Name>=<value>`` lines -> ``{Name: value}``."""
    prefix = f"root.{group}."
    params: dict[str, str] = {}
    for line in body.decode("utf-8").splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.startswith(prefix):
            # Quirk (AXIS OS): an unknown group answers 200 with "# Error: Error -1 getting
            # param in group '<group>'"; it is refused here, never read as an empty group.
            raise ValueError(f"param.cgi line outside root.{group}: {line[:64]!r}")
        params[key.removeprefix(prefix)] = value
    return params


def param_flag(params: dict[str, str], name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value.lower() not in ("yes", "no", "true", "false"):
        raise ValueError(f"param {name} is {value!r}, not yes/no")
    return value.lower() in ("yes", "true")


def parse_pwdgrp(body: bytes) -> tuple[Account, ...]:
    """``group="user1,user2"`` lines; a user's role is its most privileged group."""
    groups: dict[str, list[str]] = {}
    for line in body.decode("utf-8").splitlines():
        if not line.strip():
            continue
        name, sep, members = line.partition("=")
        if not sep:
            raise ValueError(f"pwdgrp line is not group=members: {line[:64]!r}")
        groups[name.strip()] = [m for m in members.strip().strip('"').split(",") if m]
    if "admin" not in groups:
        raise ValueError("pwdgrp answer without the admin group")
    roles: dict[str, str] = {}
    for group, role in GROUPS:
        for user in groups.get(group, []):
            roles.setdefault(user, role)
    return tuple(Account(name=user, role=role) for user, role in roles.items())


def parse_time(body: bytes) -> TimeInfo:
    """The ``Time`` group: sync source and NTP server; the clock itself is not in it."""
    params = parse_params(body, "Time")
    source = params.get("SyncSource")
    server = params.get("NTP.Server")
    return TimeInfo(
        ntp=None if source is None else source.upper() == "NTP",
        ntp_servers=(server,) if server else (),
    )
