"""The state of one simulated camera, shared by all of its interfaces.

Users and roles (RTSP may have accounts of its own), lockout counters (one set per camera, as
real cameras keep them: a failure on ONVIF or RTSP counts against the web interface too) and the
locks they caused (``lock_events``), firmware version and build, online/offline during a reboot,
the clock offset, seen WS-Security nonces, and a log of what clients sent (never their
passwords), also handed to ``sink`` (the fleet's JSON-lines request log) as it happens.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, Literal
from zoneinfo import ZoneInfo

from lab.config import CameraSpec, Faults, User
from lab.firmware import ImageInfo, parse_image
from lab.persona import Persona
from lab.render import Flag, render
from lab.settings import (
    BOOL_SETTINGS,
    LEAVES,
    SettingName,
    SettingValue,
    WriteFaults,
    dahua_zone,
    parse_value,
    posix_zone,
)

__all__ = [
    "AuthScheme",
    "Camera",
    "Channel",
    "Interface",
    "LockEvent",
    "RequestRecord",
    "Sink",
]

log = logging.getLogger(__name__)

AuthScheme = Literal["none", "basic", "digest", "wsse-digest", "wsse-text", "token", "password"]
Clock = Callable[[], float]
Interface = Literal["web", "rtsp"]  # which accounts a login is checked against
NONCE_MEMORY_S = 600.0


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """What a client sent: interface, HTTP method, path or ONVIF operation, auth used, outcome."""

    interface: str
    method: str
    target: str
    auth: AuthScheme
    user: str | None
    status: int


@dataclass(frozen=True, slots=True)
class LockEvent:
    """An account locked by the lockout policy: who, when (camera clock, POSIX s) and until."""

    user: str
    at: float
    until: float


Sink = Callable[[str, float, RequestRecord | LockEvent], None]


@dataclass(frozen=True, slots=True)
class Channel:
    """A camera seated on a recorder's channel, as the recorder lists it: where it is, who it
    says it is, the credential the recorder logs in with (its first account, with the password
    the recorder stores: ``password``, changed by a client through ``Camera.set_channel``), and
    whether the recorder reaches it: the camera is up and takes that stored password."""

    number: int
    camera: Camera
    password: str

    @classmethod
    def seat(cls, number: int, camera: Camera) -> Channel:
        """The channel as installed: the recorder stores the camera's password of the day."""
        return cls(number, camera, next(iter(camera.spec.users)).password)

    @property
    def user(self) -> str:
        return next(iter(self.camera.spec.users)).name

    @property
    def online(self) -> bool:
        cam = self.camera
        account = cam.users.get(self.user)
        return (
            not cam.spec.channel_offline
            and cam.online
            and account is not None
            and account.password == self.password
        )

    def context(self) -> dict[str, object]:
        cam = self.camera
        online = self.online
        return {
            "channel": self.number,
            "channel0": self.number - 1,
            "ip": cam.host,
            "http_port": cam.ports["http"],
            "sdk_port": cam.ports.get("sdk", cam.ports.get("tcp", 0)),
            "model": cam.spec.model,
            "serial": cam.serial,
            "mac": cam.mac,
            "version": cam.version,
            "build": cam.persona.build_string(cam.build),
            "user": self.user,
            "password": self.password,
            "online": Flag(online),
            "state": "Connected" if online else "Unconnect",
            "detect": "connect" if online else "offline",
        }


class Camera:
    """One simulated camera. ``reboot_hook`` and ``sink`` are set by the fleet that owns its
    listeners."""

    def __init__(
        self, spec: CameraSpec, host: str, ports: dict[str, int], clock: Clock = time.time
    ) -> None:
        self.spec = spec
        self.persona: Persona = spec.persona
        self.host = host
        self.ports = ports
        self.clock = clock
        self.users: dict[str, User] = {u.name: u for u in spec.all_users}
        # RTSP's own accounts where seeded; a password change on the web does not reach them
        self.rtsp_users: dict[str, User] | None = (
            {u.name: u for u in spec.rtsp_users} if spec.rtsp_users else None
        )
        self.version = spec.firmware
        self.build = spec.build_date
        self.online = True
        self.faults: Faults = spec.faults
        self.onvif_faults: dict[str, Faults] = dict(spec.onvif_faults)
        self.log: list[RequestRecord] = []
        self.secret = hashlib.sha256(f"camwarden-lab/{spec.id}".encode()).digest()
        self.uuid = str(uuid.UUID(bytes=self.secret[:16], version=4))
        mac_tail = self.secret[16:19].hex()
        self.mac = f"{self.persona.mac_prefix}:{mac_tail[0:2]}:{mac_tail[2:4]}:{mac_tail[4:6]}"
        seed = {
            "model": spec.model,
            "n": spec.ordinal + 1,
            "mac_plain": self.mac.replace(":", "").upper(),
        }
        self.serial = render(self.persona.serial_format, seed)
        self.realm = render(
            self.persona.realm, {"serial": self.serial, "serial_tail": self.serial[-5:]}
        )
        self.reboot_hook: Callable[[float], Awaitable[None]] | None = None
        self._rebooting: asyncio.Task[None] | None = None
        # runs after every accepted setting write: the fleet opens and closes listeners
        self.settings_hook: Callable[[], Coroutine[Any, Any, None]] | None = None
        self.sink: Sink | None = None
        self.reboots = 0
        self.upload_opens_at = 0.0  # time.monotonic() after which ONVIF accepts an upload
        self.lock_events: list[LockEvent] = []
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._nonces: dict[str, float] = {}
        self._tokens: dict[str, tuple[str, float]] = {}  # session token -> (user, expiry)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: tuple[str, dt.date] | None = None
        # what a client may change (``lab.settings``); kept across reboots
        self.settings: dict[SettingName, SettingValue] = {
            "telnet": spec.telnet,
            "ssh": spec.ssh,
            "upnp": spec.upnp,
            "p2p": spec.p2p,
            "ddns": spec.ddns,
            "ntp": not spec.manual_time,
            "ntp_server": "" if spec.manual_time else "pool.ntp.org",
            "discoverable": spec.discoverable,
            "snmp": spec.snmp_public,  # the v1/v2c agent, answering its read community
            "snmp_community": "public",
            "time_zone": "UTC",  # an IANA name, as AXIS OS keeps it
            # RTSP takes Digest only; false: Digest and Basic (a camera seeded "basic")
            "rtsp_digest_only": spec.rtsp_auth != "basic",
            # RTSP asks for credentials; false: the seeded anonymous streams (rtsp_auth "none")
            "rtsp_auth": spec.rtsp_auth != "none",
            # the web takes Digest only; false: Basic too (Basic only if seeded basic_over_http)
            "http_digest_only": not (spec.basic_over_http or spec.http_basic_and_digest),
            # ONVIF asks every caller for credentials; false: the seeded onvif_noauth_ops answer
            "onvif_auth": not spec.onvif_noauth_ops,
        }
        self.write_faults: WriteFaults = spec.write_faults
        self.channels: tuple[Channel, ...] = ()  # a recorder's seated cameras (set by the fleet)

    @property
    def id(self) -> str:
        return self.spec.id

    def now(self) -> dt.datetime:
        """The camera's own clock (UTC plus the seeded skew)."""
        return dt.datetime.fromtimestamp(self.clock() + self.spec.clock_skew_s, dt.UTC)

    # -- authentication ------------------------------------------------------------------

    def locked(self, username: str) -> bool:
        return self.unlock_in(username) > 0

    def unlock_in(self, username: str) -> float:
        """Seconds until ``username`` is unlocked (0: not locked)."""
        return max(self._locked_until.get(username, 0.0) - self.clock(), 0.0)

    def lock_context(self, username: str) -> dict[str, object]:
        """Template context of the persona's ``auth_locked`` answer."""
        return {"user": username, "unlock_s": int(self.unlock_in(username) + 0.999)}

    def accounts(self, interface: Interface) -> dict[str, User]:
        if interface == "rtsp" and self.rtsp_users is not None:
            return self.rtsp_users
        return self.users

    def login(
        self, username: str, check: Callable[[str], bool], interface: Interface = "web"
    ) -> User | None:
        """Check a password through ``check`` against the accounts of ``interface``; count
        failures (of every interface together) and apply the lockout policy."""
        if self.locked(username):
            return None
        user = self.accounts(interface).get(username)
        if user is not None and check(user.password):
            self._failures.pop(username, None)
            return user
        policy = self.spec.lockout
        if policy is not None:
            now = self.clock()
            fails = self._failures.setdefault(username, deque())
            fails.append(now)
            while fails and fails[0] < now - policy.window_s:
                fails.popleft()
            if len(fails) >= policy.threshold:
                self._locked_until[username] = now + policy.lock_s
                event = LockEvent(username, now, now + policy.lock_s)
                self.lock_events.append(event)
                if self.sink is not None:
                    self.sink(self.id, now, event)
                fails.clear()
                log.info(
                    "camera %s: account %s locked for %.0f s", self.id, username, policy.lock_s
                )
        return None

    def fresh_nonce(self, nonce: str) -> bool:
        """True the first time a WS-Security nonce is seen (within the memory window)."""
        now = self.clock()
        if len(self._nonces) > 10_000:
            self._nonces = {n: t for n, t in self._nonces.items() if t > now - NONCE_MEMORY_S}
        if nonce in self._nonces:
            return False
        self._nonces[nonce] = now
        return True

    def issue_token(self, user: User, lease_s: float) -> str:
        """A session token for ``user`` (a vendor API that logs in once, then sends it)."""
        now = self.clock()
        self._tokens = {t: held for t, held in self._tokens.items() if held[1] > now}
        token = hashlib.sha256(self.secret + f"{user.name}/{now}/{len(self._tokens)}".encode())
        self._tokens[token.hexdigest()[:16]] = (user.name, now + lease_s)
        return token.hexdigest()[:16]

    def token_user(self, token: str) -> User | None:
        """The user of a live session token (None: unknown or expired)."""
        name, expiry = self._tokens.get(token, ("", 0.0))
        return self.users.get(name) if expiry > self.clock() else None

    def set_password(self, username: str, password: str, role: str | None = None) -> bool:
        user = self.users.get(username)
        if user is None:
            return False
        self.users[username] = replace(user, password=password, role=role or user.role)  # type: ignore[arg-type]
        return True

    def set_channel(self, number: int, password: str) -> bool:
        """A recorder stores a new password for the camera of channel ``number``; False when no
        camera sits there (the channel goes offline at once if the camera does not take it)."""
        seated = [c for c in self.channels if c.number == number]
        if not seated or not password:
            return False
        self.channels = tuple(
            replace(c, password=password) if c.number == number else c for c in self.channels
        )
        return True

    def write_settings(self, writes: list[tuple[SettingName, str]]) -> bool:
        """Apply ``writes`` (raw vendor values) in order, as the seeded ``write_faults`` let
        it; False when the camera refuses: a value it cannot parse (nothing applied) or the
        ``fail_after`` fault (the writes before it stay applied)."""
        parsed: list[tuple[SettingName, SettingValue]] = []
        for name, raw in writes:
            if raw.strip().lower() in LEAVES.get(name, ()):
                continue
            value = parse_value(name, raw)
            if value is None:
                return False
            parsed.append((name, value))
        if not parsed:
            return False
        for name, value in parsed:
            faults = self.write_faults
            if faults.fail_after is not None:  # counts down to the write that fails
                left = faults.fail_after - 1
                self.write_faults = replace(faults, fail_after=left if left >= 0 else None)
                if left < 0:
                    log.info("camera %s: setting write of %s failed half-way", self.id, name)
                    self._follow_settings()
                    return False
            if name in faults.ignore:
                continue
            self.settings[name] = faults.clamp.get(name, value)
        self._follow_settings()
        return True

    def _follow_settings(self) -> None:
        """The settings hook, started now and run before the next request is read."""
        if self.settings_hook is not None:
            task = asyncio.get_running_loop().create_task(self.settings_hook())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def record(self, entry: RequestRecord) -> None:
        self.log.append(entry)
        if self.sink is not None:
            self.sink(self.id, self.clock(), entry)

    # -- firmware and reboot -------------------------------------------------------------

    def accept_image(self, image: bytes) -> ImageInfo:
        """Validate an uploaded image (``BadImage`` if invalid) and schedule the reboot."""
        info = parse_image(self.persona.name, image)
        upgrade = self.spec.firmware_upgrade
        if not upgrade.comes_back_old:
            self._pending = (info.version, info.build)
        self.schedule_reboot(upgrade.reboot_s)
        return info

    def schedule_reboot(self, seconds: float) -> None:
        """Reboot shortly after the current answer is sent; a camera already going down ignores
        another request (a second upload that reached it in the moment before it stopped
        answering), as one reboot cannot start inside another."""
        if self._rebooting is not None and not self._rebooting.done():
            return
        task = asyncio.get_running_loop().create_task(self._reboot(seconds))
        self._rebooting = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _reboot(self, seconds: float) -> None:
        await asyncio.sleep(0.05)  # let the answer to the upload leave first
        self.online = False
        log.info("camera %s: rebooting for %.1f s", self.id, seconds)
        if self.reboot_hook is not None:
            await self.reboot_hook(seconds)  # calls boot() before anything answers again
        else:
            await asyncio.sleep(seconds)
            self.boot()
        self.online = True

    def boot(self) -> None:
        """The end of a reboot: an uploaded image runs from the first answer on."""
        if self._pending is not None:
            self.version, self.build = self._pending
            self._pending = None
        self.reboots += 1

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- template context ----------------------------------------------------------------

    def context(self) -> dict[str, object]:
        spec = self.spec
        users = list(self.users.values())
        lock = spec.lockout
        settings = self.settings
        now = self.now()

        def holders(*allowed: str) -> str:
            return ",".join(u.name for u in users if u.role in allowed)

        return {
            "model": spec.model,
            "serial": self.serial,
            "mac": self.mac,
            "mac_plain": self.mac.replace(":", "").upper(),
            "version": self.version,
            "build": self.persona.build_string(self.build),
            "device_name": f"{self.persona.vendor} {spec.model}",
            "device_id": self.uuid,
            "device_type": self.persona.device_type,
            "channel_count": self.persona.channels,
            "hostname": spec.id,
            "host": self.host,
            "now": now,
            **{name: Flag(bool(on)) for name, on in settings.items() if name in BOOL_SETTINGS},
            "time_source": "NTP" if settings["ntp"] else "None",
            "time_mode": "NTP" if settings["ntp"] else "manual",
            "ntp_server": settings["ntp_server"],
            "snmp_community": settings["snmp_community"],
            "time_zone": settings["time_zone"],
            "posix_zone": posix_zone(str(settings["time_zone"]), now),
            "dahua_zone": dahua_zone(str(settings["time_zone"]), now),
            "local_now": now.astimezone(ZoneInfo(str(settings["time_zone"]))),
            "local_time": now.astimezone(ZoneInfo(str(settings["time_zone"]))).isoformat(
                timespec="seconds"
            ),
            "rtsp_certificate": "digest" if settings["rtsp_digest_only"] else "digest/basic",
            "web_certificate": "digest" if settings["http_digest_only"] else "digest/basic",
            "rtsp_auth_type": (
                "disable"
                if not settings["rtsp_auth"]
                else "digest"
                if settings["rtsp_digest_only"]
                else "basic"
            ),
            # Axis: one AuthenticationPolicy for web and RTSP; RTSP's anonymous viewers
            "auth_policy": (
                "digest"
                if settings["http_digest_only"] and settings["rtsp_digest_only"]
                else "basic_digest"
            ),
            "rtsp_viewer": "password" if settings["rtsp_auth"] else "anonymous",
            "activated": Flag(not spec.not_activated),
            "lockout": Flag(lock is not None),
            "lock_threshold": lock.threshold if lock else 0,
            "lock_s": int(lock.lock_s) if lock else 0,
            "lock_window_s": max(1, round(lock.window_s)) if lock else 1,
            "admins": holders("admin"),
            "operators": holders("admin", "operator"),
            "viewers": holders("admin", "operator", "user"),
        }

    def rows(self, kind: str, row: str) -> str:
        """``row`` rendered once per user or (a recorder) once per seated channel camera."""
        if kind == "channels":
            return "".join(render(row, channel.context()) for channel in self.channels)
        return self._user_rows(row)

    def _user_rows(self, row: str) -> str:
        return "".join(
            render(
                row,
                {
                    "index": n + 1,
                    "index0": n,
                    "name": u.name,
                    "role": self.persona.roles[u.role],
                    "admin": Flag(u.role == "admin"),
                },
            )
            for n, u in enumerate(self.users.values())
        )
