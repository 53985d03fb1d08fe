"""Scheduled audits in a short-lived worker process (docs/adr/0013-audit-worker.md).

``camwarden-agent run`` never audits in its own process: for each scheduled audit it starts
:data:`WORKER` (the same interpreter, running :func:`main`), writes the effective config to the
worker's stdin as one JSON line, and reads the result from the worker's stdout as JSON. The worker
opens the vault itself (it runs as the same user; secrets never travel on the command line, in the
environment or over the pipe), audits, answers and exits, so the ONVIF, zeep and httpx memory goes
back to the operating system with it. The daemon keeps the private key and builds, signs and sends
the report as before.

A worker that is still running after ``[audit] worker_timeout_s`` is killed; one that exits
without a readable answer (a crash, a signal) is a failure too. Either way that audit's cameras
get inconclusive findings naming the reason (:func:`failed_result`). The worker watches its
stdin: when the daemon goes away (the pipe closes), the worker exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from agent.audit.reachability import probe_cameras
from agent.audit.results import AuditResult
from agent.config import AgentConfig
from agent.daemon import setup_logging
from agent.errors import AgentError
from protocol.messages import Camera

log = logging.getLogger(__name__)

# isolated (-I: no PYTHON* variables, no user site-packages, no current directory), with the
# directory this package was imported from first on sys.path: the Debian package keeps it in a
# private tree that its launcher adds, so ``-m agent.audit.worker`` alone would not find it
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "import agent.audit.worker as w; sys.exit(w.main())"
)
WORKER: tuple[str, ...] = (
    sys.executable,
    "-I",
    "-c",
    _BOOTSTRAP,
    str(Path(__file__).resolve().parents[2]),
)


class AuditRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    config: AgentConfig
    log_level: int


class Finished(msgspec.Struct, frozen=True, tag=True):
    result: AuditResult
    peak_rss_kib: int  # the worker's own peak (ru_maxrss)


class Skipped(msgspec.Struct, frozen=True, tag=True):
    reason: str  # the audit could not start (the vault)


Reply = Finished | Skipped


class AuditSkipped(AgentError):
    """The worker did not audit, for a reason the operator must fix (e.g. the vault key)."""


class WorkerFailed(AgentError):
    """The worker gave no result: killed at its time limit, or it died."""

    def __init__(self, reason: str, *, timeout_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timeout_s = timeout_s  # set when the worker was killed at its time limit


async def audit_in_worker(
    config: AgentConfig, *, timeout_s: float, command: Sequence[str] = WORKER
) -> AuditResult:
    """One audit of ``config`` in a worker process started with ``command``."""
    request = msgspec.json.encode(AuditRequest(config, logging.getLogger().level)) + b"\n"
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    if proc.stdin is None or proc.stdout is None:  # both are pipes, as asked above
        proc.kill()
        await proc.wait()
        raise WorkerFailed("the audit worker was started without pipes")
    try:
        async with asyncio.timeout(timeout_s):
            with contextlib.suppress(ConnectionError):  # it died at once: judged by its exit
                proc.stdin.write(request)
                await proc.stdin.drain()
            output = await proc.stdout.read()
            code = await proc.wait()
    except TimeoutError:
        raise WorkerFailed(
            f"the audit worker was killed after {timeout_s:g} s", timeout_s=timeout_s
        ) from None
    finally:
        if proc.returncode is None:  # timed out, or the daemon is stopping
            proc.kill()
            await proc.wait()
        proc.stdin.close()
    if code != 0:
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"
        raise WorkerFailed(f"the audit worker exited with {how}")
    try:
        reply: Reply = msgspec.json.decode(output, type=Reply)
    except msgspec.DecodeError:
        raise WorkerFailed("the audit worker's answer is unreadable") from None
    if isinstance(reply, Skipped):
        raise AuditSkipped(reply.reason)
    log.info("audit worker: peak RSS %.1f MiB", reply.peak_rss_kib / 1024)
    return reply.result


def failed_result(
    cameras: Sequence[Camera], error: WorkerFailed, started_at: datetime, duration_s: float
) -> AuditResult:
    """``cameras`` (reachability only) with every check inconclusive because of ``error``."""
    from agent.checks import CHECKS  # noqa: PLC0415  # only after a failure
    from agent.checks.base import framework_finding  # noqa: PLC0415

    if error.timeout_s is not None:
        code, evidence = "check.timeout", {"timeout_s": f"{error.timeout_s:g}"}
    else:
        code, evidence = "check.internal_error", {"error": "audit worker failed"}
    findings = [
        framework_finding(check, code, "inconclusive", error.reason, **evidence) for check in CHECKS
    ]
    failed = tuple(msgspec.structs.replace(c, findings=list(findings)) for c in cameras)
    return AuditResult(failed, (), started_at, duration_s)


# the worker's side


async def _audit(config: AgentConfig) -> Reply:
    from agent.audit.auditor import Auditor, vault_secrets  # noqa: PLC0415  # after logging is set up

    try:
        credentials, site_key = vault_secrets(config)
    except AgentError as exc:
        return Skipped(str(exc))
    result = await Auditor(config, credentials=credentials, site_key=site_key).run()
    return Finished(result, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _exit_when_orphaned() -> None:
    """The daemon closes our stdin only after our answer, or by going away: then stop."""
    while os.read(sys.stdin.fileno(), 4096):  # raw reads: no buffer lock held at exit
        pass
    os._exit(1)


def main() -> int:
    answer = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # whatever a library prints: the log
    request = msgspec.json.decode(sys.stdin.buffer.readline(), type=AuditRequest)
    setup_logging(request.log_level)
    threading.Thread(target=_exit_when_orphaned, name="orphan-watch", daemon=True).start()
    reply = asyncio.run(_audit(request.config))
    with answer:
        answer.write(msgspec.json.encode(reply))
    return 0


async def scheduled_audit(config: AgentConfig) -> AuditResult | None:
    """One scheduled audit of the daemon, in a worker process; None when it was skipped (the
    operator must act: logged). A worker that failed gives the cameras' reachability with
    every check inconclusive."""
    started_at, started = datetime.now(UTC), time.monotonic()
    try:
        result = await audit_in_worker(config, timeout_s=config.audit.worker_timeout_s)
    except AuditSkipped as exc:
        log.error("audit skipped: %s", exc)
        return None
    except WorkerFailed as exc:
        log.error("audit failed: %s; its cameras are reported inconclusive", exc)
        cameras = await probe_cameras(config)
        return failed_result(cameras, exc, started_at, time.monotonic() - started)
    failed = sum(1 for c in result.cameras for f in c.findings if f.status == "fail")
    log.info(
        "audit of %d cameras finished in %.1f s: %d failed findings",
        len(result.cameras),
        result.duration_s,
        failed,
    )
    return result
