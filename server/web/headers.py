"""Headers on every answer of the collector's HTTP server (pages set their own stricter CSP)."""

from __future__ import annotations

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# answers that are no page (JSON, CSV, PDF, metrics): nothing in them may load or run anything
DEFAULT_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` on every answer, and ``DEFAULT_CSP`` where the route
    set no Content-Security-Policy of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if "content-security-policy" not in headers:
                    headers["Content-Security-Policy"] = DEFAULT_CSP
            await send(message)

        await self.app(scope, receive, send_with_headers)
