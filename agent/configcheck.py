"""``check-config``'s checks beyond the schema: what ``run`` would refuse or silently skip.

Errors: a camera address that is neither an IPv4/IPv6 address nor a host name
(``127.77.0.300``), a vendor the agent does not know (a misspelt one would be ignored), a camera
outside ``[network] camera_subnets`` (the scope gate would refuse it), a key or certificate
file that is missing, unreadable or open to others, and scheduled rotation
(``[rotation] interval_days``) without the organisation's escrow key to seal to. Warning: a
collector URL that does not accept a TCP connection within a short timeout (the agent queues
and retries, so it is not an error). Nothing here resolves a host name, and only the
collector is connected to.

Each problem names its config key and, when the loader knows it, the file and line.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from agent.config import AgentConfig, CameraConfig
from agent.errors import AgentError
from agent.trust.identity import load_key
from agent.vendors.versions import canonical_vendor, known_vendors
from protocol.configfile import Origin, locate

__all__ = ["Problem", "problems"]

# RFC 1123 host name: labels of letters, digits and inner hyphens, not all-numeric at the end
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_NUMERIC = re.compile(r"^[0-9.]+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
COLLECTOR_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Problem:
    level: Literal["error", "warning"]
    key: str
    text: str
    where: str | None = None

    def __str__(self) -> str:
        place = f"{self.where}: " if self.where else ""
        return f"{self.level}: {place}{self.key}: {self.text}"


def problems(
    config: AgentConfig,
    origins: Mapping[str, Origin],
    *,
    collector_timeout_s: float | None = COLLECTOR_TIMEOUT_S,
) -> list[Problem]:
    """Every problem found, errors and warnings, in config order; the collector is not tried
    when ``collector_timeout_s`` is None (``check-config --offline``)."""
    found = [*_camera_problems(config), *_file_problems(config), *_rotation_problems(config)]
    if collector_timeout_s is not None:
        found += _collector_problems(config.collector_url, collector_timeout_s)
    return [_placed(problem, origins) for problem in found]


def _placed(problem: Problem, origins: Mapping[str, Origin]) -> Problem:
    """The problem with the file and line of its key ("cameras[2].address" -> the 3rd
    ``[[cameras]]`` table's ``address`` line when the file has one)."""
    match = re.fullmatch(r"cameras\[(\d+)\]\.(\w+)", problem.key)
    origin = locate("cameras" if match else problem.key, origins)
    if origin is None:
        return problem
    where = str(origin)
    if match and origin.source != "command line":
        line = _camera_line(Path(origin.source), int(match.group(1)), match.group(2))
        where = f"{origin.source}:{line}" if line else origin.source
    return Problem(problem.level, problem.key, problem.text, where)


def _camera_line(path: Path, index: int, key: str) -> int | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    tables = [n for n, line in enumerate(lines) if line.strip().startswith("[[cameras]]")]
    if index >= len(tables):
        return None
    end = tables[index + 1] if index + 1 < len(tables) else len(lines)
    for number in range(tables[index] + 1, end):
        if re.match(rf"\s*{key}\s*=", lines[number]):
            return number + 1
    return tables[index] + 1


def _camera_problems(config: AgentConfig) -> Iterator[Problem]:
    subnets = config.network.subnets
    for index, camera in enumerate(config.cameras):
        key = f"cameras[{index}]"
        ip, error = _address(camera.address)
        if error:
            yield Problem("error", f"{key}.address", f"{camera.id}: {error}")
        elif ip is not None and subnets and not any(ip in net for net in subnets):
            nets = ", ".join(str(net) for net in subnets)
            yield Problem(
                "error",
                f"{key}.address",
                f"{camera.id}: {camera.address} is outside network.camera_subnets ({nets}): "
                "the agent would never connect to it",
            )
        vendor = _vendor_problem(camera)
        if vendor:
            yield Problem("error", f"{key}.vendor", f"{camera.id}: {vendor}")


def _address(
    address: str,
) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address | None, str | None]:
    """(the IP address or None for a host name, an error text or None)."""
    if ":" in address or _NUMERIC.match(address):
        try:
            return ipaddress.ip_address(address), None
        except ValueError:
            return None, f"{address!r} is not a valid IP address"
    labels = address.rstrip(".").split(".")
    if all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit():
        return None, None
    return None, f"{address!r} is neither an IP address nor a host name"


def _vendor_problem(camera: CameraConfig) -> str | None:
    key = canonical_vendor(camera.vendor)
    known = known_vendors()
    if key is None or key in known:
        return None
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown vendor {camera.vendor!r}: {hint}known: {', '.join(sorted(known))}"


def _file_problems(config: AgentConfig) -> Iterator[Problem]:
    from agent.trust.vault import VaultError, load_vault_key  # noqa: PLC0415  # cryptography

    owner = _service_uid(config.state_path)
    try:
        load_key(config.key_path, owner)
    except AgentError as exc:
        yield Problem("error", "key_file", str(exc))
    if config.vault_key_path is not None:
        try:
            load_vault_key(config.vault_key_path, {})
        except VaultError as exc:
            yield Problem("error", "vault_key_file", str(exc))
    files: list[tuple[str, Path]] = []
    if config.collector_key_path is not None:
        files.append(("collector_key_file", config.collector_key_path))
    tls = config.mqtt_tls
    if tls is not None:
        files += [("mqtt.ca_file", tls.ca), ("mqtt.cert_file", tls.cert)]
        files.append(("mqtt.key_file", tls.key))
    for key, value in (
        ("rotation.escrow_jwk_file", config.rotation.escrow_jwk_file),
        ("advisories.feed_keys_file", config.advisories.feed_keys_file),
    ):
        if value:
            files.append((key, Path(value)))
    for key, path in files:
        text = _unreadable(path)
        if text:
            yield Problem("error", key, text)


def _rotation_problems(config: AgentConfig) -> Iterator[Problem]:
    rot = config.rotation
    if rot.interval_days is not None and (rot.escrow_kid is None or rot.escrow_jwk_file is None):
        yield Problem(
            "error",
            "rotation.interval_days",
            "scheduled rotation needs escrow_kid and escrow_jwk_file (the organisation's key)",
        )


def _service_uid(state_dir: Path) -> int | None:
    """Root checks the service's files: their owner is the state directory's (None: this user)."""
    if os.geteuid() != 0:
        return None
    try:
        return state_dir.stat().st_uid
    except OSError:
        return None


def _unreadable(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            fh.read(1)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    return None


def _collector_problems(url: str | None, timeout_s: float) -> list[Problem]:
    if not url:
        return []
    parts = urlsplit(url)
    try:
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    except ValueError:
        port = None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or port is None:
        return [Problem("error", "collector_url", f"{url!r} is not an http(s) URL")]
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        text = f"{url} does not answer ({reason}) within {timeout_s:g} s: reports will wait"
        return [Problem("warning", "collector_url", text)]
    return []
