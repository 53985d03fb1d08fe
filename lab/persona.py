"""Camera personas: everything vendor-specific about a simulated camera, loaded from data.

A persona file (``lab/personas/<name>.toml``) names the vendor, its models and firmware format,
the ``Server`` banners, default credentials, RTSP paths, documented ports, the firmware image
magic, the CVE rules that apply to its build dates and the vendor HTTP API as a table of
response templates. Adding a camera model or vendor means adding data here, not code.

A rebrand (an OEM selling a Hikvision or Dahua camera under its own name) is a persona file with
``base = "<persona>"``: it names the brand's own strings (vendor, manufacturer, models,
firmware, banners) and takes everything else from the base persona. Its ``family`` is the base's
vendor: the API it really speaks. A rebrand's own ``[[api]]`` routes come before its base's (a
recorder persona adds its channel endpoints to the camera API of its family).

A recorder (NVR or DVR) is a persona with ``channels`` > 0: its ``rows = "channels"`` routes
render one ``row`` per camera seated on it (``lab.camera.Channel``), and ``device_type`` is
the vendor's word for the device class in its identity answers ("IPCamera", "NVR", "DVR").
``virtual_host`` (a port) forwards the web interface of the camera on channel n to port
``virtual_host + n - 1`` of the recorder (``lab.services.forward``).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from http import HTTPStatus
from importlib import resources
from typing import Any, Literal, get_args

from lab.errors import ConfigError
from lab.render import render
from lab.settings import SettingName, WriteFaults, parse_write_faults, setting_name

__all__ = [
    "ApiRoute",
    "AuthLocked",
    "CveRule",
    "ErrorPage",
    "Persona",
    "Role",
    "RtspServer",
    "TokenAuth",
    "load_persona",
    "persona_names",
]

Role = Literal["admin", "operator", "user"]
ROLES: tuple[Role, ...] = ("admin", "operator", "user")
RouteAuth = Literal["none", "user", "admin"]
RowSet = Literal["users", "channels"]
RouteKind = Literal[
    "template",
    "snapshot",
    "firmware_upload",
    "set_password",
    "token_login",
    "set_settings",
    "set_channel",
]
ROUTE_KINDS: tuple[RouteKind, ...] = get_args(RouteKind)
# Where a set_password or token_login route finds a value: "query:<key>", "xml:<tag>" (of the
# request body; "xml:<a>/<b>/<tag>" the <tag> under <a><b>, not any other), "json:<a.b.c>" (of
# the body's object, or of its first one if it is a list) or "path" (the segment a request path
# ending in "/*" matched: a 1-based user id).
# A set_channel route (a recorder storing a new password for a channel's camera) finds the
# channel in ``channel_from``: "path" (the last path segment, the 1-based channel number) or
# "query:<glob>" (a query key matching the glob, e.g. "RemoteDevice.*.Password", whose last
# number is the 0-based channel and whose value is the password); the password elsewhere in
# ``password_from``. ``query_has`` (a glob) makes a route match only a request carrying such a key.
# A set_settings route names in ``settings`` where each setting it changes is ("query:..." or
# "xml:..."): a request changes those it carries, in the table's order (``lab.settings``).


@dataclass(frozen=True, slots=True)
class ApiRoute:
    """One vendor HTTP endpoint. ``body`` is a ``str.format`` template over the camera context."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    json_method: str | None
    auth: RouteAuth
    open_if: str | None  # a weakness name that makes this route answer without auth
    kind: RouteKind
    content_type: str
    status: int
    body: str
    rows: RowSet | None  # ``row`` is rendered once per user or channel into ``{rows}``
    row: str
    error_status: int  # firmware uploads: an image that is not valid; set_password: refused
    error_body: str
    # set_password: where the account, the new password and the proof of the current one are
    # (the old password of that account, or the caller's own login password; "" for none)
    user_from: str = ""
    password_from: str = ""
    old_from: str = ""
    old_is_callers: bool = False
    settings: tuple[tuple[SettingName, str], ...] = ()  # set_settings: setting -> source
    channel_from: str = ""  # set_channel: where the channel is ("path" or "query:<glob>")
    query_has: str = ""  # a glob: the route matches only a query with a key matching it

    @property
    def secret_query_keys(self) -> frozenset[str]:
        """Query parameters (or globs of them) carrying passwords: never written to the
        request log."""
        sources = (self.password_from, self.old_from, self.channel_from)
        return frozenset(s.removeprefix("query:") for s in sources if s.startswith("query:"))

    def matches(
        self, method: str, path: str, query: dict[str, str], json_method: str | None
    ) -> bool:
        if self.path.endswith("/*"):
            prefix = self.path[:-1]
            segment = path[len(prefix) :]
            same_path = path.startswith(prefix) and segment != "" and "/" not in segment
        else:
            same_path = path == self.path
        return (
            method == self.method
            and same_path
            and all(query.get(k) == v for k, v in self.query)
            and (self.json_method is None or self.json_method == json_method)
            and (not self.query_has or any(fnmatchcase(k, self.query_has) for k in query))
        )


@dataclass(frozen=True, slots=True)
class AuthLocked:
    """How the vendor answers a login to a locked account (templates over ${user}, ${unlock_s}).

    Without it (``Persona.auth_locked is None``) a lock looks exactly like a wrong password.
    """

    status: int
    content_type: str
    body: str
    onvif_subcode: str  # the detail Subcode of the ONVIF NotAuthorized fault ("": none)
    onvif_reason: str


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """Logins carried in the query instead of HTTP auth (Reolink's ``api.cgi``), from the
    ``[token_auth]`` table: a ``token`` a ``token_login`` route issued, or the user name and
    password themselves. A refusal is an answer with ``status`` (a JSON error, not a 401):
    ``no_login_body`` without (valid) credentials, ``failed_body`` for a wrong password,
    ``locked_body`` for a locked account; templates over ${cmd} (the query's ``cmd``)."""

    token_query: str
    user_query: str
    password_query: str
    lease_s: int
    status: int
    content_type: str
    no_login_body: str
    failed_body: str
    locked_body: str


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """An HTTP error answer of the vendor's web server (``[http_errors]``: per status, or
    ``default``); the body is a template over ${status}, ${reason} and ${path}."""

    content_type: str = "text/plain"
    body: str = "${status} ${reason}\n"

    def render(self, status: int, path: str) -> bytes:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = ""
        context = {"status": status, "reason": reason, "path": path}
        return render(self.body, context).encode()


@dataclass(frozen=True, slots=True)
class RtspServer:
    """How the vendor's RTSP server answers, from the ``[rtsp]`` table (recorded answers).

    ``server``: the ``Server`` header ("": the vendor sends none); ``public``: the methods its
    OPTIONS answer lists; ``options_auth``: OPTIONS needs a login too; ``realm``: the digest
    realm (template over ${serial}, ${serial_tail}, ${token32}; "": the HTTP realm).
    """

    server: str = ""
    public: str = "OPTIONS, DESCRIBE, SETUP, TEARDOWN, PLAY, PAUSE, GET_PARAMETER, SET_PARAMETER"
    options_auth: bool = False
    realm: str = ""


@dataclass(frozen=True, slots=True)
class CveRule:
    """A known vulnerability that applies to this vendor's builds dated before ``build_before``."""

    cve: str
    build_before: dt.date
    kev: bool


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    vendor: str
    family: str  # whose firmware and API the camera runs (an OEM's base vendor; else vendor)
    onvif_manufacturer: str
    models: tuple[str, ...]
    firmware: str
    build_date: dt.date
    build_format: str  # strftime format of the vendor's build string, e.g. "build %y%m%d"
    onvif_firmware: str  # template over {version} and {build}
    hardware_id: str
    serial_format: str  # template over {model}, {n}
    mac_prefix: str
    realm: str  # HTTP digest realm template over {serial}, {mac}
    onvif_unauthorized_status: int
    roles: dict[str, str]  # our role -> the vendor's word for it
    default_credentials: tuple[tuple[str, str], ...]
    hidden_admin: tuple[str, str]
    rtsp_paths: tuple[str, ...]  # RTSP mount points (paths only: queries are not matched)
    stream_uris: tuple[str, ...]  # what ONVIF GetStreamUri hands out, per profile (path?query)
    ports: dict[str, int]  # service -> documented port
    banners: dict[str, str]  # interface -> banner / Server header (text only: no "220 ", "login: ")
    image_magic: bytes
    image_extension: str
    cves: tuple[CveRule, ...]
    api: tuple[ApiRoute, ...]
    device_type: str = "IPCamera"  # the vendor's word for the device class (templates)
    channels: int = 0  # a recorder's channel capacity (0: a camera)
    virtual_host: int = 0  # a recorder's port of channel 1's camera web (channel n: + n - 1)
    auth_locked: AuthLocked | None = None
    rtsp: RtspServer = RtspServer()
    http_errors: dict[str, ErrorPage] = field(default_factory=dict)
    token_auth: TokenAuth | None = None
    write_faults: WriteFaults = field(default_factory=WriteFaults)  # LAB.toml may override

    @property
    def recorder(self) -> bool:
        return self.channels > 0

    def error_page(self, status: int) -> ErrorPage:
        return self.http_errors.get(str(status)) or self.http_errors.get("default") or ErrorPage()

    @property
    def secret_query_keys(self) -> frozenset[str]:
        """Every query parameter a route of this persona takes a password or token in."""
        tokens = self.token_auth
        own = {tokens.password_query, tokens.token_query} if tokens is not None else set()
        return frozenset(own).union(*(r.secret_query_keys for r in self.api))

    def build_string(self, build: dt.date) -> str:
        return build.strftime(self.build_format)

    def find_route(
        self, method: str, path: str, query: dict[str, str], json_method: str | None
    ) -> ApiRoute | None:
        return next((r for r in self.api if r.matches(method, path, query, json_method)), None)


def persona_names() -> list[str]:
    files = resources.files("lab.personas").iterdir()
    return sorted(f.name.removesuffix(".toml") for f in files if f.name.endswith(".toml"))


@cache
def load_persona(name: str) -> Persona:
    """Load ``lab/personas/<name>.toml``; raise ``ConfigError`` naming the file and key."""
    if name not in persona_names():
        raise ConfigError(f"unknown persona {name!r}; known: {', '.join(persona_names())}")
    source = f"personas/{name}.toml"
    try:
        return _persona(name, _raw(name, ()))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: bad or missing key: {exc}") from exc


def _raw(name: str, seen: tuple[str, ...]) -> dict[str, Any]:
    """The persona's TOML, laid over its ``base`` persona's (tables merged one level deep)."""
    if name in seen or name not in persona_names():
        raise ValueError(f"base: {' -> '.join((*seen, name))} is not a persona chain")
    text = resources.files("lab.personas").joinpath(f"{name}.toml").read_text("utf-8")
    raw = tomllib.loads(text)
    base_name = raw.pop("base", None)
    if base_name is None:
        raw.setdefault("family", raw["vendor"])
        return raw
    base = _raw(base_name, (*seen, name))
    for key, value in raw.items():
        if key == "api":
            base[key] = [*value, *base.get(key, [])]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return base


def _banners(raw: dict[str, str]) -> dict[str, str]:
    """Banner texts without the protocol framing the services add (``220 ``, ``login: ``)."""
    if raw["ftp"].startswith("220"):
        raise ValueError("banners.ftp: the FTP service sends the 220 code itself")
    if raw["telnet"].rstrip().endswith("login:"):
        raise ValueError("banners.telnet: the telnet service sends the login: prompt itself")
    return dict(raw)


def _persona(name: str, raw: dict[str, Any]) -> Persona:
    creds = tuple((c["name"], c["password"]) for c in raw["default_credentials"])
    hidden = raw["hidden_admin"]
    return Persona(
        name=name,
        vendor=raw["vendor"],
        family=raw["family"],
        onvif_manufacturer=raw.get("onvif_manufacturer", raw["vendor"]),
        models=tuple(raw["models"]),
        firmware=raw["firmware"],
        build_date=raw["build_date"],
        build_format=raw["build_format"],
        onvif_firmware=raw["onvif_firmware"],
        hardware_id=raw["hardware_id"],
        serial_format=raw["serial_format"],
        mac_prefix=raw["mac_prefix"],
        realm=raw["realm"],
        onvif_unauthorized_status=int(raw["onvif_unauthorized_status"]),
        roles={role: raw["roles"][role] for role in ROLES},
        default_credentials=creds,
        hidden_admin=(hidden["name"], hidden["password"]),
        rtsp_paths=tuple(raw["rtsp_paths"]),
        stream_uris=tuple(raw.get("stream_uris", raw["rtsp_paths"])),
        ports={k: int(v) for k, v in raw["ports"].items()},
        banners=_banners(raw["banners"]),
        image_magic=raw["firmware_image"]["magic"].encode("latin-1"),
        image_extension=raw["firmware_image"]["extension"],
        cves=tuple(
            CveRule(c["id"], c["build_before"], bool(c.get("kev", False)))
            for c in raw.get("cve", [])
        ),
        api=tuple(_route(r) for r in raw.get("api", [])),
        device_type=raw.get("device_type", "IPCamera"),
        channels=int(raw.get("channels", 0)),
        virtual_host=int(raw.get("virtual_host", 0)),
        auth_locked=_auth_locked(raw["auth_locked"]) if "auth_locked" in raw else None,
        rtsp=RtspServer(**raw.get("rtsp", {})),
        http_errors={k: ErrorPage(**v) for k, v in raw.get("http_errors", {}).items()},
        token_auth=_token_auth(raw, tuple(_route(r) for r in raw.get("api", []))),
        write_faults=parse_write_faults(raw.get("write_faults", {})),
    )


def _token_auth(raw: dict[str, Any], api: tuple[ApiRoute, ...]) -> TokenAuth | None:
    if "token_auth" in raw:
        return TokenAuth(**raw["token_auth"])
    if any(route.kind == "token_login" for route in api):
        raise ValueError("a token_login route needs a [token_auth] table")
    return None


def _auth_locked(raw: dict[str, Any]) -> AuthLocked:
    return AuthLocked(
        status=int(raw["status"]),
        content_type=raw.get("content_type", "text/plain"),
        body=raw["body"],
        onvif_subcode=raw.get("onvif_subcode", ""),
        onvif_reason=raw.get("onvif_reason", "Sender not Authorized"),
    )


def _route(raw: dict[str, Any]) -> ApiRoute:
    method, _, target = raw["request"].partition(" ")
    path, _, qs = target.partition("?")
    query = tuple(_pair(item) for item in qs.split("&") if item)
    auth = raw.get("auth", "user")
    kind = raw.get("kind", "template")
    rows = raw.get("rows")
    if auth not in ("none", "user", "admin") or kind not in ROUTE_KINDS:
        raise ValueError(f"api {raw['request']!r}: auth={auth!r} kind={kind!r}")
    if (kind == "set_settings") != bool(raw.get("settings")):
        raise ValueError(f"api {raw['request']!r}: settings go with kind = 'set_settings'")
    if (kind == "set_channel") != bool(raw.get("channel_from")):
        raise ValueError(f"api {raw['request']!r}: channel_from goes with kind = 'set_channel'")
    if rows not in (None, *get_args(RowSet)):
        raise ValueError(f"api {raw['request']!r}: rows={rows!r}")
    return ApiRoute(
        method=method,
        path=path,
        query=query,
        json_method=raw.get("json_method"),
        auth=auth,
        open_if=raw.get("open_if"),
        kind=kind,
        content_type=raw.get("content_type", "text/plain"),
        status=int(raw.get("status", 200)),
        body=raw.get("body", ""),
        rows=rows,
        row=raw.get("row", ""),
        error_status=int(raw.get("error_status", 400)),
        error_body=raw.get("error_body", ""),
        user_from=raw.get("user_from", ""),
        password_from=raw.get("password_from", ""),
        old_from=raw.get("old_from", ""),
        old_is_callers=bool(raw.get("old_is_callers", False)),
        settings=tuple((setting_name(k), v) for k, v in raw.get("settings", {}).items()),
        channel_from=raw.get("channel_from", ""),
        query_has=raw.get("query_has", ""),
    )


def _pair(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key, value
