"""Checks, one module per control family. ``CHECKS`` is the explicit list of what runs on each
camera, ``SITE_CHECKS`` of what runs over the whole site after them (``agent.checks.site``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from agent.checks.accounts import AccountsCheck, ActivationCheck, LockoutPolicyCheck
from agent.checks.base import Check
from agent.checks.clock import ClockCheck
from agent.checks.cloud import RemoteServicesCheck
from agent.checks.credentials import DEFAULT_BUDGET, DefaultCredentialCheck
from agent.checks.exposure import RouterMappingCheck
from agent.checks.firmware import FirmwareCheck
from agent.checks.identity import IdentityCheck
from agent.checks.inventory import InventoryCheck
from agent.checks.netprobe import NetSettings
from agent.checks.onvif_access import AnonymousOnvifCheck
from agent.checks.passwords import PasswordPolicyCheck
from agent.checks.rtsp import RtspAuthCheck
from agent.checks.services import (
    CleartextCheck,
    OpenPortsCheck,
    SnmpCheck,
    SshCheck,
    UpnpCheck,
)
from agent.checks.site import SiteCheck
from agent.checks.tls import SharedTlsKeyCheck, TlsCheck
from agent.checks.web import HttpAuthCheck, HttpsCheck, SnapshotCheck
from agent.credentials.planner import GuessLimits
from agent.vendors.models import Target


def build_checks(
    settings: NetSettings | None = None,
    *,
    approved_accounts: Mapping[str, Collection[str]] | None = None,
    inventory: Collection[Target] = (),
    guessing: bool = True,
    guessing_per_camera: Mapping[str, bool] | None = None,
    guess_budget: int = DEFAULT_BUDGET,
    guess_limits: GuessLimits | None = None,
) -> tuple[Check, ...]:
    """The checks that run, in order: reads first, then network probes, default-credential
    guessing last. The audit builds them from the site's configuration: the network probes
    from ``settings`` (camera subnets, routers, ports), AUTH-12 from ``approved_accounts``
    (camera id -> names), AUTH-01 from the configured ``inventory``."""
    net = settings or NetSettings()
    return (
        FirmwareCheck(),
        PasswordPolicyCheck(),
        IdentityCheck(),
        ActivationCheck(),
        LockoutPolicyCheck(),
        AccountsCheck(approved_accounts),
        AnonymousOnvifCheck(),
        RemoteServicesCheck(),
        ClockCheck(),
        HttpAuthCheck(net),
        SnapshotCheck(net),
        HttpsCheck(net),
        TlsCheck(net),
        RtspAuthCheck(net),
        OpenPortsCheck(net),
        CleartextCheck(net),
        SshCheck(net),
        SnmpCheck(net),
        UpnpCheck(net),
        RouterMappingCheck(net),
        DefaultCredentialCheck(
            inventory,
            enabled=guessing,
            per_camera=guessing_per_camera,
            budget=guess_budget,
            limits=guess_limits,
        ),
    )


# Built without configuration, the AUTH-01 check has no inventory and refuses to guess, AUTH-12
# approves only the agent's account, and the network probes have no camera subnets and send
# nothing: the audit builds its own with ``build_checks`` from the site's configuration.
CHECKS: tuple[Check, ...] = build_checks()

# Over the whole site, in this order: COM-03 on every audit, INV-04 on a full one.
SITE_CHECKS: tuple[SiteCheck, ...] = (SharedTlsKeyCheck(), InventoryCheck())
