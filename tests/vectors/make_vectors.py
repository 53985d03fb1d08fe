"""Regenerate the golden envelope vectors: ``python -m tests.vectors.make_vectors``.

Ed25519 signatures are deterministic, so a fixed test key and fixed payloads give fixed bytes; the
test suite regenerates them in memory and compares with the committed file.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc.jwk import OKPKey

from protocol import (
    GENESIS,
    AgentInfo,
    Camera,
    Finding,
    Heartbeat,
    Hello,
    HostHealth,
    Identity,
    StatusReport,
    digest,
    encode,
    sign,
)

HERE = Path(__file__).parent
WHEN = datetime(2026, 11, 1, 8, 30, tzinfo=UTC)


def _key(seed: int) -> OKPKey:
    raw = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    x = raw.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    d = bytes([seed]) * 32
    b64 = base64.urlsafe_b64encode
    return OKPKey.import_key(
        {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(x).decode().rstrip("="),
            "d": b64(d).decode().rstrip("="),
        }
    )


AGENT_KEY = _key(7)  # test-only key; it signs nothing outside these vectors
OTHER_KEY = _key(9)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _report(seq: int, prev: str, prev_seq: int) -> StatusReport:
    agent = AgentInfo(version="0.1.0", hostname="pi-hn-01", platform="Linux-aarch64")
    finding = Finding(
        code="auth.default_credentials",
        check="default-credentials",
        status="fail",
        severity="critical",
        controls=["AUTH-01"],
        evidence={"interface": "onvif", "username": "admin"},
    )
    cam = Camera(
        camera_id="cam-gate-1",
        address="10.99.0.11",
        reachable=True,
        identity=Identity(vendor="Hikvision", model="DS-2CD2143G2-I", firmware="V5.5.0"),
        findings=[finding],
        audited_at=WHEN,
    )
    host = HostHealth(
        cpu_percent=3.5, memory_percent=41.0, disk_free_bytes=10**10, uptime_s=3600.0, load1=0.2
    )
    return StatusReport(
        agent_id="pi-hn-01",
        site="hanoi-hq",
        seq=seq,
        issued_at=WHEN,
        prev=prev,
        prev_seq=prev_seq,
        agent=agent,
        host=host,
        cameras=[cam],
    )


def build() -> dict[str, Any]:
    hello = Hello(
        agent_id="pi-hn-01",
        site="hanoi-hq",
        seq=1,
        issued_at=WHEN,
        prev=GENESIS,
        prev_seq=0,
        agent=AgentInfo(version="0.1.0", hostname="pi-hn-01", platform="Linux"),
    )
    r2 = sign(encode(_report(2, GENESIS, 0)), AGENT_KEY)

    r4 = sign(encode(_report(4, digest(r2), 2)), AGENT_KEY)
    hb = Heartbeat(
        agent_id="pi-hn-01",
        site="hanoi-hq",
        seq=3,
        issued_at=WHEN,
        prev=digest(r2),
        prev_seq=2,
        uptime_s=10.0,
        outbox_depth=0,
        cameras_known=1,
    )
    head, payload, sig = r2.split(".")
    none_head = _b64(json.dumps({"alg": "none", "kid": "x"}).encode())
    hs_head = _b64(json.dumps({"alg": "HS256", "kid": AGENT_KEY.thumbprint()}).encode())
    forged_payload = _b64(encode(_report(2, GENESIS, 0)).replace(b"critical", b"low     "))
    # a correctly signed header that names alg twice: a parser keeping the first sees "none"
    twice_head = _b64(
        b'{"alg":"none","kid":"' + AGENT_KEY.thumbprint().encode() + b'","alg":"EdDSA"}'
    )
    signer = AGENT_KEY.private_key
    if not isinstance(signer, Ed25519PrivateKey):
        raise TypeError("the vectors' agent key is Ed25519")
    twice_sig = _b64(signer.sign(f"{twice_head}.{payload}".encode()))
    nul_report = encode(_report(2, GENESIS, 0)).replace(b'"10.99.0.11"', b'"10.99.0.11\\u0000"')
    cases: list[dict[str, str]] = [
        {"name": "hello", "jws": sign(encode(hello), AGENT_KEY), "expect": "valid"},
        {"name": "report-first", "jws": r2, "expect": "valid"},
        {"name": "heartbeat", "jws": sign(encode(hb), AGENT_KEY), "expect": "valid"},
        {"name": "report-chained", "jws": r4, "expect": "valid"},
        {
            "name": "forged-payload",
            "jws": f"{head}.{forged_payload}.{sig}",
            "expect": "bad_signature",
        },
        {
            "name": "other-agent-key",
            "jws": sign(encode(_report(2, GENESIS, 0)), OTHER_KEY),
            "expect": "unknown_key",
        },
        {"name": "truncated", "jws": r2[: len(r2) // 2], "expect": "malformed"},
        {"name": "two-segments", "jws": f"{head}.{payload}", "expect": "malformed"},
        {"name": "alg-none", "jws": f"{none_head}.{payload}.", "expect": "malformed"},
        {
            "name": "alg-hs256",
            "jws": f"{hs_head}.{payload}.{sig}",
            "expect": "malformed",
        },
        {
            "name": "signed-not-json",
            "jws": sign(b"\xff\xfe not json", AGENT_KEY),
            "expect": "schema",
        },
        {
            "name": "signed-bad-schema",
            "jws": sign(b'{"type":"heartbeat","seq":-1}', AGENT_KEY),
            "expect": "schema",
        },
        {
            "name": "header-key-twice",
            "jws": f"{twice_head}.{payload}.{twice_sig}",
            "expect": "malformed",
        },
        {
            # msgspec and most parsers keep the last: seq 4 here, while a first-wins reader sees 3
            "name": "signed-key-twice",
            "jws": sign(encode(hb)[:-1] + b',"seq":4}', AGENT_KEY),
            "expect": "schema",
        },
        {"name": "signed-nul-in-text", "jws": sign(nul_report, AGENT_KEY), "expect": "schema"},
        {
            "name": "signed-unknown-field",
            "jws": sign(encode(hb)[:-1] + b',"extra":1}', AGENT_KEY),
            "expect": "schema",
        },
    ]
    return {
        "comment": "Golden camwarden/v1 envelopes; python -m tests.vectors.make_vectors",
        "agent_public_jwk": {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": AGENT_KEY.as_dict(private=False)["x"],
            "kid": AGENT_KEY.thumbprint(),
        },
        "cases": cases,
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    (HERE / "envelopes.json").write_text(render(), encoding="utf-8")
