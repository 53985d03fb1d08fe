"""The HTTP side of a camera (port 80, and 443 when HTTPS is on): ONVIF plus the vendor API.

One handler object per camera and scheme, served by aiohttp's low-level server. Faults seeded in
the camera (hang, slow, drop, garbage) are applied here per request, to every HTTP interface of
the camera; the other interfaces get them from ``lab.faults``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, web
from lxml import etree
from multidict import CIMultiDict

from lab import httpauth, onvif
from lab.camera import AuthScheme, Camera, RequestRecord
from lab.config import User
from lab.errors import BadImage
from lab.onvif import Login
from lab.persona import ApiRoute
from lab.render import render

__all__ = ["HttpFrontend"]

log = logging.getLogger(__name__)

SNAPSHOT = resources.files("lab").joinpath("snapshot.jpg").read_bytes()
MAX_BODY = 64 * 1024 * 1024
HUGE_BODY = 6 * 1024 * 1024
ONVIF_PATHS = frozenset({"/onvif/device_service", "/onvif/media_service"})


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    target: str
    auth: AuthScheme = "none"
    user: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class HttpFrontend:
    """``web.Server`` handler for one camera on one scheme."""

    def __init__(self, camera: Camera, *, secure: bool) -> None:
        self.camera = camera
        self.secure = secure
        self.interface = "https" if secure else "http"

    @property
    def base(self) -> str:
        port = self.camera.ports["https" if self.secure else "http"]
        return f"{self.interface}://{self.camera.host}:{port}"

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        faults = self.camera.faults
        if faults.hang:
            await asyncio.Event().wait()  # accepted, never answered; cancelled at shutdown
        if faults.slow_ms:
            await asyncio.sleep(faults.slow_ms / 1000)
        if faults.drop:
            return self._drop(request, "drop")
        reply = await self._dispatch(request)
        await self.camera.sync_credentials()  # a changed password reaches RTSP first
        if reply is None:  # the upload was dropped mid-way
            return self._drop(request, "fail_mid_upgrade")
        self.camera.record(
            RequestRecord(
                self.interface, request.method, reply.target, reply.auth, reply.user, reply.status
            )
        )
        body, content_type = reply.body, reply.content_type
        if faults.garbage == "truncated":
            body = body[: len(body) // 2]
        elif faults.garbage == "content_type":
            content_type = "text/html"
        elif faults.garbage == "huge":
            body = body + b" " * HUGE_BODY
        headers = CIMultiDict(reply.headers)
        headers["Server"] = self.camera.persona.banners["http"]
        headers["Content-Type"] = content_type
        return web.Response(status=reply.status, body=body, headers=headers)

    def _drop(self, request: web.BaseRequest, why: str) -> web.StreamResponse:
        """Close the connection without an answer (what a crashing camera does)."""
        self.camera.record(
            RequestRecord(self.interface, request.method, request.path, "none", None, 0)
        )
        if request.transport is not None:
            request.transport.abort()
        log.debug(
            "camera %s: dropped %s %s (%s)", self.camera.id, request.method, request.path, why
        )
        return web.Response(status=500)

    def _http_login(self, request: web.BaseRequest) -> Login:
        header = request.headers.get("Authorization", "")
        cam = self.camera
        presented = httpauth.parse(header, request.method, cam.realm, cam.secret, cam.clock())
        if presented is None:
            return Login("none", None, None)
        if presented.scheme == "basic" and not cam.spec.basic_over_http:
            return Login("basic", None, None)  # Basic is refused unless seeded to be accepted
        user = cam.login(presented.username, presented.check)
        return Login(presented.scheme, user, presented.username)

    def _challenge(self) -> dict[str, str]:
        cam = self.camera
        value = httpauth.challenge(
            cam.realm, cam.secret, cam.clock(), basic=cam.spec.basic_over_http
        )
        return {"WWW-Authenticate": value}

    async def _dispatch(self, request: web.BaseRequest) -> Reply | None:
        path = request.path
        cam = self.camera
        if not self.secure and cam.spec.http_redirect:
            location = f"https://{cam.host}:{cam.ports['https']}{request.path_qs}"
            return Reply(301, b"", "text/html", path, headers={"Location": location})
        if path in ONVIF_PATHS and request.method == "POST":
            body = await request.content.read(MAX_BODY)
            answer = onvif.handle_soap(
                self.camera, body, self.base, lambda: self._http_login(request)
            )
            headers = self._challenge() if answer.challenge else {}
            return Reply(
                answer.status,
                answer.body,
                onvif.CONTENT_TYPE,
                answer.op,
                answer.auth,
                answer.user,
                headers,
            )
        if path.startswith(onvif.UPLOAD_PATH) and request.method == "POST":
            if path.removeprefix(onvif.UPLOAD_PATH) != self.camera.secret.hex()[:16]:
                return Reply(404, b"", "text/plain", path)
            image = await request.content.read(MAX_BODY)
            if self._fails_mid_upgrade():
                return None
            return Reply(
                onvif.handle_upload(self.camera, image), b"", "text/plain", "FirmwareUpload"
            )
        return await self._vendor(request)

    async def _vendor(self, request: web.BaseRequest) -> Reply | None:
        cam = self.camera
        query = dict(parse_qsl(request.query_string, keep_blank_values=True))
        json_method, payload = await self._read(request)
        route = cam.persona.find_route(request.method, request.path, query, json_method)
        secret = route.secret_query_keys if route else cam.persona.secret_query_keys
        target = _logged_target(request, secret)
        if route is None:
            return Reply(404, b"404 Not Found\n", "text/plain", target)
        scheme, user, refusal = self._authorize(request, route, target)
        if refusal is not None:
            return refusal
        name = user.name if user else None
        if route.kind == "snapshot":
            return Reply(200, SNAPSHOT, route.content_type, target, scheme, name)
        context = cam.context()
        if route.rows:
            context["rows"] = cam.user_rows(route.row)
        status, template = route.status, route.body
        if route.kind == "set_password":
            assert user is not None  # set_password routes are never open
            account = _set_password(
                cam, route, path=request.path, query=query, body=payload, caller=user
            )
            context["account"] = account or ""
            if account is None:
                status, template = route.error_status, route.error_body
        elif route.kind == "firmware_upload":
            if self._fails_mid_upgrade():
                return None
            try:
                context["new_version"] = cam.accept_image(payload).version
            except BadImage:
                status, template = route.error_status, route.error_body
        body = render(template, context).encode()
        return Reply(status, body, route.content_type, target, scheme, name)

    def _authorize(
        self, request: web.BaseRequest, route: ApiRoute, target: str
    ) -> tuple[AuthScheme, User | None, Reply | None]:
        """Who is calling, or the 401/403 the camera answers instead."""
        cam = self.camera
        if route.auth == "none" or (route.open_if and getattr(cam.spec, route.open_if)):
            return "none", None, None
        scheme, user, name = self._http_login(request)
        if user is None:
            locked = cam.persona.auth_locked
            if locked is not None and name is not None and cam.locked(name):
                body = render(locked.body, cam.lock_context(name)).encode()
                refusal = Reply(locked.status, body, locked.content_type, target, scheme, None)
                refusal.headers.update(self._challenge() if locked.status == 401 else {})
                return scheme, None, refusal
            body = b"401 Unauthorized\n"
            return (
                scheme,
                None,
                Reply(401, body, "text/plain", target, scheme, None, self._challenge()),
            )
        if route.auth == "admin" and user.role != "admin":
            return (
                scheme,
                user,
                Reply(403, b"403 Forbidden\n", "text/plain", target, scheme, user.name),
            )
        return scheme, user, None

    async def _read(self, request: web.BaseRequest) -> tuple[str | None, bytes]:
        """The JSON ``method`` (VAPIX style) and the payload (raw body or multipart file part)."""
        if not request.content_type.startswith("multipart/"):
            body = await request.content.read(MAX_BODY)
            return (
                _json_method(body) if request.content_type == "application/json" else None
            ), body
        method, payload = None, b""
        reader = MultipartReader(request.headers, request.content)
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            data = await part.read(decode=False)
            if part.headers.get("Content-Type", "").startswith("application/json"):
                method = _json_method(data)
            else:
                payload = bytes(data)
        return method, payload

    def _fails_mid_upgrade(self) -> bool:
        """``fail_mid_upgrade``: drop the upload and reboot into the old version."""
        upgrade = self.camera.spec.firmware_upgrade
        if upgrade.fail_mid_upgrade:
            self.camera.schedule_reboot(upgrade.reboot_s)
        return upgrade.fail_mid_upgrade


def _logged_target(request: web.BaseRequest, secret: frozenset[str]) -> str:
    """``path?query`` as the request log keeps it: password parameters left out."""
    if not secret or not request.query_string:
        return request.path_qs
    pairs = parse_qsl(request.query_string, keep_blank_values=True)
    query = "&".join(f"{k}={v}" for k, v in pairs if k not in secret)
    return f"{request.path}?{query}" if query else request.path


def _set_password(
    cam: Camera,
    route: ApiRoute,
    *,
    path: str,
    query: dict[str, str],
    body: bytes,
    caller: User,
) -> str | None:
    """The vendor's password change: the account, the new password and, where the vendor asks
    for it, proof of the current one (the account's old password or the caller's own).
    Returns the account changed, or None when the camera refuses."""

    def value(source: str) -> str | None:
        kind, _, key = source.partition(":")
        if kind == "query":
            return query.get(key)
        if kind == "xml":
            return _xml_text(body, key)
        if kind == "path":
            index = path.rsplit("/", 1)[-1]
            users = list(cam.users.values())
            number = int(index) if index.isdigit() else 0
            return users[number - 1].name if 0 < number <= len(users) else None
        return None

    name, new = value(route.user_from), value(route.password_from)
    account = cam.users.get(name or "")
    if account is None or not new:
        return None
    if route.old_from:
        expected = caller.password if route.old_is_callers else account.password
        if value(route.old_from) != expected:
            return None
    return account.name if cam.set_password(account.name, new) else None


def _xml_text(body: bytes, tag: str) -> str | None:
    try:
        root = etree.fromstring(body, onvif.PARSER)
    except etree.XMLSyntaxError:
        return None
    found = root.find(f".//{{*}}{tag}") if root is not None else None
    return found.text if found is not None else None


def _json_method(data: bytes) -> str | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    method = doc.get("method") if isinstance(doc, dict) else None
    return method if isinstance(method, str) else None
