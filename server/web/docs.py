"""``/api/docs``: Swagger UI over the collector's OpenAPI document, from local assets only.

The assets (``swagger-ui-bundle.js``, ``swagger-ui.css``) come from the fastapi-offline package
and are served under ``/api/docs/assets``; the page starts Swagger UI from ``/static/api-docs.js``
because its Content-Security-Policy allows scripts from this origin only, so the page works on
a closed network and loads nothing from elsewhere (docs/adr/0017-web-throttling.md).
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS: Final = "/api/docs/assets"
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
PAGE: Final = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>camwarden collector API</title>
<link rel="stylesheet" href="{ASSETS}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS}/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
"""


def mount(app: FastAPI) -> None:
    """The page and its assets (the app is created with FastAPI's own docs turned off)."""

    @app.get("/api/docs", include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(
            PAGE, headers={"Content-Security-Policy": CSP, "Cache-Control": "no-cache"}
        )

    app.mount(ASSETS, StaticFiles(packages=[("fastapi_offline", "static")]), name="api-docs")
