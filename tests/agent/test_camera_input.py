"""Bounded camera input and the scope gate, on the lab and on plain loopback listeners.

* A camera whose model string is ten thousand characters with a NUL in it is audited with its
  identity cut at the source; the audit worker's answer stays readable, so the normal camera
  next to it keeps its results.
* A configured camera outside ``[network] camera_subnets`` is reported not audited with the
  reason, and nothing reaches it (listeners on its address count every connection and
  datagram).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from agent.audit.worker import Finished, Reply
from agent.config import load_config
from lab.config import parse_config
from lab.testing import LabFactory, private_base
from protocol.text import CUT_MARKER, TEXT_MAX
from tests.agent.audit_lab import AUDIT, PORT_SHIFT, audit, prepare
from tests.agent.listeners import Listeners, listening

pytestmark = pytest.mark.integration

STRONG = "Kq7!vR2#mZ9x"
NO_GUESSING = AUDIT.replace("guess_default_credentials = true", "guess_default_credentials = false")
ODD_MODEL = "DS-2CD\x00" + "X" * 10_000
LAB = f"""
[lab]
rtsp = false
[[camera]]
id = "normal"
persona = "dahua"
users = [{{name = "admin", password = "{STRONG}", role = "admin"}}]
[[camera]]
id = "odd"
persona = "dahua"
users = [{{name = "admin", password = "{STRONG}", role = "admin"}}]
"""


async def test_a_ten_thousand_character_model_with_a_nul_is_cut_and_spoils_nothing(
    lab_fleet: LabFactory, tmp_path: Path
) -> None:
    parsed = parse_config(LAB)
    odd = [dataclasses.replace(c, model=ODD_MODEL) if c.id == "odd" else c for c in parsed.cameras]
    fleet = await lab_fleet(dataclasses.replace(parsed, cameras=tuple(odd)))
    config = prepare(fleet, tmp_path, audit=NO_GUESSING, discovery=False)
    result = await audit(config)

    # the worker's answer, as the daemon reads it: one camera's odd answer must not make it
    # unreadable (every camera would then be reported as an internal error)
    answer = msgspec.json.encode(Finished(result, peak_rss_kib=1))
    reply = msgspec.json.decode(answer, type=Reply)
    assert isinstance(reply, Finished)
    cameras = {c.camera_id: c for c in reply.result.cameras}
    model = cameras["odd"].identity.model
    assert model is not None
    assert "\x00" not in model
    assert len(model) == TEXT_MAX
    assert model.startswith("DS-2CDXXX")
    assert model.endswith(CUT_MARKER)
    normal = cameras["normal"]
    assert normal.audit == "audited"
    assert normal.identity.model == fleet["normal"].spec.model
    assert not [f for f in normal.findings if f.code == "check.internal_error"]


# the ports an audit of a camera reaches first: web, TLS, RTSP, ONVIF alternatives, SSH,
# telnet, FTP, Dahua's and Hikvision's SDK ports (shifted as the lab's are); SNMP, SSDP and
# WS-Discovery over UDP
TCP_PORTS = (21, 22, 23, 80, 443, 554, 8000, 8080, 8443, 8899, 37777)
UDP_PORTS = (161, 1900, 3702)


@pytest.fixture
async def outside() -> AsyncIterator[Listeners]:
    """Listeners on an address of another loopback block, counting whatever reaches them."""
    async with listening(
        str(private_base() + 10),
        tcp=[p + PORT_SHIFT for p in TCP_PORTS],
        udp=[p + PORT_SHIFT for p in UDP_PORTS],
    ) as found:
        yield found


async def test_a_configured_camera_outside_the_subnets_gets_nothing(
    lab_fleet: LabFactory, tmp_path: Path, outside: Listeners
) -> None:
    fleet = await lab_fleet(LAB)
    path = tmp_path / "agent.toml"
    prepare(fleet, tmp_path, audit=NO_GUESSING, discovery=False)
    text = path.read_text()
    # the subnets hold the lab's cameras only; a third configured camera lives elsewhere
    assert ipaddress.IPv4Address(outside.host) not in ipaddress.IPv4Network(
        f"{fleet['normal'].host}/24", strict=False
    )
    text += (
        f'[[cameras]]\nid = "elsewhere"\naddress = "{outside.host}"\ncredentials_ref = "normal"\n'
    )
    path.write_text(text)
    result = await audit(load_config(path))

    assert outside.reached == 0, f"packets reached the camera outside the subnets: {outside}"
    cameras = {c.camera_id: c for c in result.cameras}
    elsewhere = cameras["elsewhere"]
    assert elsewhere.audit == "not_audited"
    assert elsewhere.audit_reason is not None
    assert "outside the configured camera subnets" in elsewhere.audit_reason
    assert elsewhere.reachable is False
    assert elsewhere.findings
    for finding in elsewhere.findings:
        if finding.controls == ["INV-04"]:
            continue
        assert finding.status in ("inconclusive", "not_applicable"), finding
    assert cameras["normal"].audit == "audited"
