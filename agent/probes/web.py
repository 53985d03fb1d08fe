"""One anonymous HTTP(S) request with a capped body, for the web checks (AUTH-07, AUTH-11,
COM-01) and the router's UPnP control (SVC-05).

No credentials are ever sent, redirects are not followed (they are facts to report), and the
certificate is not verified (the TLS scan reports on it): ``agent.vendors.http.anonymous_session``,
imported on first use.
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
    """``BadResponse`` for a body over ``max_bytes``; transport failures as camera errors.
    ``timeout_s`` bounds the connect and each read, as the vendor clients' timeout does."""
    from agent.vendors.http import anonymous_session, read_capped  # noqa: PLC0415  # httpx

    try:
        async with (
            anonymous_session(timeout_s) as session,
            session.request(
                method, url, data=body, headers=headers, allow_redirects=False
            ) as response,
        ):
            declared = response.headers.get("Content-Length", "")
            data = await read_capped(response.content.iter_any(), declared, url, max_bytes)
    except BadResponse:
        raise
    except Exception as exc:
        error = translate(exc)
        if error is None:
            raise
        raise error from exc
    return WebReply(
        status=response.status,
        content_type=response.headers.get("Content-Type", "").split(";")[0].strip().lower(),
        authenticate=tuple(response.headers.getall("WWW-Authenticate", ())),
        location=response.headers.get("Location", "")[:256],
        server=response.headers.get("Server", "")[:80],
        body=data,
    )
