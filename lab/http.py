"""The HTTP side of a camera (port 80, and 443 when HTTPS is on): ONVIF plus the vendor API.

One handler object per camera and scheme, served by aiohttp's low-level server. Faults seeded in
the camera (hang, slow, drop, garbage) are applied here per request, to every HTTP interface of
the camera; the other interfaces get them from ``lab.faults``. Faults seeded for one ONVIF
operation (``onvif_faults``) hit that operation only: hang, slow and drop once it is known,
garbage on its answer, and a SOAP fault instead of the answer (``lab.onvif``).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from importlib import resources
from urllib.parse import parse_qsl

from aiohttp import BodyPartReader, MultipartReader, web
from lxml import etree
from multidict import CIMultiDict

from lab import httpauth, onvif
from lab.camera import AuthScheme, Camera, RequestRecord
from lab.config import Faults, User
from lab.errors import BadImage, ConfigError
from lab.onvif import Login
from lab.persona import ApiRoute, TokenAuth
from lab.render import render

__all__ = ["HttpFrontend"]

log = logging.getLogger(__name__)

SNAPSHOT = resources.files("lab").joinpath("snapshot.jpg").read_bytes()
MAX_BODY = 64 * 1024 * 1024
HUGE_BODY = 6 * 1024 * 1024
NULL_SESSION = "null"  # the session a Reolink client names before it has logged in
ONVIF_PATHS = frozenset({"/onvif/device_service", "/onvif/media_service"})


@dataclass(slots=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    target: str
    auth: AuthScheme = "none"
    user: str | None = None
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)
    operation: str | None = None  # the ONVIF operation answered


class HttpFrontend:
    """``web.Server`` handler for one camera on one scheme."""

    def __init__(self, camera: Camera, *, secure: bool, port: str | None = None) -> None:
        """``port``: the persona's port name, when it is not ``http``/``https`` (``onvif``:
        a vendor that serves ONVIF on a port of its own, and only there)."""
        self.camera = camera
        self.secure = secure
        self.interface = port or ("https" if secure else "http")
        own_onvif_port = "onvif" in camera.ports
        self.serves_onvif = not own_onvif_port or self.interface == "onvif"
        self.serves_api = self.interface != "onvif"

    @property
    def base(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.camera.host}:{self.camera.ports[self.interface]}"

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        faults = self.camera.faults
        if not await _delay(faults):
            return self._drop(request, "drop")
        reply = await self._dispatch(request)
        if reply is None:  # the upload was dropped mid-way
            return self._drop(request, "fail_mid_upgrade")
        seeded = self.camera.onvif_faults.get(reply.operation or "")
        if seeded is not None:  # faults of this ONVIF operation only
            if not await _delay(seeded):
                return self._drop(request, f"drop {reply.operation}")
            faults = replace(faults, garbage=seeded.garbage or faults.garbage)
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
        headers = reply.headers.copy()
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
        if presented.scheme == "basic" and cam.settings["http_digest_only"]:
            return Login("basic", None, None)  # Basic is refused unless set to be accepted
        user = cam.login(presented.username, presented.check)
        return Login(presented.scheme, user, presented.username)

    def _challenge(self) -> CIMultiDict[str]:
        """Digest only, Digest and Basic, or Basic only (old firmware seeded
        ``basic_over_http``), as the camera's ``http_digest_only`` setting and seed say."""
        cam = self.camera
        if cam.settings["http_digest_only"]:
            schemes: tuple[bool, ...] = (False,)
        else:
            schemes = (True,) if cam.spec.basic_over_http else (False, True)
        realm, now = cam.realm, cam.clock()
        return CIMultiDict(
            ("WWW-Authenticate", httpauth.challenge(realm, cam.secret, now, basic=basic))
            for basic in schemes
        )

    async def _dispatch(self, request: web.BaseRequest) -> Reply | None:
        path = request.path
        cam = self.camera
        if not self.secure and cam.spec.http_redirect:
            location = f"https://{cam.host}:{cam.ports['https']}{request.path_qs}"
            return Reply(301, b"", "text/html", path, headers=CIMultiDict(Location=location))
        if path in ONVIF_PATHS and request.method == "POST" and self.serves_onvif:
            body = await request.content.read(MAX_BODY)
            answer = onvif.handle_soap(
                self.camera, body, self.base, lambda: self._http_login(request)
            )
            headers = self._challenge() if answer.challenge else CIMultiDict()
            return Reply(
                answer.status,
                answer.body,
                onvif.CONTENT_TYPE,
                answer.op,
                answer.auth,
                answer.user,
                headers,
                answer.op,
            )
        if path.startswith(onvif.UPLOAD_PATH) and request.method == "POST" and self.serves_onvif:
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
        query = dict(parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True))
        json_method, payload = await self._read(request)
        route = (  # a port of ONVIF only has no vendor API
            cam.persona.find_route(request.method, request.path, query, json_method)
            if self.serves_api
            else None
        )
        target = _logged_target(request, cam.persona.secret_query_keys)
        if route is None:  # 405: the path is the API's, the method is not
            known = self.serves_api and any(r.path == request.path for r in cam.persona.api)
            return self._error(405 if known else 404, request.path, target)
        if route.kind == "token_login":
            return self._token_login(route, request.path, query, payload, target)
        scheme, user, refusal = self._authorize(request, route, target, query)
        if refusal is not None:
            return refusal
        name = user.name if user else None
        if route.kind == "snapshot":
            return Reply(200, SNAPSHOT, route.content_type, target, scheme, name)
        context = cam.context()
        if route.rows:
            context["rows"] = cam.rows(route.rows, route.row)
        status, template = route.status, route.body
        if route.kind in ("set_password", "set_channel", "set_settings"):
            written = _write(
                cam,
                route,
                path=request.path,
                query=query,
                body=payload,
                caller=user,
                context=context,
            )
            if not written:
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
        self, request: web.BaseRequest, route: ApiRoute, target: str, query: dict[str, str]
    ) -> tuple[AuthScheme, User | None, Reply | None]:
        """Who is calling, or the 401/403 (or the vendor's refusal) the camera answers instead."""
        cam = self.camera
        if route.auth == "none" or (route.open_if and getattr(cam.spec, route.open_if)):
            return "none", None, None
        if cam.persona.token_auth is not None:
            scheme, user, refusal = self._query_login(cam.persona.token_auth, query, target)
        else:
            scheme, user, refusal = self._header_login(request, target)
        if user is None:
            return scheme, None, refusal
        if route.auth == "admin" and user.role != "admin":
            return scheme, user, self._error(403, request.path, target, scheme, user.name)
        return scheme, user, None

    def _header_login(
        self, request: web.BaseRequest, target: str
    ) -> tuple[AuthScheme, User | None, Reply | None]:
        """HTTP Basic or Digest; a refusal as the vendor words it (a lock where it says so)."""
        cam = self.camera
        scheme, user, name = self._http_login(request)
        if user is not None:
            return scheme, user, None
        locked = cam.persona.auth_locked
        if locked is not None and name is not None and cam.locked(name):
            body = render(locked.body, cam.lock_context(name)).encode()
            refusal = Reply(locked.status, body, locked.content_type, target, scheme, None)
            refusal.headers.extend(self._challenge() if locked.status == 401 else CIMultiDict())
            return scheme, None, refusal
        refusal = self._error(401, request.path, target, scheme)
        refusal.headers.extend(self._challenge())
        return scheme, None, refusal

    def _query_login(
        self, tokens: TokenAuth, query: dict[str, str], target: str
    ) -> tuple[AuthScheme, User | None, Reply | None]:
        """A session token, or the user name and password themselves, in the query."""
        token = query.get(tokens.token_query, "")
        if token not in ("", NULL_SESSION):
            user = self.camera.token_user(token)
            if user is None:
                return "token", None, self._refusal(tokens, tokens.no_login_body, query, target)
            return "token", user, None
        name = query.get(tokens.user_query)
        if name is None:
            return "none", None, self._refusal(tokens, tokens.no_login_body, query, target)
        return self._password_login(
            tokens, name, query.get(tokens.password_query, ""), query, target
        )

    def _password_login(
        self, tokens: TokenAuth, name: str, password: str, query: dict[str, str], target: str
    ) -> tuple[AuthScheme, User | None, Reply | None]:
        cam = self.camera
        given = password.encode()
        user = cam.login(name, lambda stored: hmac.compare_digest(stored.encode(), given))
        if user is not None:
            return "password", user, None
        body = tokens.locked_body if cam.locked(name) else tokens.failed_body
        return "password", None, self._refusal(tokens, body, query, target)

    def _refusal(
        self, tokens: TokenAuth, template: str, query: dict[str, str], target: str
    ) -> Reply:
        body = render(template, {"cmd": query.get("cmd", "")}).encode()
        return Reply(tokens.status, body, tokens.content_type, target, "none", None)

    def _token_login(
        self, route: ApiRoute, path: str, query: dict[str, str], payload: bytes, target: str
    ) -> Reply:
        """A vendor login route: credentials in the body, a session token in the answer."""
        cam = self.camera
        tokens = cam.persona.token_auth
        if tokens is None:
            raise ConfigError(f"persona {cam.persona.name}: a token_login route needs [token_auth]")
        name = _source_value(cam, route.user_from, path, query, payload)
        password = _source_value(cam, route.password_from, path, query, payload)
        if name is None:
            return self._refusal(tokens, tokens.failed_body, query, target)
        scheme, user, refusal = self._password_login(tokens, name, password or "", query, target)
        if user is None or refusal is not None:
            return refusal or self._refusal(tokens, tokens.failed_body, query, target)
        context = cam.context()
        context.update(token=cam.issue_token(user, tokens.lease_s), lease_s=tokens.lease_s)
        body = render(route.body, context).encode()
        return Reply(route.status, body, route.content_type, target, scheme, user.name)

    def _error(
        self,
        status: int,
        path: str,
        target: str,
        auth: AuthScheme = "none",
        user: str | None = None,
    ) -> Reply:
        """An error answer as the vendor's web server words it."""
        page = self.camera.persona.error_page(status)
        return Reply(status, page.render(status, path), page.content_type, target, auth, user)

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


async def _delay(faults: Faults) -> bool:
    """Hang or slow down as seeded; False when the request is to be dropped."""
    if faults.hang:
        await asyncio.Event().wait()  # accepted, never answered; cancelled at shutdown
    if faults.slow_ms:
        await asyncio.sleep(faults.slow_ms / 1000)
    return not faults.drop


def _logged_target(request: web.BaseRequest, secret: frozenset[str]) -> str:
    """``path?query`` as the request log keeps it: password parameters left out."""
    if not secret or not request.query_string:
        return request.path_qs
    pairs = parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True)
    kept = (f"{k}={v}" for k, v in pairs if not any(fnmatchcase(k, s) for s in secret))
    query = "&".join(kept)
    return f"{request.path}?{query}" if query else request.path


def _set_password(
    cam: Camera,
    route: ApiRoute,
    *,
    path: str,
    query: dict[str, str],
    body: bytes,
    caller: User | None,
) -> str | None:
    """The vendor's password change: the account, the new password and, where the vendor asks
    for it, proof of the current one (the account's old password or the caller's own).
    Returns the account changed, or None when the camera refuses (or no one logged in: a
    set_password route is never open)."""
    if caller is None:
        return None

    def value(source: str) -> str | None:
        return _source_value(cam, source, path, query, body)

    name, new = value(route.user_from), value(route.password_from)
    account = cam.users.get(name or "")
    if account is None or not new:
        return None
    if route.old_from:
        expected = caller.password if route.old_is_callers else account.password
        if value(route.old_from) != expected:
            return None
    return account.name if cam.set_password(account.name, new) else None


def _write(
    cam: Camera,
    route: ApiRoute,
    *,
    path: str,
    query: dict[str, str],
    body: bytes,
    caller: User | None,
    context: dict[str, object],
) -> bool:
    """A write route (password, channel login, settings): False when the camera refuses it."""
    if route.kind == "set_password":
        account = _set_password(cam, route, path=path, query=query, body=body, caller=caller)
        context["account"] = account or ""
        return account is not None
    if route.kind == "set_channel":
        return _set_channel(cam, route, path=path, query=query, body=body)
    carried = (
        (name, _source_value(cam, source, path, query, body)) for name, source in route.settings
    )
    return cam.write_settings([(name, value) for name, value in carried if value is not None])


def _set_channel(
    cam: Camera, route: ApiRoute, *, path: str, query: dict[str, str], body: bytes
) -> bool:
    """A recorder stores a new password for one channel's camera (``lab.persona``: where the
    channel and the password are). False: no such channel, no password, or not a recorder."""
    kind, _, glob = route.channel_from.partition(":")
    if kind == "path":
        segment = path.rsplit("/", 1)[-1]
        number = int(segment) if segment.isdigit() else 0
        password = _source_value(cam, route.password_from, path, query, body)
    else:
        found = next(((k, v) for k, v in query.items() if fnmatchcase(k, glob)), None)
        digits = re.findall(r"\d+", found[0]) if found else []
        number = int(digits[-1]) + 1 if digits else 0
        password = found[1] if found else None
    return password is not None and cam.set_channel(number, password)


def _source_value(
    cam: Camera, source: str, path: str, query: dict[str, str], body: bytes
) -> str | None:
    """The value a route's ``*_from`` names (see ``lab.persona``), or None."""
    kind, _, key = source.partition(":")
    if kind == "query":
        return query.get(key)
    if kind == "xml":
        return _xml_text(body, key)
    if kind == "json":
        return _json_text(body, key)
    if kind == "path":
        index = path.rsplit("/", 1)[-1]
        users = list(cam.users.values())
        number = int(index) if index.isdigit() else 0
        return users[number - 1].name if 0 < number <= len(users) else None
    return None


def _json_text(body: bytes, dotted: str) -> str | None:
    try:
        found: object = json.loads(body)
    except ValueError:
        return None
    if isinstance(found, list):
        found = found[0] if found else None
    for key in dotted.split("."):
        found = found.get(key) if isinstance(found, dict) else None
    return found if isinstance(found, str) else None


def _xml_text(body: bytes, tag: str) -> str | None:
    try:
        root = etree.fromstring(body, onvif.PARSER)
    except etree.XMLSyntaxError:
        return None
    path = "/".join(f"{{*}}{step}" for step in tag.split("/"))  # "Transport/Security/enabled"
    found = root.find(f".//{path}") if root is not None else None
    return found.text if found is not None else None


def _json_method(data: bytes) -> str | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    method = doc.get("method") if isinstance(doc, dict) else None
    return method if isinstance(method, str) else None
