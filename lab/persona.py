"""Camera personas: everything vendor-specific about a simulated camera, loaded from data.

A persona file (``lab/personas/<name>.toml``) names the vendor, its models and firmware format,
the ``Server`` banners, default credentials, RTSP paths, documented ports, the firmware image
magic, the CVE rules that apply to its build dates and the vendor HTTP API as a table of
response templates. Adding a camera model or vendor means adding data here, not code.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

from lab.errors import ConfigError

__all__ = [
    "ApiRoute",
    "AuthLocked",
    "CveRule",
    "Persona",
    "Role",
    "load_persona",
    "persona_names",
]

Role = Literal["admin", "operator", "user"]
ROLES: tuple[Role, ...] = ("admin", "operator", "user")
RouteAuth = Literal["none", "user", "admin"]
RouteKind = Literal["template", "snapshot", "firmware_upload", "set_password"]
ROUTE_KINDS: tuple[RouteKind, ...] = get_args(RouteKind)
# Where a set_password route finds a value: "query:<key>", "xml:<tag>" (of the request body)
# or "path" (the segment a request path ending in "/*" matched: a 1-based user id).


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
    rows: str | None  # "users": ``row`` is rendered once per user into ``{rows}``
    row: str
    error_status: int  # firmware uploads: an image that is not valid; set_password: refused
    error_body: str
    # set_password: where the account, the new password and the proof of the current one are
    # (the old password of that account, or the caller's own login password; "" for none)
    user_from: str = ""
    password_from: str = ""
    old_from: str = ""
    old_is_callers: bool = False

    @property
    def secret_query_keys(self) -> frozenset[str]:
        """Query parameters carrying passwords: never written to the request log."""
        sources = (self.password_from, self.old_from)
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
class CveRule:
    """A known vulnerability that applies to this vendor's builds dated before ``build_before``."""

    cve: str
    build_before: dt.date
    kev: bool


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    vendor: str
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
    auth_locked: AuthLocked | None = None

    @property
    def secret_query_keys(self) -> frozenset[str]:
        """Every query parameter a route of this persona takes a password in."""
        return frozenset().union(*(r.secret_query_keys for r in self.api))

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
    raw = tomllib.loads(resources.files("lab.personas").joinpath(f"{name}.toml").read_text("utf-8"))
    try:
        return _persona(name, raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: bad or missing key: {exc}") from exc


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
        auth_locked=_auth_locked(raw["auth_locked"]) if "auth_locked" in raw else None,
    )


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
    if auth not in ("none", "user", "admin") or kind not in ROUTE_KINDS:
        raise ValueError(f"api {raw['request']!r}: auth={auth!r} kind={kind!r}")
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
        rows=raw.get("rows"),
        row=raw.get("row", ""),
        error_status=int(raw.get("error_status", 400)),
        error_body=raw.get("error_body", ""),
        user_from=raw.get("user_from", ""),
        password_from=raw.get("password_from", ""),
        old_from=raw.get("old_from", ""),
        old_is_callers=bool(raw.get("old_is_callers", False)),
    )


def _pair(item: str) -> tuple[str, str]:
    key, _, value = item.partition("=")
    return key, value
