"""The agent's Ed25519 identity and its enrollment with the collector.

The private key never leaves the host: only the public JWK (kid = RFC 7638 thumbprint) is
printed or sent. Enrollment POSTs ``{"token", "agent_id", "site", "jwk", "hostname"}`` to
``<server>/api/v1/enroll`` and stores the collector's answer in ``<state_dir>/enrollment.json``.
The answer's ``collector_jwk`` is the collector's command key, pinned from then on: only what it
signs (acknowledgements, later commands) is accepted from the collector.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from joserfc.jwk import OKPKey

from agent.errors import AgentError, EnrollmentError, KeyFileExists
from agent.state import atomic_write
from agent.trust.keyfiles import check_private_file
from protocol.errors import MalformedMessage
from protocol.keys import (
    generate_private_key,
    import_public_jwk,
    load_private_key,
    public_jwk,
    write_private_key,
)

log = logging.getLogger(__name__)

ENROLL_PATH = "/api/v1/enroll"
ENROLLMENT_FILE = "enrollment.json"
_REFUSALS = {
    403: "the enrollment token was rejected (wrong, expired or already used)",
    409: "this agent_id is already enrolled with another key",
    422: "the collector rejected the request (invalid JWK or fields)",
}


def keygen(path: Path) -> OKPKey:
    """Create a new private key at ``path`` (PKCS#8 PEM, mode 0600); never overwrite."""
    if path.exists():
        raise KeyFileExists(f"{path} already exists; refusing to overwrite a private key")
    key = generate_private_key()
    try:
        write_private_key(path, key)
    except FileExistsError as exc:
        raise KeyFileExists(f"{path} already exists; refusing to overwrite a private key") from exc
    except OSError as exc:
        raise AgentError(f"cannot write {path}: {exc.strerror}") from exc
    return key


def load_key(path: Path, owner: int | None = None) -> OKPKey:
    """The agent's private key; refused if other users can read it or it is not ``owner``'s
    (default: this user's; ``agent.trust.keyfiles``)."""
    check_private_file(path, "private key", owner)
    try:
        return load_private_key(path)
    except OSError as exc:
        raise AgentError(f"cannot read the private key {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise AgentError(f"{path} is not an Ed25519 private key") from exc


def enroll(
    server: str,
    token: str,
    *,
    agent_id: str,
    site: str,
    key: OKPKey,
    hostname: str,
    state_dir: Path,
    timeout: float = 10.0,
    mqtt_public_key: str | None = None,
) -> dict[str, Any]:
    """Enroll with the collector; return and store its answer. Raises EnrollmentError."""
    import httpx  # noqa: PLC0415  # only enrollment needs it; keeps the daemon small

    url = server.rstrip("/") + ENROLL_PATH
    body = {
        "token": token,
        "agent_id": agent_id,
        "site": site,
        "jwk": public_jwk(key),
        "hostname": hostname,
    }
    if mqtt_public_key is not None:
        body["mqtt_public_key"] = mqtt_public_key
    try:
        response = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise EnrollmentError(f"cannot reach the collector at {url}: {exc}") from exc
    if response.status_code in _REFUSALS:
        raise EnrollmentError(f"enrollment refused: {_REFUSALS[response.status_code]}")
    if response.status_code != 201:
        raise EnrollmentError(f"unexpected answer from {url}: HTTP {response.status_code}")
    try:
        answer = response.json()
    except ValueError as exc:
        raise EnrollmentError(f"the collector's answer is not JSON: {exc}") from exc
    if (
        not isinstance(answer, dict)
        or answer.get("agent_id") != agent_id
        or answer.get("site") != site
        or answer.get("status") not in ("pending", "approved")
    ):
        raise EnrollmentError("the collector's answer does not match this agent")
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_write(state_dir / ENROLLMENT_FILE, json.dumps(answer, indent=2).encode() + b"\n")
    log.info("enrolled %s at site %s with %s: %s", agent_id, site, url, answer["status"])
    return answer


def collector_key(state_dir: Path, key_file: Path | None = None) -> OKPKey | None:
    """The pinned collector command key: ``key_file`` (a public JWK) if given, else the
    ``collector_jwk`` of ``<state_dir>/enrollment.json``; None when the agent is not enrolled
    (or enrolled with a collector that sent no key). Raises AgentError for an unusable key."""
    path = key_file or state_dir / ENROLLMENT_FILE
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        if key_file is not None:
            raise AgentError(f"collector_key_file {key_file} does not exist") from None
        return None
    except OSError as exc:
        raise AgentError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise AgentError(f"{path} is not JSON: {exc}") from exc
    if key_file is None and not isinstance(data, dict):
        raise AgentError(f"{path} is not an enrollment answer")
    jwk = data if key_file is not None else data.get("collector_jwk")
    if jwk is None:
        return None
    try:
        return import_public_jwk(jwk)
    except MalformedMessage as exc:
        raise AgentError(f"{path}: the collector key is unusable: {exc.detail}") from exc
