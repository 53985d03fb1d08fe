"""A throwaway NATS cluster with JetStream and its MQTT listener on free loopback ports, for
tests and benchmarks (docs/adr/0032).

Each node is one ``nats-server`` process with its own generated config, store directory, pid
file and log under ``workdir/<name>``; the nodes route to each other on loopback. Agents connect
to a node's MQTT listener (``mqtt_port``), collectors to its NATS port (``url``). The nodes share
one authorization file (``auth.conf``, included by every node's config): ``authorize`` rewrites
it and reloads every running node, a stopped node reads it when it starts again. Without
``authorize`` every client is anonymous with full rights.

    cluster = NatsCluster(tmp_path / "nats", size=3)
    cluster.start()                      # all nodes, returns once JetStream has a meta leader
    cluster.nodes[0].mqtt_port          # an agent's [mqtt] port
    cluster.urls                         # nats://127.0.0.1:<port> of every node (collectors)
    cluster.kill(1); cluster.start_node(1)   # SIGKILL one node mid-stream, bring it back
    cluster.stop()                       # SIGTERM every node (also on context exit)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from lab.broker import free_port, wait_port

CLUSTER_NAME = "camwarden"
_READY_TIMEOUT_S = 60.0  # a loaded 2-core machine: a node's start and its JetStream election
_STOP_TIMEOUT_S = 15.0
# nothing between the nodes' quotes may end a NATS config string
_QUOTE_SAFE = frozenset('"\\\n')


def _quoted(text: str) -> str:
    if _QUOTE_SAFE & set(text):
        raise ValueError(f"not usable in a NATS config string: {text!r}")
    return f'"{text}"'


@dataclass
class NatsNode:
    """One node: its ports and files; ``proc`` while it runs."""

    name: str
    host: str
    port: int
    cluster_port: int
    mqtt_port: int
    http_port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def config(self) -> Path:
        return self.directory / "nats.conf"

    @property
    def pid_file(self) -> Path:
        return self.directory / "nats.pid"

    @property
    def log(self) -> Path:
        return self.directory / "nats.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def varz(self, path: str = "varz") -> dict[str, Any]:
        """The node's monitoring endpoint ``path`` (``varz``, ``jsz``, ``healthz``, ...)."""
        url = f"http://{self.host}:{self.http_port}/{path}"
        with urllib.request.urlopen(url, timeout=2.0) as answer:  # loopback monitoring port
            parsed = json.loads(answer.read(1 << 22))
        if not isinstance(parsed, dict):
            raise ValueError(f"{path}: not a JSON object")
        return parsed


class NatsCluster:
    """``size`` nats-server nodes routed to each other on ``host``; JetStream and MQTT on."""

    def __init__(
        self,
        workdir: Path,
        size: int = 3,
        *,
        host: str = "127.0.0.1",
        max_file_store: str = "8G",
        max_memory_store: str = "64M",
        extra: str = "",
        mqtt_extra: str = "",
    ) -> None:
        """``extra``: more top-level config lines for every node; ``mqtt_extra``: more lines
        inside every node's ``mqtt {}`` block (e.g. its ``tls {...}``)."""
        if size < 1:
            raise ValueError("a cluster has at least one node")
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            raise RuntimeError("nats-server is not installed (scripts/install-system-deps.sh)")
        self.binary = binary
        self.host = host
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.auth_file = workdir / "auth.conf"
        self.auth_file.write_text("# no authorization: anonymous clients, all rights\n")
        self.nodes = [
            NatsNode(
                name=f"n{i + 1}",
                host=host,
                port=free_port(host),
                cluster_port=free_port(host),
                mqtt_port=free_port(host),
                http_port=free_port(host),
                directory=workdir / f"n{i + 1}",
            )
            for i in range(size)
        ]
        routes = ", ".join(f"nats-route://{host}:{n.cluster_port}" for n in self.nodes)
        for node in self.nodes:
            node.directory.mkdir(parents=True, exist_ok=True)
            lines = [
                f"server_name: {node.name}",
                f"listen: {host}:{node.port}",
                f"http: {host}:{node.http_port}",
                f"pid_file: {_quoted(str(node.pid_file))}",
                "max_payload: 1MB",
                "jetstream {",
                f"  store_dir: {_quoted(str(node.directory / 'js'))}",
                f"  max_file_store: {max_file_store}",
                f"  max_memory_store: {max_memory_store}",
                "}",
                *(
                    [
                        "cluster {",
                        f"  name: {CLUSTER_NAME}",
                        f"  listen: {host}:{node.cluster_port}",
                        f"  routes: [{routes}]",
                        "}",
                    ]
                    if size > 1
                    else []  # one node: JetStream stand-alone
                ),
                "mqtt {",
                f"  listen: {host}:{node.mqtt_port}",
                "  ack_wait: 30s",
                "  max_ack_pending: 1000",
                mqtt_extra,
                "}",
                f"include {_quoted(os.path.relpath(self.auth_file, node.directory))}",
                extra,
            ]
            node.config.write_text("\n".join(lines) + "\n")

    # -- the whole cluster -------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def start(self) -> None:
        """Start every node; return once each answers and JetStream has a leader."""
        for index in range(len(self.nodes)):
            self._spawn(index)
        for node in self.nodes:
            wait_port(node.host, node.mqtt_port, _READY_TIMEOUT_S)
        self.wait_ready()

    def stop(self) -> None:
        for index in range(len(self.nodes)):
            self.stop_node(index)

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def authorize(self, text: str) -> None:
        """Replace the shared authorization (NATS config text: an ``authorization {...}`` or
        ``accounts {...}`` block) and reload every running node."""
        tmp = self.auth_file.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.auth_file)
        self.reload()

    def reload(self) -> None:
        """SIGHUP every running node: it rereads its config, the authorization file included."""
        for node in self.nodes:
            if node.running and node.proc is not None:
                node.proc.send_signal(signal.SIGHUP)

    def wait_ready(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Until every running node reports JetStream healthy and a meta leader is known."""
        deadline = time.monotonic() + timeout
        pending = [n for n in self.nodes if n.running]
        while pending:
            node = pending[0]
            try:
                node.varz("healthz?js-enabled-only=true")  # raises on 503
                meta = node.varz("jsz").get("meta_cluster")
                if len(self.nodes) == 1 or (isinstance(meta, dict) and meta.get("leader")):
                    pending.pop(0)
                    continue
            except (OSError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"node {node.name} not ready in {timeout:g} s ({node.log})")
            time.sleep(0.1)

    # -- one node ----------------------------------------------------------------------------

    def start_node(self, index: int) -> None:
        """Start node ``index`` again (after ``kill`` or ``stop_node``) and wait for it."""
        self._spawn(index)
        node = self.nodes[index]
        wait_port(node.host, node.mqtt_port, _READY_TIMEOUT_S)
        self.wait_ready()

    def kill(self, index: int) -> None:
        """SIGKILL node ``index``: no goodbye to its clients or its peers."""
        node = self.nodes[index]
        if node.proc is not None:
            node.proc.kill()
            node.proc.wait()
            node.proc = None

    def stop_node(self, index: int) -> None:
        """SIGTERM node ``index`` and wait for it (SIGKILL after a grace period)."""
        node = self.nodes[index]
        if node.proc is None:
            return
        node.proc.terminate()
        try:
            node.proc.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()
        node.proc = None

    def _spawn(self, index: int) -> None:
        node = self.nodes[index]
        if node.running:
            return
        with node.log.open("ab") as log:
            node.proc = subprocess.Popen(  # noqa: S603  # fixed program, generated config
                [self.binary, "-c", str(node.config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=node.directory,
            )


__all__ = ["CLUSTER_NAME", "NatsCluster", "NatsNode"]
