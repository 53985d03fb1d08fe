"""The collector's HTTP routes for agents: enrollment, agent certificates, the signed TUF
repository and advisory feed they download, offline report verification, metrics and health.

Agent certificates (``server.certs``): ``POST /api/v1/agents/{id}/challenge`` returns a random
challenge, valid once for ``CHALLENGE_TTL_S``; ``POST /api/v1/agents/{id}/certificate`` with
``{"jws": ...}``, the challenge signed by the agent's enrolled Ed25519 key, returns the agent's
MQTT certificate and the broker CA (409 while the agent is pending or has no certificate yet).

The TUF repository (``/tuf/metadata/<name>``, ``/tuf/targets/<path>``) is unauthenticated:
everything in it is signed, and agents verify it with ngclient from the root given at enrollment.

``create_app`` is the one factory. Routes by audience: agents here; operators (dashboard pages,
the ``/api/v1`` JSON API, firmware and rollouts) in ``server.web``, mounted on the same app.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.responses import FileResponse
from joserfc.jwk import OKPKey
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from protocol import (
    MalformedMessage,
    ProtocolError,
    RevokedKey,
    UnknownKey,
    import_public_jwk,
    public_jwk,
)
from protocol.envelope import verify
from server import advisories, broker_roles
from server.certs import AgentCertificates, BadPublicKey, parse_public_key
from server.config import ServerConfig
from server.domain.throttle import RateLimiter
from server.firmware import lifetimes
from server.firmware.tuf_repo import TufRepository
from server.metrics import Metrics
from server.storage import AgentConflict, Repository, TokenRejected
from server.verify import InvalidReport, verify_file
from server.web import app as web

NamePattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, Field(pattern=NamePattern)]
CHALLENGE_TTL_S = 60.0
MAX_CHALLENGES = 10_000
CHALLENGES_PER_AGENT = 4
CERTIFICATE_PURPOSE = "camwarden-mqtt-certificate"


class EnrollRequest(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=256)]
    agent_id: Name
    site: Name
    jwk: dict[str, Any]
    hostname: Annotated[str, Field(max_length=255)] | None = None
    # the agent's MQTT TLS public key (EC P-256, PEM); its private key stays on the agent
    mqtt_public_key: Annotated[str, Field(max_length=1024)] | None = None


class EnrollResponse(BaseModel):
    """``mqtt_certificate`` and ``mqtt_ca`` (PEM) when the agent is approved at once and sent
    an MQTT public key; else it fetches them once approved.

    ``collector_jwk`` is the public JWK (with kid) of the collector's command key: the agent pins
    it and accepts acknowledgements (later commands) only when signed with it.
    """

    agent_id: str
    site: str
    status: str
    collector_jwk: dict[str, str]
    # the newest TUF root of the firmware repository (absent before it is set up): the agent
    # keeps it as its trusted root and passes it to ngclient as ``bootstrap``
    tuf_root: dict[str, Any] | None = None
    mqtt_certificate: str | None = None
    mqtt_ca: str | None = None


class SignedChallenge(BaseModel):
    jws: Annotated[str, Field(max_length=4096)]


class Challenge(BaseModel):
    challenge: str
    expires_in_s: float


class CertificateResponse(BaseModel):
    certificate: str
    ca: str


class VerifyRequest(BaseModel):
    jwk: dict[str, Any]
    reports: str  # the report file: one JWS per line


class VerifyResponse(BaseModel):
    valid: bool
    summary: str | None = None
    line: int | None = None
    reason: str | None = None
    detail: str | None = None


def _public_key(jwk: dict[str, Any]) -> Any:
    try:
        return import_public_jwk(jwk)
    except MalformedMessage as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.detail) from exc


def per_source(per_minute: int) -> list[Any]:
    """Route dependencies that allow ``per_minute`` requests per source address (429 with
    Retry-After beyond), counted in this process's memory."""
    limiter = RateLimiter(per_minute)

    def limit(request: Request) -> None:
        wait = limiter.take(request.client.host if request.client else "")
        if wait:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                "too many requests from this address",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )

    return [Depends(limit)]


def create_app(
    config: ServerConfig,
    repo: Repository,
    *,
    command_key: OKPKey,
    metrics: Metrics | None = None,
    health: Callable[[], str | None] = lambda: None,
) -> FastAPI:
    app = FastAPI(
        title="camwarden collector",
        version="1",
        docs_url=None,  # served from local assets with a CSP: server.web.docs
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.config = config
    app.state.repo = repo
    app.state.metrics = metrics or Metrics()
    # anonymous routes (enroll, challenge, certificate, verify-report): limited per address
    api = APIRouter(prefix="/api/v1", dependencies=per_source(config.http.anonymous_per_minute))
    collector_jwk = public_jwk(command_key)
    tuf = TufRepository.under(config.state_dir, lifetimes(config.firmware))

    certs = AgentCertificates(Path(config.pki.ca_dir)) if config.pki.ca_dir else None
    # approving issues the agent's MQTT certificate and gives it its role on the broker
    repo.status_listeners += [certs.on_status] if certs else []
    repo.status_listeners += broker_roles.listeners(config, broker_roles.approved_agents(repo))
    challenges: dict[str, tuple[str, float]] = {}  # challenge -> (agent_id, expiry)

    def issued(agent_id: str) -> CertificateResponse | None:
        pem = certs.certificate(agent_id) if certs else None
        if certs is None or pem is None:
            return None
        return CertificateResponse(certificate=pem.decode(), ca=certs.ca_certificate().decode())

    @api.post("/enroll", status_code=status.HTTP_201_CREATED, response_model_exclude_none=True)
    def enroll(body: EnrollRequest) -> EnrollResponse:
        key = _public_key(body.jwk)
        try:
            mqtt_key = parse_public_key(body.mqtt_public_key) if body.mqtt_public_key else None
        except BadPublicKey as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        try:
            record = repo.enroll(
                body.token,
                agent_id=body.agent_id,
                site=body.site,
                jwk=public_jwk(key),
                kid=key.thumbprint(),
                hostname=body.hostname,
                now=datetime.now(UTC),
            )
        except TokenRejected as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
        except AgentConflict as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        cert = None
        if certs is not None and mqtt_key is not None and record.status != "revoked":
            certs.request(record.agent_id, mqtt_key)
            if record.status == "approved" and certs.issue(record.agent_id):
                cert = issued(record.agent_id)
        return EnrollResponse(
            agent_id=record.agent_id,
            site=record.site,
            status=record.status,
            collector_jwk=collector_jwk,
            tuf_root=json.loads(root) if (root := tuf.trusted_root()) else None,
            mqtt_certificate=cert.certificate if cert else None,
            mqtt_ca=cert.ca if cert else None,
        )

    certificate_routes(api, repo, challenges, issued)

    @api.post("/verify-report")
    def verify_report(body: VerifyRequest) -> VerifyResponse:
        key = _public_key(body.jwk)
        try:
            summary = verify_file(body.reports.encode(), key, config.ingest.max_message_bytes)
        except InvalidReport as exc:
            return VerifyResponse(
                valid=False, line=exc.line, reason=exc.error.reason, detail=exc.error.detail
            )
        return VerifyResponse(valid=True, summary=summary.text())

    app.include_router(api)
    app.include_router(tuf_router(tuf))
    web.mount(app, config, repo, tuf)

    @app.get("/metrics", include_in_schema=False)
    def metrics_page(request: Request) -> Response:
        registry = request.app.state.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/advisories/feed", include_in_schema=False)
    def advisory_feed() -> Response:
        """The published advisory feed, unauthenticated: agents verify it (server.advisories)."""
        path = advisories.feed_path(config.state_dir)
        if not path.exists():
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no advisory feed published")
        return FileResponse(
            path, media_type=advisories.MEDIA_TYPE, headers={"Cache-Control": "no-store"}
        )

    @app.get("/healthz")
    def healthz() -> Response:
        problem = health()  # None, "mqtt disconnected", "nats disconnected" or "ingest stalled"
        return Response(
            json.dumps({"status": problem or "ok"}),
            status_code=200 if problem is None else 503,
            media_type="application/json",
        )

    return app


def tuf_router(tuf: TufRepository) -> APIRouter:
    router = APIRouter(prefix="/tuf", include_in_schema=False)

    @router.get("/metadata/{name}")
    def metadata(name: str) -> Response:
        path = tuf.metadata_file(name)
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        return FileResponse(
            path, media_type="application/json", headers={"Cache-Control": "no-store"}
        )

    @router.get("/targets/{target:path}")
    def target(target: str) -> Response:
        path = tuf.target_file(target)
        if path is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND)
        return FileResponse(path, media_type="application/octet-stream")

    return router


def certificate_routes(
    api: APIRouter,
    repo: Repository,
    challenges: dict[str, tuple[str, float]],
    issued: Callable[[str], CertificateResponse | None],
) -> None:
    """The challenge and the certificate endpoints (see the module docstring).

    A challenge is given only to an enrolled agent that is not revoked (404 before it takes a
    slot), each source address is rate-limited, and an agent holds at most
    ``CHALLENGES_PER_AGENT`` open ones (a new one replaces its oldest): a flood under made-up
    or real agent ids cannot fill the table and refuse a real agent.
    """

    @api.post("/agents/{agent_id}/challenge")
    def challenge(agent_id: Name) -> Challenge:
        known = repo.agent(agent_id)
        if known is None or known.status == "revoked":
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such agent")
        now = time.monotonic()
        own = []
        for value, (holder, expiry) in list(challenges.items()):
            if expiry < now:
                del challenges[value]
            elif holder == agent_id:
                own.append((expiry, value))
        for _, value in sorted(own)[: max(0, len(own) - CHALLENGES_PER_AGENT + 1)]:
            del challenges[value]
        if len(challenges) >= MAX_CHALLENGES:
            raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many open challenges")
        value = secrets.token_urlsafe(32)
        challenges[value] = (agent_id, now + CHALLENGE_TTL_S)
        return Challenge(challenge=value, expires_in_s=CHALLENGE_TTL_S)

    @api.post("/agents/{agent_id}/certificate")
    def certificate(agent_id: Name, body: SignedChallenge) -> CertificateResponse:
        def resolve(kid: str) -> OKPKey:
            entry = repo.key_for(kid)
            if entry is None or entry.agent_id != agent_id:
                raise UnknownKey(f"{kid} is not the key of agent {agent_id}")
            if entry.status == "revoked":
                raise RevokedKey(f"agent {agent_id} is revoked")
            return entry.key

        try:
            claims = json.loads(verify(body.jws.encode(), resolve).payload)
        except (ProtocolError, ValueError) as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "signature not accepted") from exc
        value = claims.get("challenge") if isinstance(claims, dict) else None
        pending = challenges.pop(value, None) if isinstance(value, str) else None
        if (
            pending is None
            or pending != (agent_id, pending[1])
            or pending[1] < time.monotonic()
            or claims.get("purpose") != CERTIFICATE_PURPOSE
            or claims.get("agent_id") != agent_id
        ):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "unknown or expired challenge")
        found = issued(agent_id)
        if found is None:
            raise HTTPException(status.HTTP_409_CONFLICT, "no certificate yet (not approved?)")
        return found
