"""One audit of the site: inventory, identification, the checks, findings per camera.

::

    inventory   static cameras of the config + WS-Discovery / SSDP / sweep when switched on,
                only inside [network] camera_subnets (agent.inventory refuses anything else)
    per camera  (at most [audit] concurrency at once, each within camera_timeout_s)
                identify (agent.audit.identify, with the vault's credential)
                -> CheckContext (credential, advisory feed, site key, limits)
                -> the checks of ``build_checks`` one after another (one camera is never hit
                   in parallel); TLS scans hold one of tls_concurrency slots
    the site    the site checks (``agent.checks.SITE_CHECKS``: COM-03 keys shared between
                cameras of this audit, INV-04 from the inventory diff against the last
                inventory, <state_dir>/inventory.json, written atomically here), host findings
                about the agent's own box

A camera that hangs, resets or answers garbage never stops the audit: identification errors
become inconclusive findings naming the error, each check has its time limit, and a camera
whose whole audit overruns ``camera_timeout_s`` gets an inconclusive ``check.timeout`` for
every check that had not finished. Heavy libraries (httpx, zeep, onvif, zxcvbn) load only when
a camera is audited, inside ``run``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import msgspec

from agent.audit.reachability import reachable
from agent.audit.results import AuditResult
from agent.checks.base import (
    Check,
    CheckContext,
    CheckLimits,
    Clock,
    SystemClock,
    camera_error_finding,
    internal_error_finding,
    make_finding,
    run_check,
    timeout_finding,
)
from agent.checks.host import HostSettings, host_findings
from agent.checks.netprobe import NetCheck, NetSettings
from agent.checks.site import Site, SiteInventory
from agent.checks.tls import TlsCheck
from agent.config import AgentConfig, CameraConfig
from agent.errors import StorageError
from agent.inventory.diff import diff
from agent.inventory.discover import Host, Scope, merge
from agent.probes.vendordiscovery import normal_mac
from agent.scope import OutOfScope, admit, confined, site_scope
from agent.state import atomic_write
from agent.vendors.base import (
    Adapter,
    AdapterConfig,
    AuthFailed,
    CameraError,
    Timeout,
    Unreachable,
)
from agent.vendors.models import Credential, DeviceIdentity, Interface, Target
from protocol.messages import AuditState, Camera, EvidenceValue, Finding, Identity
from protocol.text import clean_text

if TYPE_CHECKING:
    from agent.advisories.feed import AdvisoryFeed
    from agent.credentials.passwords import SiteKey

__all__ = [
    "AuditResult",
    "Auditor",
    "Progress",
    "net_settings",
    "targets",
    "vault_secrets",
]

logger = logging.getLogger(__name__)

INVENTORY_FILE: Final = "inventory.json"
DISCOVERED_PREFIX: Final = "found-"
Progress = Callable[[Camera, int, int], None]  # (camera done, how many done, how many in all)


def net_settings(config: AgentConfig) -> NetSettings:
    net = config.network
    return NetSettings(
        timeout_s=net.probe_timeout_s,
        window_s=net.udp_window_s,
        port_offset=net.port_offset,
        scan_concurrency=net.scan_concurrency,
        site_allowed_ports=frozenset(net.allowed_ports),
        snmp_communities=net.snmp_communities,
        routers=net.routers,
        camera_subnets=net.subnets,
    )


def targets(config: AgentConfig) -> list[Target]:
    """The configured cameras as audit targets (ports shifted by ``port_offset`` unless set)."""
    return [config.target(camera) for camera in config.cameras]


def vault_secrets(config: AgentConfig) -> tuple[dict[str, Credential], SiteKey | None]:
    """The vault's credentials and site key. Without a vault key this is an error only when a
    camera names a credential (``VaultError``); a missing entry is logged and left out."""
    from agent.trust.vault import VaultError, open_vault  # noqa: PLC0415  # cryptography

    refs = {c.credentials_ref for c in config.cameras if c.credentials_ref}
    vault = open_vault(config.state_path, config.vault_key_path)
    if vault is None:
        if refs:
            raise VaultError("cameras name credentials (credentials_ref) but no vault key is set")
        return {}, None
    credentials = vault.credentials()
    for ref in sorted(refs - credentials.keys()):
        logger.warning("no vault entry %r: cameras naming it are audited without credential", ref)
    return credentials, vault.site_key()


def _identity(found: DeviceIdentity | None) -> Identity:
    """The wire identity of what the camera said, each field cleaned and cut to the wire's
    limit here, where camera text enters a report: one camera's odd answer (a NUL, a model of
    ten thousand characters) never invalidates the audit's other cameras."""
    if found is None:
        return Identity()
    return Identity(
        vendor=_text(found.vendor),
        model=_text(found.model),
        firmware=_text(found.firmware),
        build_date=found.build_date.isoformat() if found.build_date else None,
        serial=_text(found.serial),
        hardware_id=_text(found.hardware_id),
        mac=_text(found.mac),
        source=_text(found.source),
    )


def _text(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def _str(value: EvidenceValue) -> str | None:
    return None if value is None else str(value)


# a recorder's word for a channel's protocol -> the vendor hint of the camera on it
_PROTOCOL_VENDORS: Final = {"hikvision": "Hikvision", "dahua": "Dahua", "private": "Dahua"}


def _load_feed(clock: Clock, config: AgentConfig) -> AdvisoryFeed | None:
    from agent.advisories.feed import FeedError, configured_feed  # noqa: PLC0415

    try:
        return configured_feed(config.state_path, config.advisories.feed_keys_file, now=clock.now())
    except FeedError as exc:
        logger.warning("advisory feed rejected (%s): FW-01 findings are inconclusive", exc.reason)
        return None


@dataclass(slots=True)
class _Outcome:
    camera: Camera
    seen: bool  # answered this time (for the inventory)


# the audit state of a camera whose identification failed, by the adapter's error code
_STOPPED: Final[dict[str, AuditState]] = {
    "unreachable": "unreachable",
    "auth_failed": "login_failed",
    "locked_out": "login_failed",
    "unsupported": "unsupported",
    "out_of_scope": "not_audited",
}


# framework findings of a check that applies but could not judge the camera
_UNJUDGED: Final = frozenset({"check.camera_error", "check.timeout", "check.internal_error"})
_REFUSED: Final = frozenset({"auth_failed", "locked_out"})  # CameraError codes of a refused login
_LISTED: Final = 6  # checks named in a reason, then "and N more"


def _listed(names: Sequence[str]) -> str:
    more = len(names) - _LISTED
    return ", ".join(names[:_LISTED]) + (f" and {more} more" if more > 0 else "")


@dataclass(slots=True)
class _Progress:
    """What one camera's audit learnt so far; kept when its time limit cuts it short."""

    findings: list[Finding]
    identity: DeviceIdentity | None = None
    seen: bool = True
    # how far the audit got (protocol AuditState) and why it stopped short
    state: AuditState = "audited"
    reason: str | None = None

    def stop(self, state: AuditState, reason: str) -> None:
        self.state, self.reason = state, reason

    def settle(self) -> None:
        """After every check ran: "audited" only when each check that applies judged the
        camera. A check left without a result by the camera's refusal of our login makes the
        camera login_failed; by any other failure (transport, time limit, bug) partial."""
        if self.state != "audited":
            return
        unjudged = [f for f in self.findings if f.code in _UNJUDGED]
        refused = sorted({f.check for f in unjudged if f.evidence.get("error") in _REFUSED})
        if refused:
            self.stop("login_failed", f"the camera refused the agent's login in {_listed(refused)}")
        elif unjudged:
            checks = sorted({f.check for f in unjudged})
            self.stop("partial", f"no result from {_listed(checks)}")


class Auditor:
    """Audits the site described by ``config``; build once, ``run`` as often as scheduled."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        credentials: Mapping[str, Credential],
        site_key: SiteKey | None,
        clock: Clock | None = None,
        guessing: bool | None = None,
        persist_inventory: bool = True,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.persist_inventory = persist_inventory
        audit = config.audit
        self._credentials = dict(credentials)
        self._site_key = site_key
        self._settings = net_settings(config)
        self._scope = Scope(self._settings.camera_subnets, port_offset=config.network.port_offset)
        self._targets = targets(config)
        self._seated: dict[str, str] = {}  # address -> camera id of a camera on a recorder
        # camera id -> (its own address, how it was reached) of a camera audited through its
        # recorder's virtual host
        self._relayed: dict[str, tuple[str, str]] = {}
        self._adapter_config = AdapterConfig(
            timeout_s=audit.request_timeout_s, max_response_bytes=audit.max_response_bytes
        )
        self._limits = CheckLimits(
            check_timeout_s=audit.check_timeout_s,
            min_password_score=audit.min_password_score,
            guess_timeout_s=audit.guess_timeout_s,
        )
        self._guessing = audit.guess_default_credentials if guessing is None else guessing
        # a camera's own switch wins over the site's, unless the caller forbids guessing
        self._guessing_per_camera = {
            c.id: c.guess_default_credentials
            for c in config.cameras
            if c.guess_default_credentials is not None and guessing is not False
        }

    def checks(self) -> tuple[Check, ...]:
        from agent.checks import build_checks  # noqa: PLC0415
        from agent.credentials.planner import GuessLimits  # noqa: PLC0415

        audit = self.config.audit
        approved: dict[str, tuple[str, ...]] = {}
        for camera in self.config.cameras:
            listed = camera.approved_accounts
            if listed is None and audit.approved_accounts:
                listed = audit.approved_accounts
            if listed is not None:
                approved[camera.id] = listed
        assumed = audit.assumed_lockout
        return build_checks(
            self._settings,
            approved_accounts=approved,
            inventory=self._targets,
            guessing=self._guessing,
            guessing_per_camera=self._guessing_per_camera,
            guess_budget=audit.guess_budget,
            guess_limits=GuessLimits(
                threshold=assumed.threshold,
                window_s=assumed.window_s,
                lock_s=assumed.lock_s,
                margin_s=assumed.margin_s,
            ),
        )

    # the whole run

    async def run(
        self, camera_ids: Collection[str] | None = None, progress: Progress | None = None
    ) -> AuditResult:
        """Audit every configured camera (or only ``camera_ids``) plus discovered hosts; no
        packet leaves for an address outside the scope (``agent.scope``)."""
        configured = [camera.address for camera in self.config.cameras]
        with confined(await site_scope(self.config.network.subnets, configured)):
            return await self._run(camera_ids, progress)

    async def recheck(self, camera_id: str, controls: Collection[str]) -> Camera:
        """Run again, on one configured camera, the checks that answer any of ``controls``
        (after a remediation): the camera with those checks' findings only."""
        target = next(t for t in self._targets if t.camera_id == camera_id)
        wanted = set(controls)
        checks = [c for c in self.checks() if wanted.intersection(c.controls)]
        feed = _load_feed(self.clock, self.config)
        tls_gate = asyncio.Semaphore(self.config.audit.tls_concurrency)
        configured = [camera.address for camera in self.config.cameras]
        with confined(await site_scope(self.config.network.subnets, configured)):
            from agent.audit.identify import prepare  # noqa: PLC0415  # zeep: only when auditing

            await prepare()
            return (await self._camera(target, checks, feed, tls_gate)).camera

    async def _run(
        self, camera_ids: Collection[str] | None, progress: Progress | None
    ) -> AuditResult:
        started_at, started = self.clock.now(), time.monotonic()
        self._seated = {}
        self._relayed = {}
        wanted = [
            self._relay_configured(t)
            for t in self._targets
            if camera_ids is None or t.camera_id in camera_ids
        ]
        partial = camera_ids is not None
        discovered, discovery_findings = ([], []) if partial else await self._discover()
        configured = {t.address for t in self._targets}
        extra = [h for h in discovered if h.address not in configured]
        found_targets = [self._discovered_target(h) for h in extra]
        checks = self.checks()
        feed = _load_feed(self.clock, self.config)
        gate = asyncio.Semaphore(self.config.audit.concurrency)
        tls_gate = asyncio.Semaphore(self.config.audit.tls_concurrency)
        everything = [*wanted, *found_targets]
        done: list[_Outcome] = []

        # through a recorder's virtual host only the camera's web interface is reachable: the
        # checks that probe the address's ports would reach the recorder's
        relayed = [c for c in checks if not isinstance(c, NetCheck)]

        async def one(target: Target) -> _Outcome:
            mine = relayed if target.camera_id in self._relayed else checks
            async with gate:
                outcome = await self._camera(target, mine, feed, tls_gate)
            done.append(outcome)
            if progress is not None:
                progress(outcome.camera, len(done), len(everything))
            return outcome

        if everything:
            from agent.audit.identify import prepare  # noqa: PLC0415  # zeep: only when auditing

            await prepare()  # the ONVIF WSDL documents, outside every camera's time limit
        outcomes = await asyncio.gather(*(one(t) for t in everything))
        reached = {t.address for t in everything} | {a for a, _ in self._relayed.values()}
        seated, offline = self._channel_cameras(outcomes, reached)
        everything += seated
        outcomes = [*outcomes, *offline, *await asyncio.gather(*(one(t) for t in seated))]
        outcomes = [self._own_address(o) for o in outcomes]
        inventory = None if partial else self._inventory(outcomes, discovered)
        cameras, site_findings = _site_checks([o.camera for o in outcomes], inventory)
        host = [*discovery_findings, *site_findings]
        host += await asyncio.to_thread(
            host_findings,
            self.config.state_path,
            HostSettings(expected_ports=frozenset(self.config.audit.host_expected_ports)),
        )
        return AuditResult(tuple(cameras), tuple(host), started_at, time.monotonic() - started)

    # discovery and the inventory (INV-04)

    async def _discover(self) -> tuple[list[Host], list[Finding]]:
        from agent.inventory.discover import (  # noqa: PLC0415
            ssdp_hosts,
            sweep,
            vendor_hosts,
            ws_discovery_hosts,
        )

        net = self.config.network
        if not self._scope.subnets:
            return [], []
        unicast = [t.address for t in self._targets if self._scope.contains(t.address)]
        groups: list[list[Host]] = []
        problems: list[Finding] = []

        async def attempt(method: str, work: Callable[[], Awaitable[list[Host]]]) -> None:
            try:
                groups.append(await work())
            except (CameraError, OSError, ValueError) as exc:
                logger.warning("discovery by %s failed: %s", method, exc)
                problems.append(
                    make_finding(
                        check="inventory",
                        code="inv.discovery_failed",
                        status="inconclusive",
                        severity="info",
                        controls=("INV-04",),
                        reason=f"{method}: {type(exc).__name__}",
                        evidence={"method": method, "error": type(exc).__name__},
                    )
                )

        if net.ws_discovery:
            await attempt(
                "ws-discovery",
                lambda: ws_discovery_hosts(
                    self._scope, window_s=net.udp_window_s, unicast=unicast, multicast=net.multicast
                ),
            )
        if net.ssdp:
            await attempt(
                "ssdp",
                lambda: ssdp_hosts(
                    self._scope, window_s=net.udp_window_s, unicast=unicast, multicast=net.multicast
                ),
            )
        if net.sweep:
            for network in self._scope.subnets:
                swept = functools.partial(
                    sweep, network, self._scope, timeout_s=net.sweep_timeout_s
                )
                await attempt(f"sweep {network}", swept)
        if net.vendor_discovery:  # last: also asks every address the others found
            known = sorted({*unicast, *(h.address for group in groups for h in group)})
            for protocol in ("sadp", "dhdiscover"):
                found = functools.partial(
                    vendor_hosts,
                    protocol,
                    self._scope,
                    window_s=net.udp_window_s,
                    unicast=known,
                    multicast=net.multicast,
                )
                await attempt(protocol, found)
        return list(merge(*groups).values()), problems

    def _discovered_target(self, host: Host) -> Target:
        return self._target(f"{DISCOVERED_PREFIX}{host.address}", host.address, host.vendor_hint)

    def _target(self, camera_id: str, address: str, vendor_hint: str | None) -> Target:
        offset = self.config.network.port_offset
        return Target(
            camera_id=camera_id,
            address=address,
            ports={
                Interface.HTTP: 80 + offset,
                Interface.HTTPS: 443 + offset,
                Interface.RTSP: 554 + offset,
            },
            vendor_hint=vendor_hint,
        )

    # the cameras on recorders' channels

    def _channel_cameras(
        self, outcomes: Iterable[_Outcome], audited: set[str]
    ) -> tuple[list[Target], list[_Outcome]]:
        """The cameras the recorders list (``rec.channel`` findings) that this audit has not
        reached yet: a channel online at an address inside the camera subnets is audited
        directly (``<recorder>-chNN``, no vault credential), one outside them through its
        recorder's virtual host when the site configured one (``virtual_host_port``), one the
        recorder lists offline is reported unreachable with the recorder's word for it;
        anything else is left to the recorder's own findings (never contacted)."""
        targets, offline = [], []
        for outcome in outcomes:
            for finding in outcome.camera.findings:
                evidence = finding.evidence
                address = str(evidence.get("address") or "")
                if finding.code != "rec.channel" or address in audited:
                    continue
                camera_id = f"{outcome.camera.camera_id}-ch{evidence['channel']:02}"[:64]
                audited.add(address)
                self._seated[address] = camera_id
                if evidence.get("state") == "offline":
                    offline.append(_Outcome(self._offline(camera_id, outcome, finding), False))
                    continue
                hint = _PROTOCOL_VENDORS.get(str(evidence.get("protocol") or "").lower())
                if self._scope.contains(address):
                    targets.append(self._target(camera_id, address, hint))
                elif (host := self._virtual_host(outcome.camera.camera_id, evidence)) is not None:
                    targets.append(self._relay(Target(camera_id, address, {}, None, hint), *host))
        return targets, offline

    def _virtual_host(
        self, recorder_id: str, channel: Mapping[str, EvidenceValue]
    ) -> tuple[CameraConfig, int] | None:
        """The configured recorder and its port where the camera of ``channel`` answers
        (``virtual_host_port``, the recorder inside the subnets), or None."""
        recorder = self.config.camera(recorder_id)
        number = channel.get("channel")
        if recorder is None or recorder.virtual_host_port is None or not isinstance(number, int):
            return None
        port = recorder.virtual_host_port + number - 1
        if not 0 < port <= 65535 or not self._scope.contains(recorder.address):
            return None
        return recorder, port

    def _relay_configured(self, target: Target) -> Target:
        """A configured camera outside the subnets whose ``recorder`` and ``channel`` the site
        named: through the recorder's virtual host when it has one; else as it is."""
        camera = self.config.camera(target.camera_id)
        if camera is None or camera.recorder is None or camera.channel is None:
            return target
        host = self._virtual_host(camera.recorder, {"channel": camera.channel})
        if host is None or self._scope.contains(target.address):
            return target
        return self._relay(target, *host)

    def _relay(self, target: Target, recorder: CameraConfig, port: int) -> Target:
        """``target`` reached at ``port`` of its recorder. The recorder relays the connection
        to the camera: what is sent there (its vault credential, a default-credential guess)
        reaches that camera alone, as if sent to its own address, which the agent cannot route
        to. Only the web interface is relayed: HTTPS is asked there too (and found absent)
        rather than at the recorder's own port, and no port of the address is probed."""
        via = f"{recorder.id}'s virtual host (port {port})"
        self._relayed[target.camera_id] = (target.address, via)
        ports = {Interface.HTTP: port, Interface.HTTPS: port}
        return Target(
            target.camera_id, recorder.address, ports, target.credential_ref, target.vendor_hint
        )

    def _own_address(self, outcome: _Outcome) -> _Outcome:
        """A camera audited through its recorder is reported at its own address, and as
        partly audited (its ports were not probed)."""
        relayed = self._relayed.get(outcome.camera.camera_id)
        if relayed is None:
            return outcome
        address, via = relayed
        camera = outcome.camera
        done = camera.audit == "audited"
        reason = f"reached through {via}: its own ports not probed"
        camera = msgspec.structs.replace(
            camera,
            address=address,
            audit="partial" if done else camera.audit,
            audit_reason=_text(reason if done else f"{camera.audit_reason}; {reason}"),
        )
        return _Outcome(camera, outcome.seen)

    def _offline(self, camera_id: str, recorder: _Outcome, channel: Finding) -> Camera:
        evidence = channel.evidence
        said = f"the recorder {recorder.camera.camera_id} lists channel {evidence['channel']}"
        gone = next(
            (
                f
                for f in recorder.camera.findings
                if f.code == "rec.channel_offline" and f.evidence == evidence
            ),
            channel,
        )
        return Camera(
            camera_id=camera_id,
            address=str(evidence["address"]),
            reachable=False,
            identity=Identity(
                model=_text(_str(evidence.get("model"))),
                serial=_text(_str(evidence.get("serial"))),
                firmware=_text(_str(evidence.get("firmware"))),
                source="recorder",
            ),
            findings=[gone],
            audited_at=self.clock.now(),
            audit="unreachable",
            audit_reason=f"{said} offline",
        )

    def _inventory_path(self) -> Path:
        return self.config.state_path / INVENTORY_FILE

    def _previous(self) -> list[Host]:
        try:
            return msgspec.json.decode(self._inventory_path().read_bytes(), type=list[Host])
        except FileNotFoundError:
            return []
        except (OSError, msgspec.DecodeError) as exc:
            logger.warning("the last inventory is unreadable (%s); every host counts as new", exc)
            return []

    def _inventory(self, outcomes: Sequence[_Outcome], discovered: Iterable[Host]) -> SiteInventory:
        """What answered this time against the last inventory; this one is stored for the
        next audit."""
        seen_static = [
            Host(
                o.camera.address,
                frozenset({"static"}),
                serial=o.camera.identity.serial,
                mac=normal_mac(o.camera.identity.mac),
            )
            for o in outcomes
            if o.seen and not o.camera.camera_id.startswith(DISCOVERED_PREFIX)
        ]
        current = merge(seen_static, discovered)
        previous = self._previous()
        change = diff(previous, current.values())
        if self.persist_inventory:
            try:
                atomic_write(self._inventory_path(), msgspec.json.encode(list(current.values())))
            except StorageError as exc:
                logger.warning("%s; INV-04 compares with an older inventory next time", exc)
        # a camera on a recorder's channel is registered through its recorder
        registered = frozenset({*(t.address for t in self._targets), *self._seated})
        return SiteInventory(current, change, registered)

    # one camera

    async def _camera(
        self,
        target: Target,
        checks: Sequence[Check],
        feed: AdvisoryFeed | None,
        tls_gate: asyncio.Semaphore,
    ) -> _Outcome:
        state = _Progress([])
        findings = state.findings
        credential = self._credentials.get(target.credential_ref or "")
        limit = self.config.audit.camera_timeout_s
        ctx = CheckContext(
            target,
            None,
            None,
            self._limits,
            self.clock,
            feed,
            credential,
            self._site_key,
            port_states={},
        )
        try:
            async with asyncio.timeout(limit):
                await self._audit_camera(ctx, checks, tls_gate, state)
        except TimeoutError:
            logger.warning("%s: audit stopped after %s s", target.camera_id, limit)
            state.stop("partial", f"the audit stopped at the camera's time limit ({limit} s)")
            finished = {f.check for f in findings}
            findings += [
                timeout_finding(c, ctx, limit, "the camera's time limit")
                for c in checks
                if c.id not in finished
            ]
        except Exception as exc:
            # one camera's unexpected failure (a bug, ours or a library's) is that camera's
            # inconclusive result, never the end of the whole audit
            logger.exception("%s: audit failed", target.camera_id)
            state.stop("partial", f"internal error: {type(exc).__name__}")
            finished = {f.check for f in findings}
            findings += [
                internal_error_finding(c, ctx, exc) for c in checks if c.id not in finished
            ]
        camera = Camera(
            camera_id=target.camera_id,
            address=target.address,
            reachable=state.seen,
            identity=_identity(state.identity),
            findings=findings,
            audited_at=self.clock.now(),
            audit=state.state,
            audit_reason=_text(state.reason),
        )
        return _Outcome(camera, state.seen)

    async def _audit_camera(
        self,
        base: CheckContext,
        checks: Sequence[Check],
        tls_gate: asyncio.Semaphore,
        state: _Progress,
    ) -> None:
        from agent.audit.identify import identify  # noqa: PLC0415  # httpx: only when auditing

        target = base.target
        # this camera's adapters (identification's, the checks' ONVIF companions) share what
        # they learn about its transport for this audit only
        config = dataclasses.replace(self._adapter_config, web_answers={})
        try:
            await admit(target.address)  # OutOfScope: a configured camera outside the subnets
            found = await identify(target, config, base.credential)
        except CameraError as exc:
            down = isinstance(exc, Unreachable | Timeout | OutOfScope)
            state.seen = not down
            context = "" if isinstance(exc, OutOfScope) else "identification failed: "
            if isinstance(exc, Timeout):
                # no complete answer in time is no verdict: a slow camera, or a loaded agent
                # machine. Unreachable is what refuses or has no route (``Unreachable``); this
                # camera is partly audited (nothing judged, each check says why), and reachable
                # if it takes a TCP connection.
                state.seen = await self._takes_connections(target)
                limit = self._adapter_config.timeout_s
                state.stop("partial", f"identification had no complete answer within {limit} s")
            else:
                state.stop(_STOPPED.get(exc.code, "partial"), f"{context}{exc}")
            logger.info("%s: identification failed (%s)", target.camera_id, exc.code)
            refused = dataclasses.replace(base, login_refused=isinstance(exc, AuthFailed))
            for check in checks:
                if down or check.requires:
                    state.findings.append(camera_error_finding(check, base, exc, context))
                else:
                    state.findings.extend(await self._check(check, refused, tls_gate))
            return
        state.identity = found.identity
        if found.adapter is None and base.credential is None:
            state.stop("login_failed", "no vault credential for this camera: only its banner read")
        elif found.adapter is None:
            state.stop("unsupported", f"no vendor API or ONVIF answered ({found.identity.source})")
        companions: dict[Credential | None, Adapter] = {}
        ctx = CheckContext(
            target,
            found.adapter,
            found.identity,
            base.limits,
            base.clock,
            base.advisories,
            base.credential,
            base.site_key,
            companions,
            base.port_states,
        )
        try:
            for check in checks:
                state.findings.extend(await self._check(check, ctx, tls_gate))
            state.settle()
        finally:
            for adapter in [*companions.values(), found.adapter]:
                if adapter is not None:
                    await adapter.close()

    async def _takes_connections(self, target: Target) -> bool:
        """Whether the camera's web port takes a TCP connection (``Camera.reachable``)."""
        port = target.ports.get(Interface.HTTP) or target.ports.get(Interface.HTTPS)
        if port is None:
            return False
        return await reachable(target.address, port, self.config.intervals.camera_connect_timeout_s)

    @staticmethod
    async def _check(check: Check, ctx: CheckContext, tls_gate: asyncio.Semaphore) -> list[Finding]:
        if isinstance(check, TlsCheck):  # ~20 MB of OpenSSL buffers per scan in flight
            async with tls_gate:
                return await run_check(check, ctx)
        return await run_check(check, ctx)


def _site_checks(
    cameras: list[Camera], inventory: SiteInventory | None
) -> tuple[list[Camera], list[Finding]]:
    """The site checks in their order, each seeing the cameras with the findings before it."""
    from agent.checks import SITE_CHECKS  # noqa: PLC0415  # with the checks, when auditing

    site: list[Finding] = []
    for check in SITE_CHECKS:
        found = check.run(Site(cameras, inventory))
        cameras = [
            msgspec.structs.replace(c, findings=[*c.findings, *found.cameras[c.camera_id]])
            if found.cameras.get(c.camera_id)
            else c
            for c in cameras
        ]
        site += found.site
    return cameras, site
