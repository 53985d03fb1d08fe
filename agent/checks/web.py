"""Web interface checks without credentials: AUTH-07, AUTH-11, COM-01.

* ``http_auth`` (AUTH-07): an anonymous GET of a protected vendor URL on plain HTTP (on a
  camera of unknown vendor, every vendor's and then ``GENERIC_PROTECTED_URLS``); the
  ``WWW-Authenticate`` schemes decide. Basic offered = fail; Digest only = pass (the algorithm is
  evidence). No challenge on any known URL = inconclusive (an ONVIF-only camera authenticates
  inside SOAP, which this check cannot see without sending credentials).
* ``snapshot`` (AUTH-11): an anonymous GET of the vendor's snapshot URL; 200 with a JPEG = fail.
* ``https`` (COM-01): HTTPS must answer, and plain HTTP must be closed or redirect to HTTPS.
  HTTPS on while plain HTTP still serves the interface is a (medium) fail, as the baseline says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from agent.checks.base import CheckContext
from agent.checks.netprobe import NetCheck, vendor_of
from agent.probes import ports, web
from agent.probes.rtsp import parse_challenges
from agent.vendors.base import Unreachable
from protocol.messages import EvidenceValue, Finding

__all__ = ["HttpAuthCheck", "HttpsCheck", "SnapshotCheck"]

PROTECTED_URLS: Final[Mapping[str, str]] = {
    "hikvision": "/ISAPI/System/deviceInfo",
    "dahua": "/cgi-bin/magicBox.cgi?action=getDeviceType",
    "axis": "/axis-cgi/param.cgi?action=list&group=Properties",
}
# Asked on a camera of unknown vendor after the vendors' own (AUTH-07): the CGI of the HiSilicon
# Hi3510 boards many unbranded cameras run, common snapshot CGIs, and the root page, all of which
# such cameras put behind HTTP authentication.
GENERIC_PROTECTED_URLS: Final = (
    "/cgi-bin/hi3510/param.cgi?cmd=getserverinfo",
    "/web/cgi-bin/hi3510/param.cgi?cmd=getserverinfo",
    "/cgi-bin/snapshot.cgi",
    "/snapshot.cgi",
    "/",
)
SNAPSHOT_URLS: Final[Mapping[str, str]] = {
    "hikvision": "/ISAPI/Streaming/channels/101/picture",
    "dahua": "/cgi-bin/snapshot.cgi",
    "axis": "/axis-cgi/jpg/image.cgi",
}
_SMALL: Final = 64 * 1024


def _candidates(
    ctx: CheckContext, table: Mapping[str, str], generic: tuple[str, ...] = ()
) -> list[str]:
    """The vendor's URL if the vendor is known, else every vendor's, then ``generic`` (all
    anonymous GETs)."""
    vendor = vendor_of(ctx)
    if vendor is not None and vendor in table:
        return [table[vendor]]
    return [*table.values(), *generic]


async def _closed(host: str, port: int, timeout_s: float) -> bool:
    """True when ``host`` refuses TCP on ``port`` (the HTTP client does not say why a connect
    failed)."""
    return (await ports.scan(host, [port], timeout_s=timeout_s))[port] == "closed"


class HttpAuthCheck(NetCheck):
    id = "http_auth"
    controls = ("AUTH-07",)

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        port = self.settings.port(ctx, "http")
        base = f"http://{ctx.target.address}:{port}"
        tried = _candidates(ctx, PROTECTED_URLS, GENERIC_PROTECTED_URLS)
        for path in tried:
            try:
                reply = await web.request(
                    base + path, timeout_s=self.settings.timeout_s, max_bytes=_SMALL
                )
            except Unreachable:
                if not await _closed(ctx.target.address, port, self.settings.timeout_s):
                    raise
                reason = f"nothing listens on plain HTTP port {port}"
                return [
                    self.finding(
                        ctx,
                        "auth.http_closed",
                        "not_applicable",
                        "info",
                        reason=reason,
                        evidence={"port": port},
                    )
                ]
            challenges = parse_challenges(list(reply.authenticate))
            if reply.status != 401 or not challenges:
                continue
            schemes = ",".join(sorted({c.scheme for c in challenges}))
            algorithm = ",".join(
                sorted(
                    {c.params.get("algorithm", "MD5") for c in challenges if c.scheme == "digest"}
                )
            )
            evidence: dict[str, EvidenceValue] = {
                "port": port,
                "path": path,
                "schemes": schemes,
                "algorithm": algorithm,
            }
            if "basic" in schemes.split(","):
                return [self.finding(ctx, "auth.http_basic", "fail", "high", evidence=evidence)]
            return [self.finding(ctx, "auth.http_digest", "pass", "info", evidence=evidence)]
        return [
            self.finding(
                ctx,
                "auth.http_no_challenge",
                "inconclusive",
                "info",
                reason="no known protected URL answered 401 with a challenge",
                evidence={"port": port, "paths": " ".join(tried)},
            )
        ]


class SnapshotCheck(NetCheck):
    id = "snapshot"
    controls = ("AUTH-11",)

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        port = self.settings.port(ctx, "http")
        base = f"http://{ctx.target.address}:{port}"
        tried = _candidates(ctx, SNAPSHOT_URLS)
        for path in tried:
            reply = await web.request(
                base + path,
                timeout_s=self.settings.timeout_s,
                max_bytes=self.settings.max_response_bytes,
            )
            evidence: dict[str, EvidenceValue] = {
                "port": port,
                "path": path,
                "status": reply.status,
            }
            if reply.status in (401, 403):
                return [
                    self.finding(ctx, "auth.snapshot_protected", "pass", "info", evidence=evidence)
                ]
            if reply.status != 200:
                continue
            evidence["content_type"] = reply.content_type
            if reply.content_type == "image/jpeg" and reply.body.startswith(b"\xff\xd8"):
                evidence["bytes"] = len(reply.body)
                return [
                    self.finding(
                        ctx, "auth.snapshot_anonymous", "fail", "critical", evidence=evidence
                    )
                ]
            return [
                self.finding(
                    ctx,
                    "auth.snapshot_unclear",
                    "inconclusive",
                    "info",
                    reason="200 without a JPEG image",
                    evidence=evidence,
                )
            ]
        return [
            self.finding(
                ctx,
                "auth.snapshot_none",
                "not_applicable",
                "info",
                reason="no known snapshot URL exists on this camera",
                evidence={"port": port, "paths": " ".join(tried)},
            )
        ]


class HttpsCheck(NetCheck):
    id = "https"
    controls = ("COM-01",)

    async def _get(self, scheme: str, host: str, port: int) -> web.WebReply | None:
        """The answer to ``GET /``, or None when nothing listens."""
        timeout = self.settings.timeout_s
        try:
            return await web.request(
                f"{scheme}://{host}:{port}/", timeout_s=timeout, max_bytes=_SMALL
            )
        except Unreachable:
            if await _closed(host, port, timeout):
                return None
            raise

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        host = ctx.target.address
        http_port = self.settings.port(ctx, "http")
        https_port = self.settings.port(ctx, "https")
        secure = await self._get("https", host, https_port)
        plain = await self._get("http", host, http_port)
        evidence: dict[str, EvidenceValue] = {"http_port": http_port, "https_port": https_port}
        if secure is None:
            if plain is None:
                raise Unreachable(f"neither HTTP port {http_port} nor HTTPS port {https_port}")
            evidence["http_status"] = plain.status
            return [self.finding(ctx, "com.https_missing", "fail", "high", evidence=evidence)]
        if plain is None:
            evidence["http_state"] = "closed"
        elif plain.status in (301, 302, 303, 307, 308) and plain.location.startswith("https://"):
            evidence["http_state"] = "redirects to HTTPS"
        else:
            evidence["http_status"] = plain.status
            return [self.finding(ctx, "com.http_alongside", "fail", "medium", evidence=evidence)]
        return [self.finding(ctx, "com.https_only", "pass", "info", evidence=evidence)]
