"""The short fuzz run (part of ``make test``): every target of ``harness`` for a bounded number
of examples. The long run, with executions per target and findings, is ``bench/fuzz.py``.

Each crash the fuzzing found is kept as an ``@example`` of the target it crashed, with the fix
in the code under test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.fuzz.harness import ANSWERS, RTSP_REPLIES, RtspPeer, Target, certificates, targets

pytestmark = pytest.mark.fuzz

# about 60 s for all targets on two loaded cores; no deadline: a slow example on a busy machine
# is not a finding (bench/fuzz.py reports the slowest example per target instead)
EXAMPLES = 60
CI = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

V3 = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT Version v3, DER
P256 = b"\x2a\x86\x48\xce\x3d\x03\x01\x07"  # the OID 1.2.840.10045.3.1.7, DER

# inputs that crashed a target once: (target, input)
REGRESSIONS: list[tuple[str, bytes]] = [
    # "Content-Length: ²": str.isdigit() is true for superscript digits, int() refuses them
    (
        "probes.rtsp",
        RTSP_REPLIES[0]
        + ANSWERS
        + b"RTSP/1.0 200 OK\r\nCSeq: 2\r\nContent-Length: \xc2\xb2\r\n\r\n",
    ),
    # the same in a router's port mapping
    (
        "probes.igd_mapping",
        b"<r><NewExternalPort>\xc2\xb2</NewExternalPort><NewInternalPort>1</NewInternalPort></r>",
    ),
    # an EC key on a curve OID OpenSSL does not know: UnsupportedAlgorithm from public_key()
    (
        "probes.tls_certificate",
        certificates()[1].replace(P256, b"\x2a\x86\x48\x1c\x3d\x03\x01\x07"),
    ),
    # a name whose UTF8String does not decode: ValueError from rfc4514_string()
    ("probes.tls_certificate", certificates()[0].replace(b"\x13camwarden", b"\x13\xa2amwarden")),
    # an XML declaration naming an encoding Python does not know: LookupError from expat
    ("probes.xml", b'<?xml version="1.0" encoding="UT8"?><a/>'),
    ("probes.wsdiscovery", b'<?xml version="1.0" encoding="UTFtrue-8"?><a/>'),
    # X.509 version 2 (INTEGER 1): cryptography's InvalidVersion, not a ValueError
    ("probes.tls_certificate", certificates()[0].replace(V3, b"\xa0\x03\x02\x01\x01", 1)),
]


@pytest.fixture(scope="module")
def rtsp_peer() -> Iterator[RtspPeer]:
    peer = RtspPeer()
    yield peer
    peer.close()


NAMES = [*targets().names(), "probes.rtsp"]


@pytest.mark.parametrize("name", NAMES)
def test_hostile_input_ends_in_a_typed_error_or_an_answer(name: str, rtsp_peer: RtspPeer) -> None:
    target: Target = targets(rtsp_peer).get(name)

    def fuzz(data: bytes) -> None:
        target.check(data)

    run = given(target.inputs())(fuzz)
    for regression, data in REGRESSIONS:
        if regression == name:
            run = example(data)(run)
    CI(run)()


def test_no_seed_crashes_its_target(rtsp_peer: RtspPeer) -> None:
    """The seeds are real answers (a target may refuse another vendor's, with a typed error)."""
    for target in targets(rtsp_peer):
        assert target.seeds, target.name
        for seed in target.seeds:
            target.check(seed)
