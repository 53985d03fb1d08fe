"""Namespace mode: every simulated camera gets its own network namespace and 10.99.0.x address.

Layout (the "switch namespace" design, nothing is added to the caller's namespace)::

    <id>-sw      bridge br0 (no address), one veth port p<n> per host
    <id>-agent   eth0 10.99.0.2/24: where the software under test runs
    <id>-<ip>    eth0 10.99.0.11/24, ... one per camera
    <id>-poe-<ip>  eth0 192.168.254.2/24, ... one per camera on a recorder's PoE ports (``poe``)

A recorder with PoE cameras gets a second bridge ``poe0`` in its own namespace, holding the
recorder's internal address 192.168.254.1/24 (Hikvision NVRs' default PoE network) and one veth
port per PoE camera: only the recorder reaches them; the agent namespace has no route there.

Each host namespace has ``lo`` up and a 224.0.0.0/4 route on eth0, so multicast (SSDP,
WS-Discovery) stays on the lab bridge. ``<id>`` is unique per run so parallel runs do not
collide. Teardown kills every process left in the namespaces and deletes the namespaces (the
kernel then removes their veth pairs and the bridge), also after a failed set-up; each step is
one ``ip -batch`` call, whatever the number of namespaces.

Without root, run the whole program inside a user namespace: ``python -m lab.netns -- CMD``
re-executes CMD under ``unshare --user --map-root-user --net --mount --pid`` with a private
``/run`` so that ``ip netns add`` works; everything dies with CMD.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import ipaddress
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from lab.binder import bound

log = logging.getLogger(__name__)

CLONE_NEWNET: Final = 0x40000000
NETNS_DIR: Final = Path("/run/netns")
BRIDGE: Final = "br0"
LAB_IFACE: Final = "eth0"
MULTICAST: Final = "224.0.0.0/4"
DEFAULT_SUBNET: Final = "10.99.0.0/24"
POE_SUBNET: Final = ipaddress.IPv4Network("192.168.254.0/24")
POE_BRIDGE: Final = "poe0"
IP_TIMEOUT: Final = 30.0
UNSHARE: Final = ("unshare", "--user", "--map-root-user", "--net", "--mount", "--pid", "--fork")
INSIDE_FLAG: Final = "--inside-userns"
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    """A namespace command failed; the message carries ip's own error text."""


def _ip(*args: str, batch: Sequence[str] = ()) -> str:
    argv = ["ip", *args, *(["-batch", "-"] if batch else [])]
    done = subprocess.run(  # noqa: S603  # fixed program, arguments built here
        argv,
        input="".join(f"{line}\n" for line in batch),
        capture_output=True,
        text=True,
        timeout=IP_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling thread (only) inside network namespace ``name``."""
    target = os.open(NETNS_DIR / name, os.O_RDONLY | os.O_CLOEXEC)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def netns_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The command line that runs ``argv`` inside namespace ``name``."""
    return ["ip", "netns", "exec", name, *argv]


def run_in(
    name: str, argv: Sequence[str], *, timeout: float | None = 60.0
) -> subprocess.CompletedProcess[str]:
    """Run a program (nmap, ffprobe, the agent) inside a lab namespace and wait for it."""
    return subprocess.run(  # noqa: S603  # the caller chose the program on purpose
        netns_argv(name, argv), capture_output=True, text=True, timeout=timeout, check=False
    )


async def arun_in(name: str, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """:func:`run_in` for event-loop code, which must keep serving while the program runs.

    Bound it with ``asyncio.timeout``: on cancellation the program is killed and reaped.
    """
    return await arun(netns_argv(name, argv))


async def arun(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run a program from event-loop code, capturing its output (see :func:`arun_in`)."""
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await process.communicate()
    except BaseException:
        process.kill()
        await asyncio.shield(process.wait())
        raise
    returncode = process.returncode if process.returncode is not None else await process.wait()
    return subprocess.CompletedProcess(list(argv), returncode, out.decode(), err.decode())


@functools.cache
def available() -> bool:
    """True when this process can create lab namespaces (root, or root inside a userns)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"cwprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (NetnsError, OSError, subprocess.TimeoutExpired):
        return False
    _ip("netns", "del", probe)
    return True


@functools.cache
def userns_available() -> bool:
    """True when an unprivileged user namespace with its own network can be created."""
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run(  # noqa: S603  # fixed program
        [*UNSHARE, "true"], capture_output=True, timeout=IP_TIMEOUT, check=False
    )
    return done.returncode == 0


def rootless_argv(argv: Sequence[str], *, python: str = sys.executable) -> list[str]:
    """The command line that runs ``argv`` as root of a fresh user+network namespace.

    ``python`` (able to import ``lab``) prepares the namespace before running ``argv``.
    """
    return [*UNSHARE, "--kill-child", python, "-m", "lab.netns", INSIDE_FLAG, *argv]


def _prepare_userns() -> None:
    """Inside a fresh userns: a private /run (for /run/netns) and a working loopback."""
    subprocess.run(["mount", "-t", "tmpfs", "lab-run", "/run"], check=True)  # noqa: S607
    NETNS_DIR.mkdir(parents=True, exist_ok=True)
    _ip("link", "set", "lo", "up")


@dataclass(frozen=True, slots=True)
class LabHost:
    namespace: str
    address: str
    port: str  # the veth port in the switch namespace


class NetnsLab:
    """An isolated lab network: a switch namespace, an agent namespace and one per camera."""

    def __init__(
        self,
        cameras: Sequence[str],
        *,
        subnet: str = DEFAULT_SUBNET,
        agent_address: str | None = None,
        run_id: str | None = None,
        poe: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """``poe``: recorder address (one of ``cameras``) -> the addresses (in ``POE_SUBNET``) of
        the cameras on its PoE ports."""
        net = ipaddress.IPv4Network(subnet)
        agent_ip = ipaddress.IPv4Address(agent_address) if agent_address else net[2]
        addresses = [agent_ip, *(ipaddress.IPv4Address(a) for a in cameras)]
        for address in addresses:
            if address not in net or address in (net.network_address, net.broadcast_address):
                raise ValueError(f"{address} is not a host address of {net}")
        if len(set(addresses)) != len(addresses):
            raise ValueError("lab addresses must be unique")
        self.prefix = run_id or f"cw{secrets.token_hex(3)}"
        self.prefixlen = net.prefixlen
        self.switch = f"{self.prefix}-sw"
        self.agent = LabHost(f"{self.prefix}-agent", str(agent_ip), "p0")
        self.cameras = {
            str(ip): LabHost(f"{self.prefix}-{str(ip).replace('.', '-')}", str(ip), f"p{n}")
            for n, ip in enumerate(addresses[1:], start=1)
        }
        self.poe: dict[str, list[LabHost]] = {}
        inside = [ipaddress.IPv4Address(a) for seated in (poe or {}).values() for a in seated]
        reserved = {POE_SUBNET[0], POE_SUBNET[1], POE_SUBNET[-1]}  # network, recorder, broadcast
        for address in inside:
            if address not in POE_SUBNET or address in reserved:
                raise ValueError(f"{address} is not a PoE camera address of {POE_SUBNET}")
        if len(set(inside)) != len(inside):
            raise ValueError("PoE camera addresses must be unique")
        for recorder, seated in (poe or {}).items():
            if recorder not in self.cameras:
                raise ValueError(f"{recorder} (a recorder with PoE cameras) is not a lab host")
            self.poe[recorder] = [
                LabHost(f"{self.prefix}-poe-{ip.replace('.', '-')}", ip, f"q{n}")
                for n, ip in enumerate(seated, start=1)
            ]
        self._created: list[str] = []

    @property
    def hosts(self) -> list[LabHost]:
        return [self.agent, *self.cameras.values()]

    @property
    def poe_hosts(self) -> list[LabHost]:
        return [host for seated in self.poe.values() for host in seated]

    @property
    def namespaces(self) -> list[str]:
        return [self.switch, *(h.namespace for h in (*self.hosts, *self.poe_hosts))]

    def namespace_of(self, address: str) -> str:
        if address == self.agent.address:
            return self.agent.namespace
        if address in self.cameras:
            return self.cameras[address].namespace
        found = next((h.namespace for h in self.poe_hosts if h.address == address), None)
        if found is None:
            raise ValueError(f"{address} is not an address of lab {self.prefix}")
        return found

    def binder(self) -> NetnsBinder:
        return NetnsBinder(self)

    def create(self) -> Self:
        try:
            for name in self.namespaces:
                _ip("netns", "add", name)
                self._created.append(name)
            switch = [
                f"link add {BRIDGE} type bridge mcast_snooping 0",
                f"link set {BRIDGE} up",
                "link set lo up",
            ]
            for host in self.hosts:
                switch += [
                    f"link add {host.port} type veth peer name {LAB_IFACE} netns {host.namespace}",
                    f"link set {host.port} master {BRIDGE} up",
                ]
            _ip("-n", self.switch, batch=switch)
            for host in self.hosts:
                _ip(
                    "-n",
                    host.namespace,
                    batch=[
                        "link set lo up",
                        f"addr add {host.address}/{self.prefixlen} dev {LAB_IFACE}",
                        f"link set {LAB_IFACE} up",
                        f"route add {MULTICAST} dev {LAB_IFACE}",
                    ],
                )
            for recorder, seated in self.poe.items():
                self._wire_poe(self.cameras[recorder].namespace, seated)
        except BaseException:
            self.close()
            raise
        log.info("lab %s up: %d cameras", self.prefix, len(self.cameras))
        return self

    def _wire_poe(self, recorder: str, seated: Sequence[LabHost]) -> None:
        """The recorder's PoE bridge and, on it, its cameras (namespaces already added)."""
        bridge = [
            f"link add {POE_BRIDGE} type bridge",
            f"link set {POE_BRIDGE} up",
            f"addr add {POE_SUBNET[1]}/{POE_SUBNET.prefixlen} dev {POE_BRIDGE}",
        ]
        for host in seated:
            bridge += [
                f"link add {host.port} type veth peer name {LAB_IFACE} netns {host.namespace}",
                f"link set {host.port} master {POE_BRIDGE} up",
            ]
        _ip("-n", recorder, batch=bridge)
        for host in seated:
            _ip(
                "-n",
                host.namespace,
                batch=[
                    "link set lo up",
                    f"addr add {host.address}/{POE_SUBNET.prefixlen} dev {LAB_IFACE}",
                    f"link set {LAB_IFACE} up",
                    f"route add {MULTICAST} dev {LAB_IFACE}",  # on the PoE network only
                ],
            )

    def close(self) -> None:
        """Remove everything this lab created; safe to call twice or after a failed create."""
        if not self._created:
            return
        # one ip process per step, not per namespace: -batch with -force runs every line and
        # reports the failed ones (500 namespaces: ~16 s serial, under a second batched)
        with contextlib.suppress(NetnsError):
            pids = _ip("-force", batch=[f"netns pids {name}" for name in self._created])
            for pid in {int(p) for p in pids.split()} - {os.getpid()}:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        # no "link del" per veth: each waits for an RCU grace period (~20 ms, 10 s for 500);
        # the kernel removes the devices of deleted namespaces itself, in one batch
        names, self._created = self._created, []
        _ip("-force", batch=[f"netns del {name}" for name in names])
        log.info("lab %s removed", self.prefix)

    def __enter__(self) -> Self:
        return self.create()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.create)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)


class NetnsBinder:
    """The lab's Binder for namespace mode: sockets are created inside the host's namespace.

    TCP listeners bind the host address. UDP sockets bind the namespace's wildcard address,
    because a socket bound to a unicast address never receives multicast datagrams; the
    namespace holds only that host's address, so the effect is the same for unicast.
    """

    def __init__(self, lab: NetnsLab) -> None:
        self._lab = lab

    def tcp(self, host: str, port: int) -> socket.socket:
        with entered(self._lab.namespace_of(host)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        return bound(sock, (host, port))

    def udp(self, host: str, port: int) -> socket.socket:
        with entered(self._lab.namespace_of(host)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # the namespace's only address is host's
        return bound(sock, ("0.0.0.0", port), reuse=False)  # noqa: S104


def main(argv: Sequence[str]) -> int:
    """``python -m lab.netns -- CMD...``: run CMD where lab namespaces can be created."""
    args = list(argv)
    inside = bool(args) and args[0] == INSIDE_FLAG
    args = args[1:] if inside else args
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m lab.netns -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if inside:
        _prepare_userns()
    elif os.geteuid() != 0:
        return subprocess.call(rootless_argv(args))  # noqa: S603  # the user's own command
    return subprocess.call(args)  # noqa: S603  # the user's own command


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
