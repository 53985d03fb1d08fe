"""Remediate every SVC and COM finding of the 100 lab cameras of configs/lab/mixed-100.toml,
agent side: a full audit, then one signed ``settings.apply`` per camera with failing SVC/COM
controls that a setting closes (``protocol.commands.SETTING_CONTROLS``, the flags' safe
values), through the real executor (verification, replay store, journal, vault snapshot,
vendor API writes, read-back, re-audit), then a full audit again.

The lab runs in this process on loopback (RTSP off: no stream setting is changed here, and
the machine may lack GStreamer); the agent's credentials are in a real vault. Prints the wall
time of the remediation, the cameras fixed, failed and refused (by reason), the settings
applied, ignored and clamped, the re-audit's verdict per control, the SVC/COM failures before
and after, what no setting of the vocabulary can close, and the machine's load. Never gates
anything.

    python bench/remediate.py [--parallel 8] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from joserfc.jwk import OKPKey

from agent.audit.auditor import Auditor, vault_secrets
from agent.audit.results import AuditResult
from agent.commands.executor import Executor
from agent.config import AgentConfig, load_config
from agent.messaging.issuer import Issuer
from agent.messaging.outbox import Outbox
from agent.state import StateStore
from agent.trust.vault import Vault, load_vault_key
from lab.config import load_config as load_lab
from lab.fleet import Fleet
from lab.testing import private_base
from protocol import CommandResult, decode_agent_message, generate_private_key, verify
from protocol.commands import (
    SAFE_VALUES,
    SETTING_CONTROLS,
    SETTINGS_APPLY,
    RemediateParams,
    SettingName,
)
from protocol.messages import Camera
from server.firmware.commands import new_command, signed
from tests.agent.audit_lab import fill_vault, write_config

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "configs" / "lab" / "mixed-100.toml"
FAMILIES = ("SVC-", "COM-")
AUDIT = "\n".join(  # no default-credential guessing: spaced for lockouts, it is not measured here
    ["[audit]", "guess_default_credentials = false", "camera_timeout_s = 120", "concurrency = 16"]
)


def failing(camera: Camera) -> set[str]:
    return {
        c
        for f in camera.findings
        if f.status == "fail"
        for c in f.controls
        if c.startswith(FAMILIES)
    }


def plan(camera: Camera) -> dict[SettingName, bool]:
    """The flags whose safe value closes a failing SVC/COM control of ``camera``."""
    wanted = failing(camera)
    return {
        name: SAFE_VALUES[name]
        for name, controls in SETTING_CONTROLS.items()
        if name in SAFE_VALUES and wanted.intersection(controls)
    }


async def audit(config: AgentConfig) -> AuditResult:
    credentials, site_key = vault_secrets(config)
    return await Auditor(config, credentials=credentials, site_key=site_key).run()


def results(state: Path, agent_key: OKPKey) -> list[CommandResult]:
    outbox = Outbox(state / "outbox", 256 * 1024 * 1024, 100_000)
    out = []
    for entry in outbox.entries():
        token = outbox.read(entry)
        if token is None:
            continue
        message = decode_agent_message(verify(token, lambda _kid: agent_key).payload)
        if isinstance(message, CommandResult) and message.status not in ("accepted", "in_progress"):
            out.append(message)
    return out


async def run(workdir: Path, parallel: int) -> None:
    lab_config = load_lab(LAB)
    lab = dataclasses.replace(lab_config.lab, rtsp=False, loopback_base=private_base())
    fleet = await Fleet.start(dataclasses.replace(lab_config, lab=lab))
    try:
        config = load_config(write_config(fleet, workdir, audit=AUDIT, discovery=False))
        fill_vault(fleet, config)
        vault = Vault(config.state_path, load_vault_key(config.vault_key_path))
        started = time.monotonic()
        before = await audit(config)
        audit_s = time.monotonic() - started
        plans = {c.camera_id: plan(c) for c in before.cameras}
        plans = {cid: changes for cid, changes in plans.items() if changes}

        collector, agent_key = generate_private_key(), generate_private_key()
        outbox = Outbox(config.state_path / "outbox", 256 * 1024 * 1024, 100_000)
        issuer = Issuer(
            config.agent_id, config.site, agent_key, StateStore(config.state_path), outbox
        )
        executor = Executor(config, issuer, collector, vault)
        org = OKPKey.generate_key("X25519")
        gate = asyncio.Semaphore(parallel)
        statuses: Counter[str] = Counter()

        async def one(camera_id: str, changes: dict[SettingName, bool]) -> None:
            params = RemediateParams(
                changes=changes,
                escrow_kid=org.thumbprint(),
                escrow_jwk=json.dumps(org.as_dict(private=False)),
                plan_id=1,
            )
            command = new_command(
                SETTINGS_APPLY,
                agent_id=config.agent_id,
                site=config.site,
                camera_id=camera_id,
                params=params.to_params(),
                now=datetime.now(UTC),
                ttl=timedelta(hours=1),
            )
            async with gate:
                statuses[await executor.submit(signed(command, collector))] += 1

        started = time.monotonic()
        await asyncio.gather(*(one(cid, changes) for cid, changes in plans.items()))
        remediate_s = time.monotonic() - started
        after = await audit(config)

        outcomes: Counter[str] = Counter()
        verdicts: Counter[str] = Counter()
        for result in results(config.state_path, agent_key):
            for key, value in result.details.items():
                if key.startswith("outcome."):
                    outcomes[str(value)] += 1
                elif key.startswith("reaudit.") and value:
                    verdicts[key.removeprefix("reaudit.")] += len(str(value).split(","))
        fail_before = Counter(c for cam in before.cameras for c in failing(cam))
        fail_after = Counter(c for cam in after.cameras for c in failing(cam))
        closable = {c for controls in SETTING_CONTROLS.values() for c in controls}
        print(f"cameras: {len(before.cameras)}; first audit {audit_s:.1f} s")
        print(f"remediated: {len(plans)} cameras in {remediate_s:.1f} s ({parallel} at a time)")
        for status, count in sorted(statuses.items()):
            print(f"  {status}: {count}")
        print("settings: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
        print("re-audit, controls: " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())))
        print("SVC/COM failures, before -> after (cameras):")
        for control in sorted(fail_before | fail_after):
            note = "" if control in closable else "  (no setting closes it)"
            print(f"  {control}: {fail_before[control]} -> {fail_after[control]}{note}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        await fleet.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(args.workdir, args.parallel))
        return
    with tempfile.TemporaryDirectory(prefix="camwarden-remediate-") as tmp:
        asyncio.run(run(Path(tmp), args.parallel))


if __name__ == "__main__":
    main()
