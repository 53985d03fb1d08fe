"""The network-probe checks against seeded lab cameras: fail exactly where a weakness is seeded.

Ground truth is ``node.weaknesses`` (lab.truth). Two documented differences:

* COM-01: the lab's truth follows the baseline (plain HTTP alongside HTTPS without a redirect
  fails); the agent tells the two failures apart by code (``com.https_missing`` and
  ``com.http_alongside``).
* SVC-01 is not in the lab's truth; it fails exactly where telnet, FTP or SSH is seeded (ports
  outside every vendor's documented set).
"""

from __future__ import annotations

import time

import pytest

from agent.checks.codes import CODES
from lab.fleet import Fleet
from lab.testing import LabFactory
from protocol.messages import Finding
from tests.agent.checks_net.support import audit, by_control, lab_settings, net_checks

LAB = """
[[camera]]
id = "hik-open"
persona = "hikvision"
basic_over_http = true
anonymous_snapshot = true
anonymous_rtsp = true
telnet = true
ssh = true
snmp_public = true
upnp = true

[[camera]]
id = "dahua-weak"
persona = "dahua"
ftp = true
rtsp_auth = "basic"
https = true
tls = { versions = ["TLSv1", "TLSv1.2"], weak_key = true, expired = true }

[[camera]]
id = "axis-good"
persona = "axis"
https = true
tls = { shared_key_group = "fleet" }

[[camera]]
id = "hik-good"
persona = "hikvision"
https = true
tls = { shared_key_group = "fleet" }

[[camera]]
id = "generic"
persona = "onvif-generic"

[[router]]
id = "gw"
[[router.port_mappings]]
external_port = 8080
camera = "hik-open"
internal_port = 80
"""

# lab.tls sets TLS 1.0 as a server minimum, which Python deprecates (the seeded weakness)
pytestmark = pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")

DECIDED = (
    "AUTH-07",
    "AUTH-08",
    "AUTH-09",
    "AUTH-11",
    "COM-02",
    "COM-05",
    "COM-06",
    "SVC-02",
    "SVC-03",
    "SVC-04",
    "SVC-05",
)


def _codes(findings: list[Finding]) -> set[str]:
    return {f.code for f in findings}


async def _run(fleet: Fleet) -> dict[str, list[Finding]]:
    checks = net_checks(lab_settings(fleet))
    return {cid: await audit(node, checks) for cid, node in fleet.cameras.items()}


async def test_fail_exactly_where_seeded(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB)
    started = time.monotonic()
    results = await _run(fleet)
    elapsed = time.monotonic() - started
    for cid, findings in results.items():
        node = fleet[cid]
        truth = node.weaknesses
        seen = by_control(findings)
        for finding in findings:
            CODES[finding.code].format(**finding.evidence)  # every placeholder is evidence
        for control in DECIDED:
            if cid == "generic" and control in ("AUTH-07", "AUTH-11"):
                continue  # ONVIF-only persona, below
            expected = "fail" if control in truth else "pass"
            statuses = seen.get(control, set())
            if expected == "pass" and control in ("AUTH-09",) and "AUTH-08" in truth:
                expected = "not_applicable"  # an anonymous stream offers no scheme
            if expected == "pass" and control == "COM-02" and not node.spec.https:
                expected = "not_applicable"
            if expected == "pass" and control == "SVC-05":
                assert statuses == {"pass"}, (cid, control, findings)
                continue
            assert expected in statuses, (cid, control, statuses, truth.get(control))
            assert statuses <= {expected}, (cid, control, statuses)
        com01 = _codes([f for f in findings if "COM-01" in f.controls])
        assert "COM-01" in truth  # no camera of this lab redirects plain HTTP to HTTPS
        assert com01 == ({"com.http_alongside"} if node.spec.https else {"com.https_missing"})
        svc01 = seen["SVC-01"]
        risky = node.spec.telnet or node.spec.ftp or node.spec.ssh
        assert svc01 == ({"fail"} if risky else {"pass"}), (cid, findings)
    generic = results["generic"]
    assert _codes(generic) >= {"auth.http_no_challenge", "auth.snapshot_none"}
    assert elapsed < 60, elapsed


async def test_evidence_details(lab_fleet: LabFactory) -> None:
    fleet = await lab_fleet(LAB)
    results = await _run(fleet)

    def one(cid: str, code: str) -> Finding:
        [found] = [f for f in results[cid] if f.code == code]
        return found

    hik = fleet["hik-open"]
    forward = one("hik-open", "exp.port_forward")
    assert (forward.evidence["external_port"], forward.evidence["internal_port"]) == (
        8080,
        hik.ports["http"],
    )
    assert one("hik-open", "com.snmp_community").evidence["community"] == "public"
    assert one("hik-open", "svc.telnet_open").controls == ["COM-06", "SVC-02"]
    assert one("hik-open", "auth.http_basic").evidence["schemes"] == "basic"
    assert one("hik-good", "auth.http_digest").evidence["algorithm"] == "MD5"
    weak = one("dahua-weak", "com.tls_weak").evidence["problems"]
    assert weak == "TLSv1 accepted; certificate expired; RSA-1024 key"  # exactly the listed set
    assert one("dahua-weak", "svc.ftp_open").controls == ["COM-06"]
    assert one("dahua-weak", "auth.rtsp_basic").evidence["path_source"] == "vendor default"
    # COM-03: the SPKI hash is equal exactly where the lab shares one key
    spki = {
        cid: one(cid, "com.tls_key_fingerprint").evidence["spki_sha256"]
        for cid in ("dahua-weak", "axis-good", "hik-good")
    }
    assert spki["axis-good"] == spki["hik-good"] != spki["dahua-weak"]
    assert "COM-03" in fleet["axis-good"].weaknesses
    assert "COM-03" not in fleet["dahua-weak"].weaknesses
    assert {f.status for f in results["hik-good"] if "COM-03" in f.controls} == {"inconclusive"}
