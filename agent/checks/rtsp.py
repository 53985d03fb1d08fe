"""RTSP stream access without credentials: AUTH-08 (anonymous stream) and AUTH-09 (Basic).

Paths: the adapter's ONVIF ``GetStreamUri`` answers when it has the STREAMS capability, else the
vendor's default path, else a generic list; the first path that exists (200 or 401) decides.
OPTIONS + DESCRIBE go out without credentials. A 200 with an SDP that describes media (an
``m=`` line) fails AUTH-08 (a 200 without one is inconclusive); a 401 passes it,
and its ``WWW-Authenticate`` schemes decide AUTH-09 (Basic offered = fail). With the agent's own
credential and a Digest challenge, one Digest DESCRIBE confirms the path serves a stream
(evidence only); the credential is never sent with Basic.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from agent.checks.base import CheckContext
from agent.checks.netprobe import NetCheck, vendor_of
from agent.probes import ports, rtsp
from agent.vendors.base import CameraError, Unreachable
from agent.vendors.models import Capability
from protocol.messages import EvidenceValue, Finding

__all__ = ["RtspAuthCheck", "first_stream", "stream_paths"]

_AUTH08 = ("AUTH-08",)
_AUTH09 = ("AUTH-09",)
_MISSING = frozenset({400, 403, 404, 454})  # no such stream (403: some firmwares, unknown path)


async def stream_paths(ctx: CheckContext) -> tuple[list[str], str]:
    """Paths to try and where they came from ("onvif", "vendor default" or "generic list")."""
    if Capability.STREAMS in ctx.capabilities and ctx.adapter is not None:
        try:
            streams = await ctx.adapter.streams()
        except CameraError:
            streams = ()
        paths = []
        for stream in streams:
            parts = urlsplit(stream.rtsp_uri)
            paths.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        if paths:
            return paths, "onvif"
    vendor = vendor_of(ctx)
    if vendor is not None and vendor in rtsp.DEFAULT_PATHS:
        return list(rtsp.DEFAULT_PATHS[vendor]), "vendor default"
    return list(rtsp.GENERIC_PATHS), "generic list"


async def first_stream(
    host: str, port: int, paths: list[str], *, timeout_s: float
) -> tuple[str, rtsp.RtspReply] | None:
    """The first of ``paths`` that exists (any answer but "no such stream") and its
    unauthenticated DESCRIBE; None if none does."""
    for path in paths:
        reply = await rtsp.describe(host, port, path, timeout_s=timeout_s)
        if reply.status not in _MISSING:
            return path, reply
    return None


class RtspAuthCheck(NetCheck):
    id = "rtsp_auth"
    controls = ("AUTH-08", "AUTH-09")

    async def probe(self, ctx: CheckContext) -> list[Finding]:
        host, port = ctx.target.address, self.settings.port(ctx, "rtsp")
        paths, source = await stream_paths(ctx)
        timeout = self.settings.timeout_s
        try:
            found = await first_stream(host, port, paths, timeout_s=timeout)
        except Unreachable:
            if (await ports.scan(host, [port], timeout_s=timeout))[port] != "closed":
                raise
            return [
                self.finding(
                    ctx,
                    "auth.rtsp_closed",
                    "not_applicable",
                    "info",
                    reason=f"nothing listens for RTSP on port {port}",
                    evidence={"port": port},
                )
            ]
        if found is not None:
            path, reply = found
            return await self._judge(ctx, reply, source, path)
        return [
            self.finding(
                ctx,
                "auth.rtsp_no_stream",
                "inconclusive",
                "info",
                reason=f"no stream at any tried path ({source})",
                evidence={"port": port, "paths": " ".join(paths)[:400], "path_source": source},
            )
        ]

    async def _judge(
        self, ctx: CheckContext, reply: rtsp.RtspReply, source: str, path: str
    ) -> list[Finding]:
        evidence: dict[str, EvidenceValue] = {
            "uri": reply.uri,
            "status": reply.status,
            "path_source": source,
        }
        if reply.status == 200:
            if not reply.describes_media:
                return [
                    self.finding(
                        ctx,
                        "auth.rtsp_unclear",
                        "inconclusive",
                        "info",
                        reason="DESCRIBE answered 200 without a description of any media",
                        evidence={**evidence, "content_type": reply.content_type},
                    )
                ]
            return [
                self.finding(
                    ctx,
                    "auth.rtsp_anonymous",
                    "fail",
                    "critical",
                    evidence=evidence,
                    controls=_AUTH08,
                ),
                self.finding(
                    ctx,
                    "auth.rtsp_no_scheme",
                    "not_applicable",
                    "info",
                    reason="the stream needs no authentication at all (AUTH-08)",
                    evidence=evidence,
                    controls=_AUTH09,
                ),
            ]
        if reply.status != 401 or not reply.challenges:
            return [
                self.finding(
                    ctx,
                    "auth.rtsp_unclear",
                    "inconclusive",
                    "info",
                    reason=f"DESCRIBE answered {reply.status}",
                    evidence={**evidence, "content_type": reply.content_type},
                )
            ]
        evidence["schemes"] = ",".join(reply.schemes)
        if ctx.credential is not None and "digest" in reply.schemes:
            evidence["agent_login"] = await self._confirm(ctx, path)
        findings = [
            self.finding(
                ctx, "auth.rtsp_protected", "pass", "info", evidence=evidence, controls=_AUTH08
            )
        ]
        if "basic" in reply.schemes:
            findings.append(
                self.finding(
                    ctx, "auth.rtsp_basic", "fail", "high", evidence=evidence, controls=_AUTH09
                )
            )
        else:
            findings.append(
                self.finding(
                    ctx, "auth.rtsp_digest", "pass", "info", evidence=evidence, controls=_AUTH09
                )
            )
        return findings

    async def _confirm(self, ctx: CheckContext, path: str) -> str:
        """One Digest DESCRIBE with the agent's credential: "accepted", "refused" or "error"."""
        try:
            reply = await rtsp.describe(
                ctx.target.address,
                self.settings.port(ctx, "rtsp"),
                path,
                timeout_s=self.settings.timeout_s,
                credential=ctx.credential,
            )
        except CameraError:
            return "error"
        return "accepted" if reply.status == 200 else "refused"
