"""One anonymous HTTP(S) request with a capped body, for the web checks (AUTH-07, AUTH-11,
COM-01) and the router's UPnP control (SVC-05).

No credentials are ever sent, redirects are not followed (they are facts to report), and the
certificate is not verified (the TLS scan reports on it). httpx is imported on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.vendors.base import BadResponse, translate

__all__ = ["WebReply", "request"]


@dataclass(frozen=True, slots=True)
class WebReply:
    status: int
    content_type: str  # media type, lower case, no parameters
    authenticate: tuple[str, ...]  # every WWW-Authenticate value
    location: str
    server: str
    body: bytes


async def request(
    url: str,
    *,
    timeout_s: float,
    max_bytes: int,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> WebReply:
    """``BadResponse`` for a body over ``max_bytes``; transport failures as camera errors."""
    import httpx  # noqa: PLC0415  # ~14 MB: only agents that run web checks pay for it

    from agent.vendors.http import read_capped, unverified_tls  # noqa: PLC0415  # httpx too

    try:
        async with (
            httpx.AsyncClient(
                timeout=httpx.Timeout(timeout_s),
                verify=unverified_tls(),
                follow_redirects=False,
                trust_env=False,
                headers={"User-Agent": "camwarden-agent"},
            ) as client,
            client.stream(method, url, content=body, headers=headers) as response,
        ):
            data = await read_capped(response, url, max_bytes)
    except BadResponse:
        raise
    except Exception as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc
    return WebReply(
        status=response.status_code,
        content_type=response.headers.get("Content-Type", "").split(";")[0].strip().lower(),
        authenticate=tuple(response.headers.get_list("WWW-Authenticate")),
        location=response.headers.get("Location", "")[:256],
        server=response.headers.get("Server", "")[:80],
        body=data,
    )
