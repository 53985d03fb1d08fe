"""Every parser against answers recorded from real devices (``tests/fixtures/real``).

``INDEX.json`` names, per answer, the parser that reads it and the values it must extract; this
test runs each one and compares. The answers come from public client libraries' fixtures, issue
threads and vendor documents (provenance in the index), not from our camera lab, whose answers
were written by the same hands as the parsers.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import onvif
import pytest
import zeep
from lxml import etree
from onvif.settings import DEFAULT_SETTINGS
from onvif.transport import ASYNC_TRANSPORT

from agent.probes import vendordiscovery as discovery
from agent.vendors.axis import parsers as axis
from agent.vendors.base import translate
from agent.vendors.dahua import parsers as dahua
from agent.vendors.hikvision import parsers as hik
from agent.vendors.hikvision.const import RTSP_AUTH_ELEMENT
from agent.vendors.models import Account, DeviceIdentity, TimeInfo, ntp_servers
from agent.vendors.onvif import const as onvif_const
from agent.vendors.onvif import parsers as onvif_parsers
from agent.vendors.versions import canonical_vendor, parse_firmware

REAL = Path(__file__).parents[2] / "fixtures" / "real"
_zeep: Any = zeep  # zeep is untyped


@dataclass(frozen=True, slots=True)
class Answer:
    file: str
    vendor: str
    parser: str
    args: dict[str, Any]
    companions: tuple[str, ...]
    expect: dict[str, Any]

    def body(self) -> bytes:
        return (REAL / self.file).read_bytes()

    def companion(self, index: int) -> bytes:
        return (REAL / self.companions[index]).read_bytes()


def _index() -> list[dict[str, Any]]:
    answers: list[dict[str, Any]] = json.loads((REAL / "INDEX.json").read_text())["answers"]
    return answers


ANSWERS = [
    Answer(
        file=e["file"],
        vendor=e["vendor"],
        parser=e["parser"],
        args=e.get("args", {}),
        companions=tuple(e.get("companions", ())),
        expect=e["expect"],
    )
    for e in _index()
]


def _iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _identity(identity: DeviceIdentity) -> dict[str, Any]:
    return {
        "vendor": identity.vendor,
        "model": identity.model,
        "firmware": identity.firmware,
        "build_date": _iso(identity.build_date),
        "serial": identity.serial,
        "mac": identity.mac,
        "hardware_id": identity.hardware_id,
    }


def _accounts(accounts: tuple[Account, ...]) -> dict[str, Any]:
    return {"accounts": [[a.name, a.role] for a in accounts]}


def _time(info: TimeInfo) -> dict[str, Any]:
    return {
        "camera_utc": _iso(info.camera_utc),
        "ntp": info.ntp,
        "ntp_servers": list(info.ntp_servers),
        "zone": info.zone,
    }


def _params(answer: Answer) -> dict[str, Any]:
    params = axis.parse_params(answer.body(), answer.args["group"])
    flags = {name: axis.param_flag(params, name) for name in answer.expect.get("flags", {})}
    return {"values": params, "count": len(params), "flags": flags}


def _field(answer: Answer) -> Any:
    """The value a dotted path names in a JSON body (list items by index)."""
    value: Any = json.loads(answer.body())
    for key in answer.args["field"].split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def _firmware(answer: Answer) -> dict[str, Any]:
    """A firmware string: the whole body, or the field a dotted path names in a JSON body."""
    text = str(_field(answer)) if "field" in answer.args else answer.body().decode().strip()
    version = parse_firmware(answer.args["vendor"], text)
    return {
        "numbers": list(version.numbers),
        "build_date": _iso(version.build),
        "scheme": version.scheme,
    }


def _catalog(answer: Answer) -> dict[str, Any]:
    """A GB/T 28181 catalog item: the identification's vendor, model and firmware reading."""
    item = etree.fromstring(answer.body())
    vendor = canonical_vendor(item.findtext("Manufacturer"))
    version = parse_firmware(vendor, item.findtext("Owner") or "")
    return {
        "vendor": vendor,
        "model": item.findtext("Model"),
        "numbers": list(version.numbers),
        "build_date": _iso(version.build),
    }


def _software_version(answer: Answer) -> dict[str, Any]:
    firmware, build = dahua.parse_software_version(answer.body())
    numbers = list(parse_firmware("dahua", firmware, build).numbers)
    return {"firmware": firmware, "build_date": _iso(build), "numbers": numbers}


@cache
def _binding(media: bool) -> Any:
    wsdl, binding = (
        (onvif_const.MEDIA_WSDL, onvif_const.MEDIA_BINDING)
        if media
        else (onvif_const.DEVICE_WSDL, onvif_const.DEVICE_BINDING)
    )
    path = Path(onvif.__file__).parent / "wsdl" / wsdl
    client = _zeep.Client(str(path), transport=ASYNC_TRANSPORT, settings=DEFAULT_SETTINGS)
    return client.wsdl.bindings[binding]


def soap(answer: Answer, operation: str) -> Any:
    """The recorded SOAP answer decoded by zeep exactly as onvif-zeep-async does."""
    envelope = etree.fromstring(answer.body())
    binding = _binding(bool(answer.args.get("media")))
    if envelope.find("soap-env:Body/soap-env:Fault", namespaces=binding.nsmap) is not None:
        binding.process_error(envelope, binding.get(operation))  # raises zeep's Fault
    return binding.get(operation).process_reply(envelope)


def _fault(answer: Answer) -> dict[str, Any]:
    """The kind our one translation edge gives a recorded SOAP fault (``Unsupported`` for a
    device that lacks the operation, ``AuthFailed`` for a refusal)."""
    try:
        soap(answer, answer.args["operation"])
    except Exception as exc:  # noqa: BLE001  # the translated kind is what is checked
        translated = translate(exc)
        return {"error": None if translated is None else translated.code}
    return {"error": None}


def _rtsp_auth(answer: Answer) -> dict[str, Any]:
    """RTSP authentication as read, then as read back from the document the adapter would PUT
    to turn it off: only ``Transport/Security/enabled`` changes, never the channel's own."""
    body = answer.body()
    try:
        off: bytes | None = hik.with_text(body, "StreamingChannel", RTSP_AUTH_ELEMENT, "false")
    except ValueError:  # no Transport/Security: nothing to write
        off = None
    channel = None if off is None else etree.fromstring(off).find("{*}enabled")
    return {
        "rtsp_auth": hik.parse_rtsp_auth(body),
        "written_off": None if off is None else hik.parse_rtsp_auth(off),
        "channel_enabled": None if channel is None else channel.text,
    }


ONVIF: dict[str, Callable[[Any], dict[str, Any]]] = {
    "GetDeviceInformation": lambda r: _identity(onvif_parsers.parse_device_information(r)),
    "GetUsers": lambda r: _accounts(onvif_parsers.parse_users(r)),
    "GetNTP": lambda r: _time(onvif_parsers.parse_time(None, r)),
    "GetSystemDateAndTime": lambda r: _time(onvif_parsers.parse_time(r, None)),
    "GetStreamUri": lambda r: {
        "rtsp_uri": onvif_parsers.parse_stream_uri(None, r).rtsp_uri.strip()
    },
    "GetProfiles": lambda r: {"tokens": [t for _, t in onvif_parsers.profile_tokens(r)]},
    "GetNetworkInterfaces": lambda r: {"lines": list(onvif_parsers.network_fingerprint(r, None))},
    "GetNetworkProtocols": lambda r: {"lines": list(onvif_parsers.network_fingerprint(None, r))},
}


def _onvif(answer: Answer) -> dict[str, Any]:
    operation = answer.parser.removeprefix("onvif.")
    if operation == "fault":
        return _fault(answer)
    return ONVIF[operation](soap(answer, operation))


PARSERS: dict[str, Callable[[Answer], dict[str, Any]]] = {
    "axis.pwdgrp": lambda a: _accounts(axis.parse_pwdgrp(a.body())),
    "axis.params": _params,
    "axis.time": lambda a: _time(axis.parse_time(a.body())),
    "axis.auth_policy": lambda a: {
        "digest_only": axis.parse_auth_policy(axis.parse_params(a.body(), "Network.HTTP"))
    },
    "axis.rtsp_viewer": lambda a: {
        "rtsp_auth": axis.parse_rtsp_viewer(axis.parse_params(a.body(), "Network.RTSP"))
    },
    "axis.snmp": lambda a: dict(
        zip(
            ("snmp", "community"), axis.parse_snmp(axis.parse_params(a.body(), "SNMP")), strict=True
        )
    ),
    "axis.basicdeviceinfo": lambda a: _identity(
        axis.parse_basic_device_info(a.body(), a.args["method"])
    ),
    "axis.brand_properties": lambda a: _identity(
        axis.parse_brand_properties(a.body(), a.companion(0))
    ),
    "hikvision.device_info": lambda a: _identity(hik.parse_device_info(a.body())),
    "hikvision.users": lambda a: _accounts(hik.parse_users(a.body())),
    "hikvision.lockout": lambda a: {
        "enabled": (policy := hik.parse_lockout(a.body())).enabled,
        "threshold": policy.threshold,
        "lock_s": policy.lock_s,
    },
    "hikvision.time": lambda a: _time(
        hik.parse_time(a.body(), a.companion(0) if a.companions else None)
    ),
    "hikvision.ntp": lambda a: _time(
        hik.parse_time(b"<Time><timeMode>NTP</timeMode></Time>", a.body())
    ),
    "hikvision.lock_signal": lambda a: {"lock": hik.lock_signal(a.body())},
    "hikvision.rtsp_auth": _rtsp_auth,
    "dahua.kv": lambda a: {"values": dahua.parse_kv(a.body())},
    "dahua.model": lambda a: {"model": dahua.parse_model(a.body(), a.companion(0))},
    "dahua.system_model": lambda a: {"model": dahua.parse_model(a.companion(0), a.body())},
    "dahua.software_version": _software_version,
    "dahua.config": lambda a: {"flag": dahua.config_flag(dahua.parse_kv(a.body()), a.args["name"])},
    "dahua.users": lambda a: _accounts(dahua.parse_users(a.body())),
    "dahua.time": lambda a: _time(dahua.parse_time(a.companion(0), a.body())),
    "versions.firmware": _firmware,
    "ntp.servers": lambda a: {"ntp_servers": list(ntp_servers(_field(a)))},
    "identity.catalog": _catalog,
    "sadp": lambda a: _announcement(discovery.parse_sadp("sender", a.body(), a.args["token"])),
    "dhdiscover": lambda a: _announcement(
        discovery.parse_dhdiscover("sender", discovery.dhip_frame(a.body()))
    ),
    "dahua.remote_devices": lambda a: {
        "channels": [
            [c.number, c.model] for c in dahua.parse_remote_devices(dahua.parse_kv(a.body()), None)
        ]
    },
}


def _announcement(found: discovery.Announcement | None) -> dict[str, Any]:
    assert found is not None
    return dataclasses.asdict(found)


def _observed(answer: Answer) -> dict[str, Any]:
    if answer.parser.startswith("onvif."):
        return _onvif(answer)
    return PARSERS[answer.parser](answer)


def _matches(observed: dict[str, Any], expected: dict[str, Any]) -> bool:
    for key, want in expected.items():
        got = observed.get(key)
        if isinstance(want, dict) and isinstance(got, dict):
            if any(got.get(k) != v for k, v in want.items()):
                return False
        elif got != want:
            return False
    return True


@pytest.mark.parametrize("answer", ANSWERS, ids=[f"{a.file}:{a.parser}" for a in ANSWERS])
def test_real_answer(answer: Answer) -> None:
    observed = _observed(answer)
    assert _matches(observed, answer.expect), {k: observed.get(k) for k in answer.expect}


# Issue 17: at least 150 answers from at least 10 brands.
MIN_ANSWERS = 150


def test_corpus_size_and_provenance() -> None:
    """At least ``MIN_ANSWERS`` answers from at least 10 brands, each with its source and
    licence, and every file in the folder listed in the index."""
    entries = _index()
    files = {e["file"] for e in entries} | {c for e in entries for c in e.get("companions", [])}
    on_disk = {p.relative_to(REAL).as_posix() for p in REAL.rglob("*") if p.is_file()}
    assert on_disk - {"INDEX.json"} == files
    for entry in entries:
        assert all(entry[key] for key in ("source", "path", "commit", "licence")), entry
    brands = Counter(e["vendor"] for e in entries)
    assert len(files) >= MIN_ANSWERS, len(files)
    assert len(brands) >= 10, brands


def figures() -> dict[str, tuple[int, int]]:
    """Real answers parsed right / total, per vendor (printed by ``python -m``)."""
    tally: dict[str, tuple[int, int]] = {}
    for answer in ANSWERS:
        try:
            right = _matches(_observed(answer), answer.expect)
        except Exception:  # noqa: BLE001  # a parser error counts as parsed wrong
            right = False
        ok, total = tally.get(answer.vendor, (0, 0))
        tally[answer.vendor] = (ok + right, total + 1)
    return tally


if __name__ == "__main__":
    for vendor, (ok, total) in sorted(figures().items()):
        print(f"{vendor:12} {ok:4} / {total}")
