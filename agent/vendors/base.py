"""The vendor-neutral adapter interface and the one place where vendor failures are translated.

Errors raised towards the checks::

    CameraError                 the camera did not give a usable answer; ``code`` is stable
     +-- Unreachable            no connection (refused, reset, DNS, no route): retry later
     +-- Timeout                no complete answer within the configured time
     +-- AuthFailed             the camera rejected the credentials
     +-- LockedOut              the camera signals a lock (account or source): stop guessing now
     +-- Unsupported            the adapter or this firmware cannot do the operation
     +-- BadResponse            garbage, wrong content type, oversized or unparsable answer

Public methods live here and wrap the vendor hooks (``_identify`` ...) the way python-tuf's
``fetch`` wraps ``_fetch``: each hook runs under ``asyncio.timeout(config.timeout_s)`` and any
foreign exception (aiohttp, onvif, zeep, lxml, ``OSError``, ``TimeoutError``,
``ValueError`` from a parser) is translated into the tree above at exactly this edge, chained
with ``from``. Hooks may raise a ``CameraError`` themselves when they know better (e.g. a
Hikvision 401 body that says the account is locked becomes ``LockedOut``); those pass through
untouched.

The translation table names foreign classes by module and qualified name, so this module needs
neither aiohttp nor zeep at import time (zeep alone costs ~27 MB RSS on the agent box).
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Self, TypeVar

from agent.vendors.models import (
    Account,
    Capability,
    Credential,
    DeviceIdentity,
    Interface,
    Landing,
    LockoutPolicy,
    RecorderChannel,
    ServiceState,
    Setting,
    SettingValue,
    SettingValues,
    StreamInfo,
    Target,
    TimeInfo,
    check_setting,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")


class CameraError(Exception):
    """The camera did not give a usable answer. ``code`` is stable (finding evidence, metrics)."""

    code = "camera"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Unreachable(CameraError):
    code = "unreachable"


class Timeout(CameraError):
    code = "timeout"


class AuthFailed(CameraError):
    code = "auth_failed"


class LockedOut(CameraError):
    code = "locked_out"


class Unsupported(CameraError):
    code = "unsupported"


class BadResponse(CameraError):
    code = "bad_response"


# SOAP fault codes and reasons meaning "this device lacks the operation" (ONVIF Core's
# ter:ActionNotSupported; firmware that answers a Reason such as "Not Implemented" or
# "Method not supported" instead): Unsupported, not a bad answer.
_LACKS_OPERATION = ("actionnotsupported", "not implemented", "not supported", "notimplemented")


def _soap_fault(exc: BaseException) -> CameraError:
    text = str(exc)
    codes = [str(getattr(exc, "code", "") or "")]
    codes += [str(code) for code in getattr(exc, "subcodes", None) or []]
    everything = " ".join([text, *codes]).lower()
    if "notauthorized" in everything or "not authorized" in everything:
        return AuthFailed(f"SOAP fault: {text[:120]}")
    if any(marker in everything for marker in _LACKS_OPERATION):
        return Unsupported(f"SOAP fault: {text[:120]}")
    return BadResponse(f"SOAP fault: {text[:120]}")


def _soap_transport(exc: BaseException) -> CameraError:
    status = getattr(exc, "status_code", None)
    if status in (401, 403):
        return AuthFailed(f"HTTP {status}")
    return BadResponse(f"SOAP transport error, HTTP {status}")


def describe(exc: BaseException) -> str:
    """A foreign exception in a few words: its class, and its message when it has one."""
    text = str(exc)[:160]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _as(kind: type[CameraError]) -> Callable[[BaseException], CameraError]:
    return lambda exc: kind(describe(exc))


# Foreign exception class ("module.QualName") -> translation. Looked up along the MRO, most
# specific first, so a subclass we do not list falls back to its listed parent.
TRANSLATIONS: Mapping[str, Callable[[BaseException], CameraError]] = {
    # aiohttp (the vendor APIs' and onvif-zeep-async's transport): a timeout is a timeout, not a
    # lost link; a camera that closes the connection without a word is a "retry later".
    "aiohttp.client_exceptions.ServerTimeoutError": _as(Timeout),
    "aiohttp.client_exceptions.ClientConnectionError": _as(Unreachable),
    "aiohttp.client_exceptions.ClientError": _as(BadResponse),
    "onvif.exceptions.ONVIFTimeoutError": _as(Timeout),
    "onvif.exceptions.ONVIFAuthError": _as(AuthFailed),
    "onvif.exceptions.ONVIFError": _as(BadResponse),
    "zeep.exceptions.Fault": _soap_fault,
    "zeep.exceptions.TransportError": _soap_transport,
    "zeep.exceptions.Error": _as(BadResponse),
    "lxml.etree.Error": _as(BadResponse),
    "builtins.TimeoutError": _as(Timeout),
    "builtins.OSError": _as(Unreachable),
    "builtins.UnicodeError": _as(BadResponse),
    "builtins.ValueError": _as(BadResponse),
    "builtins.LookupError": _as(BadResponse),
}


# Libraries that fail on a camera's garbage with a programming-error type instead of their own:
# zeep raises AttributeError from ``parse_xml`` when a SOAP reply is empty or not XML (seen on
# the lab's garbage and locked-account answers). Only an error raised inside these is a camera
# failure; the same type raised in our code stays a bug and propagates.
_PARSING_LIBRARIES = ("zeep.",)


def _raised_inside(exc: BaseException, prefixes: tuple[str, ...]) -> bool:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return isinstance(module, str) and module.startswith(prefixes)


def translate(exc: BaseException) -> CameraError | None:
    """The ``CameraError`` for a foreign exception, or None when it is not a camera failure."""
    if isinstance(exc, CameraError):
        return exc
    if isinstance(exc.__cause__, CameraError):  # ours, wrapped by a library (agent.scope)
        return exc.__cause__
    for cls in type(exc).__mro__:
        convert = TRANSLATIONS.get(f"{cls.__module__}.{cls.__qualname__}")
        if convert is not None:
            return convert(exc)
    if isinstance(exc, AttributeError) and _raised_inside(exc, _PARSING_LIBRARIES):
        return BadResponse(f"unparsable answer: {exc}")
    return None


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """Safety limits of one adapter instance; defaults are safe for a slow camera."""

    timeout_s: float = 10.0  # per public call, hook included
    max_response_bytes: int = 1024 * 1024  # hooks refuse larger bodies with BadResponse
    # ``agent.vendors.http.landing``'s answers by URL, shared by every adapter built with this
    # config: the audit gives each camera a config with an empty dict of its own, so the
    # adapters of one camera's audit ask once, and the next audit asks afresh. None: ask always.
    web_answers: dict[str, Landing] | None = field(default=None, compare=False)


class Adapter(ABC):
    """One camera, one vendor API. Subclasses set ``vendor``/``capabilities`` and the hooks.

    A hook for a capability the adapter does not declare is never called: the public method
    raises ``Unsupported`` first.
    """

    vendor: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]] = frozenset()
    settable: ClassVar[frozenset[Setting]] = frozenset()  # with Capability.SETTINGS

    def __init__(
        self, target: Target, config: AdapterConfig, credential: Credential | None = None
    ) -> None:
        self.target = target
        self.config = config
        self.credential = credential

    @property
    def https(self) -> bool:
        """True once the adapter found plain HTTP closed or redirecting and moved to HTTPS
        (hardened cameras). The certificate is not verified for these reads
        (``agent.vendors.http.TLS_VERIFY_REASON``); ``agent.audit.identify`` records that."""
        return False

    @classmethod  # noqa: B027  # a real default: most adapters load nothing
    async def prepare(cls) -> None:
        """Load, once per process and before any camera's time limit starts, what every
        instance needs (the ONVIF adapter parses its WSDL documents). Idempotent."""

    @classmethod
    def recognises(cls, landing: Landing) -> bool:
        """Whether the camera's answer to ``GET /`` without credentials names this adapter's
        vendor (its ``Server`` header): ``agent.audit.identify`` tries such adapters first. Only an
        order: an adapter not recognised is still tried."""
        return False

    def supports(self, capability: Capability) -> bool:
        return capability in self.capabilities

    async def close(self) -> None:  # noqa: B027  # a real default: most adapters own nothing
        """Release the adapter's connections. Idempotent; adapters holding none keep this."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(
        self,
        capability: Capability,
        operation: str,
        hook: Callable[[], Awaitable[T]],
        *,
        timeout_s: float | None = None,
    ) -> T:
        if capability not in self.capabilities:
            raise Unsupported(f"{self.vendor} adapter does not support {capability.value}")
        try:
            async with asyncio.timeout(timeout_s or self.config.timeout_s):
                return await hook()
        except CameraError:
            raise
        except Exception as exc:
            translated = translate(exc)
            if translated is None:
                raise
            logger.debug(
                "%s %s on %s: %s", self.vendor, operation, self.target.camera_id, translated.code
            )
            raise translated from exc

    async def identify(self) -> DeviceIdentity:
        return await self._call(Capability.IDENTITY, "identify", self._identify)

    async def accounts(self) -> tuple[Account, ...]:
        return await self._call(Capability.ACCOUNTS, "accounts", self._accounts)

    async def services(self) -> ServiceState:
        return await self._call(Capability.SERVICES, "services", self._services)

    async def lockout_policy(self) -> LockoutPolicy:
        return await self._call(Capability.LOCKOUT_POLICY, "lockout_policy", self._lockout_policy)

    async def time(self) -> TimeInfo:
        return await self._call(Capability.TIME, "time", self._time)

    async def streams(self) -> tuple[StreamInfo, ...]:
        return await self._call(Capability.STREAMS, "streams", self._streams)

    async def activated(self) -> bool:
        """AUTH-02: False while the camera waits for its first password (pre-auth read).

        Optional: an adapter whose vendor exposes the activation state overrides this with a
        read under ``_call``; the default says the vendor API cannot tell (``Unsupported``).
        """
        raise Unsupported(f"{self.vendor} adapter cannot read the activation state")

    async def unauthenticated_operations(self) -> dict[str, bool]:
        """AUTH-10: protected operations (name -> answered) probed without any credential.

        Optional, like ``activated``: only an adapter that can probe anonymously overrides it.
        """
        raise Unsupported(f"{self.vendor} adapter cannot probe anonymous access")

    async def try_login(self, interface: Interface, username: str, password: str) -> bool:
        """One authentication attempt: True if accepted, False if rejected.

        ``LockedOut`` and the transport errors propagate: the guess planner must stop on them.
        """

        async def attempt() -> bool:
            try:
                return await self._try_login(interface, username, password)
            except Exception as exc:
                # A refusal may arrive foreign (zeep Fault NotAuthorized): translate it first.
                if isinstance(translate(exc), AuthFailed):
                    return False
                raise

        return await self._call(Capability.LOGIN, f"try_login/{interface.value}", attempt)

    async def upload_firmware(self, image: Path, length: int, *, timeout_s: float) -> None:
        """Send a verified image to the camera, streamed from disk; the camera reboots after.

        ``timeout_s`` bounds the whole upload (images are large). A camera that refuses the
        image raises ``BadResponse`` (or ``AuthFailed``); nothing is retried here.
        """
        await self._call(
            Capability.FIRMWARE_UPGRADE,
            "upload_firmware",
            lambda: self._upload_firmware(image, length),
            timeout_s=timeout_s,
        )

    async def set_password(
        self, username: str, password: str, *, current: str | None = None
    ) -> None:
        """Set ``username``'s password; ``current`` is that account's password now, when known
        (some vendor APIs ask for it). No password is ever logged or put in an error."""
        await self._call(
            Capability.SET_PASSWORD,
            "set_password",
            lambda: self._set_password(username, password, current),
        )

    async def channels(self) -> tuple[RecorderChannel, ...]:
        """A recorder's IP channels; ``Unsupported`` on a device that has none (a camera)."""
        return await self._call(Capability.CHANNELS, "channels", self._channels)

    async def set_channel_login(
        self, channel: RecorderChannel, username: str, password: str
    ) -> None:
        """A recorder stores ``username``/``password`` as the login of ``channel``'s camera (as
        ``channels()`` listed it). A refusal raises ``BadResponse`` or ``AuthFailed``; the
        password is never logged or put in an error."""
        await self._call(
            Capability.CHANNELS,
            "set_channel_login",
            lambda: self._set_channel_login(channel, username, password),
        )

    async def network_settings(self) -> tuple[str, ...]:
        """What a change must leave alone: addresses, prefixes, DHCP, MAC, ports (as text)."""
        return await self._call(Capability.NETWORK, "network_settings", self._network_settings)

    async def read_settings(self) -> SettingValues:
        """The ``settable`` settings as the camera reports them now (a remediation's snapshot
        and its read-back): what ``services`` and ``time`` read, unknowns left out."""

        async def read() -> SettingValues:
            services = await self._services() if self.supports(Capability.SERVICES) else None
            time = await self._time() if self.supports(Capability.TIME) else None
            found = SettingValues.of(services, time).values
            return SettingValues({k: v for k, v in found.items() if k in self.settable})

        return await self._call(Capability.SETTINGS, "read_settings", read)

    def as_stored(self, setting: Setting, value: SettingValue) -> SettingValue:
        """``value`` as this camera stores and reports it back (a time zone as the fixed
        offset it keeps); ValueError when the camera cannot express it. The default: as is."""
        return value

    def check_changes(self, changes: Mapping[Setting, SettingValue]) -> None:
        """ValueError when this camera cannot take ``changes`` together (two settings that
        are one field of its API, asked for different values). The default: it can."""
        return

    async def write_settings(self, changes: Mapping[Setting, SettingValue]) -> None:
        """Ask the camera to apply ``changes``, in order. A refusal raises ``BadResponse``
        (earlier changes may stay applied: the camera failed half-way). An answer of "OK"
        proves nothing: cameras ignore and clamp values, so read back with ``read_settings``.
        A setting not ``settable`` raises ``Unsupported``, a bad value or one the camera
        cannot keep (``as_stored``) ``ValueError``, both before anything is sent."""
        for setting, value in changes.items():
            if setting not in self.settable:
                raise Unsupported(f"{self.vendor} adapter cannot set {setting.value}")
            check_setting(setting, value)
            self.as_stored(setting, value)
        self.check_changes(changes)
        if changes:
            await self._call(
                Capability.SETTINGS, "write_settings", lambda: self._write_settings(dict(changes))
            )

    # Vendor hooks. Each one is reached only through the public method above, and only when the
    # capability is declared; the defaults make an undeclared capability impossible to reach.

    @abstractmethod
    async def _identify(self) -> DeviceIdentity: ...

    async def _accounts(self) -> tuple[Account, ...]:
        raise Unsupported("accounts")

    async def _services(self) -> ServiceState:
        raise Unsupported("services")

    async def _lockout_policy(self) -> LockoutPolicy:
        raise Unsupported("lockout_policy")

    async def _time(self) -> TimeInfo:
        raise Unsupported("time")

    async def _streams(self) -> tuple[StreamInfo, ...]:
        raise Unsupported("streams")

    async def _try_login(self, interface: Interface, username: str, password: str) -> bool:
        raise Unsupported("login")

    async def _upload_firmware(self, image: Path, length: int) -> None:
        raise Unsupported("firmware_upgrade")

    async def _set_password(self, username: str, password: str, current: str | None) -> None:
        raise Unsupported("set_password")

    async def _network_settings(self) -> tuple[str, ...]:
        raise Unsupported("network")

    async def _write_settings(self, changes: dict[Setting, SettingValue]) -> None:
        raise Unsupported("settings")

    async def _channels(self) -> tuple[RecorderChannel, ...]:
        raise Unsupported("channels")

    async def _set_channel_login(
        self, channel: RecorderChannel, username: str, password: str
    ) -> None:
        raise Unsupported("set_channel_login")
