"""Mounting the dashboard and operator API on the collector's FastAPI app."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from server.config import ServerConfig
from server.domain.auth import Authenticator
from server.firmware.tuf_repo import TufRepository
from server.storage import Repository
from server.web import api, docs, firmware, pages, remediation, survey_api
from server.web.deps import WebState, install_handlers
from server.web.display import environment
from server.web.headers import SecurityHeaders
from server.web.i18n import Catalogue


def mount(app: FastAPI, config: ServerConfig, repo: Repository, tuf: TufRepository) -> None:
    """Called by ``server.api.create_app``: the operators' routes (pages, JSON API, firmware and
    rollouts), static files, error handlers."""
    templates = environment("server.web")
    app.state.web = WebState(
        repo, config.web, Authenticator(repo, config.web), Catalogue.load(), templates
    )
    install_handlers(app)
    app.add_middleware(SecurityHeaders)
    if config.http.trusted_proxies:  # added last, so it runs first: before anything reads the peer
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=config.http.trusted_proxies)
    app.include_router(api.router(config.web))
    app.include_router(survey_api.router())
    app.include_router(pages.router())
    app.mount("/static", StaticFiles(packages=[("server.web", "static")]), name="static")
    docs.mount(app)
    firmware.mount(app, config, tuf)
    remediation.mount(app)
