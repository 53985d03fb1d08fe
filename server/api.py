"""The collector's HTTP API: enrollment, offline report verification, metrics and health.

``create_app`` is the one factory; the dashboard and operator API (``server.web``) are mounted
on it, and later issues (rollouts) add routers to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Request, Response, status
from joserfc.jwk import OKPKey
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from protocol import MalformedMessage, import_public_jwk, public_jwk
from server.config import ServerConfig
from server.firmware import api as firmware
from server.firmware import lifetimes
from server.firmware.tuf_repo import TufRepository
from server.metrics import Metrics
from server.storage import AgentConflict, Repository, TokenRejected
from server.verify import InvalidReport, verify_file
from server.web import app as web

NamePattern = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
Name = Annotated[str, Field(pattern=NamePattern)]


class EnrollRequest(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=256)]
    agent_id: Name
    site: Name
    jwk: dict[str, Any]
    hostname: Annotated[str, Field(max_length=255)] | None = None


class EnrollResponse(BaseModel):
    """Extended later with the agent's MQTT certificate.

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


def create_app(
    config: ServerConfig,
    repo: Repository,
    *,
    command_key: OKPKey,
    metrics: Metrics | None = None,
    healthy: Callable[[], bool] = lambda: True,
) -> FastAPI:
    app = FastAPI(
        title="camwarden collector",
        version="1",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.config = config
    app.state.repo = repo
    app.state.metrics = metrics or Metrics()
    api = APIRouter(prefix="/api/v1")
    collector_jwk = public_jwk(command_key)
    tuf = TufRepository.under(config.state_dir, lifetimes(config.firmware))

    @api.post("/enroll", status_code=status.HTTP_201_CREATED, response_model_exclude_none=True)
    def enroll(body: EnrollRequest) -> EnrollResponse:
        key = _public_key(body.jwk)
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
        return EnrollResponse(
            agent_id=record.agent_id,
            site=record.site,
            status=record.status,
            collector_jwk=collector_jwk,
            tuf_root=json.loads(root) if (root := tuf.trusted_root()) else None,
        )

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
    web.mount(app, config, repo)
    firmware.mount(app, config, tuf)

    @app.get("/metrics", include_in_schema=False)
    def metrics_page(request: Request) -> Response:
        registry = request.app.state.metrics.registry
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Response:
        ok = healthy()
        return Response(
            '{"status":"ok"}' if ok else '{"status":"mqtt disconnected"}',
            status_code=200 if ok else 503,
            media_type="application/json",
        )

    return app
