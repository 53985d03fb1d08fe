"""The survey contract (Directive 23/CT-TTg): an Internet provider finds the insecure cameras on
its own range without ever logging in to a subscriber's device (pure).

The collector signs a ``protocol.Command`` with action ``SURVEY`` (no ``camera_id``) and the
params of ``SurveyParams``: which prefixes of the provider's range to sweep (one shard of a
survey), on which ports, how fast, and which addresses to leave alone (``exclude``: the
provider's own equipment; ``opt_out``: subscribers who asked not to be surveyed). The agent
refuses a command whose prefixes are not all inside the prefixes its own config allows
(``prefix_not_allowed``), and never sends a packet to an address outside the command's
prefixes, nor to an excluded or opted-out one.

The agent answers like any command (``accepted``, ``in_progress`` at each of
``STEPS[SURVEY]``, then ``succeeded``/``failed``); ``sweeping`` is announced again as the sweep
goes, and ``reporting`` once, with the detail ``probed`` (addresses probed so far: the
collector's progress while a shard runs). Between them it sends the findings as
``protocol.messages.SurveyResult`` messages on the ``cmd-result`` channel: the shard's answering
hosts in numbered parts (``part`` 1, 2, ...), each at most ``PART_MAX_BYTES`` encoded and
``PART_MAX_HOSTS`` hosts. The last part has ``last`` true and carries the shard's
``SurveySummary`` (its ``parts`` is the number of parts sent). The collector knows a shard is
complete when it holds the part with ``last`` and every part from 1 to ``summary.parts``;
``summary.complete`` false (deadline reached, agent stopped) means the addresses not probed are
not surveyed, never clean. A host is listed only when at least one port answered.

Every list param travels as one comma-separated string (command params are flat scalars).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Self

from protocol.errors import BadParams
from protocol.messages import EvidenceValue

__all__ = [
    "DEFAULT_PORTS",
    "DEFAULT_UDP_PORTS",
    "EXPOSURES",
    "HOST_MAX_EXPOSURES",
    "MAX_ADDRESSES",
    "MAX_LIST_TEXT",
    "MAX_PORTS",
    "PART_MAX_BYTES",
    "PART_MAX_HOSTS",
    "SURVEY",
    "UDP_PORTS",
    "Address",
    "Network",
    "Scope",
    "SurveyParams",
    "parse_networks",
    "parse_ports",
]

SURVEY: Final = "survey.sweep"

# web 80/443/8080/8443, RTSP 554, vendor SDK (Hikvision) and web 8000, Dahua DVRIP 37777,
# Telnet 23; ONVIF is served on the web ports. UDP: SSDP/UPnP 1900.
DEFAULT_PORTS: Final = (23, 80, 443, 554, 8000, 8080, 8443, 37777)
UDP_PORTS: Final = frozenset({1900})  # the UDP probes an agent knows (unicast M-SEARCH)
DEFAULT_UDP_PORTS: Final = (1900,)

MAX_ADDRESSES: Final = 4096  # addresses in one command's prefixes together (a /20)
MAX_PORTS: Final = 32  # TCP ports per command
MAX_LIST_TEXT: Final = 32768  # characters of one list param (prefixes, exclude, opt_out)
PART_MAX_HOSTS: Final = 256  # hosts in one SurveyResult part
PART_MAX_BYTES: Final = 256 * 1024  # one SurveyResult part, encoded (the envelope allows 1 MiB)
HOST_MAX_EXPOSURES: Final = 16
HOST_MAX_PORTS: Final = 64
EVIDENCE_MAX_KEYS: Final = 16

# Exposure codes (keys of the message catalogue), with what the evidence of each holds.
EXPOSURES: Final = frozenset(
    {
        # firmware known to be exploited (advisory feed, KEV): evidence advisory, cve, kev
        "survey.kev_firmware",
        # RTSP DESCRIBE answered 200 with a media description, no credential sent:
        # evidence url, media (the SDP's first m= line)
        "survey.stream_no_auth",
        # an unauthenticated snapshot URL returned image bytes: evidence url, content_type, bytes
        "survey.snapshot_no_auth",
        # ONVIF GetDeviceInformation answered without WS-Security: evidence url, operation
        "survey.onvif_no_auth",
        # a Telnet service answered: evidence banner
        "survey.telnet_open",
        # a vendor SDK port (Hikvision 8000) accepted a connection: evidence port
        "survey.sdk_port_open",
        # a Dahua DVRIP port (37777) accepted a connection: evidence port
        "survey.dvrip_port_open",
        # UPnP/SSDP answered a unicast M-SEARCH from the survey agent: evidence server, location
        "survey.upnp_exposed",
    }
)

_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # as ``messages.Name``
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str, name: str = "prefixes") -> tuple[Network, ...]:
    """Comma-separated CIDR prefixes (a bare address is its /32 or /128); host bits must be
    zero. ``BadParams`` naming ``name`` otherwise."""
    if len(text) > MAX_LIST_TEXT:
        raise BadParams(f"param {name!r} is longer than {MAX_LIST_TEXT} characters")
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise BadParams(f"param {name!r}: {item[:64]!r} is not a prefix") from exc
    return tuple(networks)


def parse_ports(
    text: str, name: str = "ports", allowed: Iterable[int] | None = None
) -> tuple[int, ...]:
    """Comma-separated port numbers, each once, at most ``MAX_PORTS``."""
    ports: list[int] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise BadParams(f"param {name!r}: {item[:16]!r} is not a port")
        ports.append(int(item))
    if len(ports) > MAX_PORTS or len(set(ports)) != len(ports):
        raise BadParams(f"param {name!r}: at most {MAX_PORTS} ports, each once")
    if allowed is not None and not set(ports) <= set(allowed):
        raise BadParams(f"param {name!r}: only {sorted(allowed)} are known")
    return tuple(ports)


def _join(items: Iterable[object]) -> str:
    return ",".join(str(item) for item in items)


def _get_int(
    params: Mapping[str, EvidenceValue], name: str, low: int, high: int, default: int
) -> int:
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadParams(f"param {name!r} must be an integer in [{low}, {high}]")
    return value


def _get_text(params: Mapping[str, EvidenceValue], name: str, default: str | None) -> str:
    value = params.get(name, default)
    if not isinstance(value, str):
        raise BadParams(f"param {name!r} must be a string")
    return value


@dataclass(frozen=True, slots=True)
class SurveyParams:
    """``survey.sweep`` (no ``camera_id``).

    ``survey_id``: the survey (a ``Name``); ``shard``: this command's shard of it;
    ``prefixes``: what to sweep (together at most ``MAX_ADDRESSES`` addresses); ``ports``: TCP
    ports (default ``DEFAULT_PORTS``); ``udp_ports``: UDP probes (subset of ``UDP_PORTS``);
    ``exclude``: prefixes never touched (the provider's own equipment); ``opt_out``: subscriber
    addresses or prefixes never touched; ``rate_pps``: packets per second the agent sends at
    most (each connection attempt, request and datagram counts); ``rate_cps``: new TCP
    connections per second at most; ``host_deadline_s``: the time one host may take;
    ``deadline_s``: the time the whole shard may take (then the summary says incomplete)."""

    survey_id: str
    shard: int
    prefixes: tuple[Network, ...]
    ports: tuple[int, ...] = DEFAULT_PORTS
    udp_ports: tuple[int, ...] = DEFAULT_UDP_PORTS
    exclude: tuple[Network, ...] = ()
    opt_out: tuple[Network, ...] = ()
    rate_pps: int = 200
    rate_cps: int = 50
    host_deadline_s: int = 30
    deadline_s: int = 3600

    def __post_init__(self) -> None:
        if not self.prefixes:
            raise BadParams("param 'prefixes' names no prefix")
        if self.addresses() > MAX_ADDRESSES:
            raise BadParams(
                f"param 'prefixes' spans {self.addresses()} addresses, more than {MAX_ADDRESSES}"
            )
        if not _NAME.match(self.survey_id):
            raise BadParams("param 'survey_id' must be a name (letters, digits, . _ -)")

    def addresses(self) -> int:
        """How many addresses the prefixes span (an overlap counts in each prefix)."""
        return sum(n.num_addresses for n in self.prefixes)

    def scope(self) -> Scope:
        return Scope(self.prefixes, self.exclude + self.opt_out)

    def to_params(self) -> dict[str, EvidenceValue]:
        return {
            "survey_id": self.survey_id,
            "shard": self.shard,
            "prefixes": _join(self.prefixes),
            "ports": _join(self.ports),
            "udp_ports": _join(self.udp_ports),
            "exclude": _join(self.exclude),
            "opt_out": _join(self.opt_out),
            "rate_pps": self.rate_pps,
            "rate_cps": self.rate_cps,
            "host_deadline_s": self.host_deadline_s,
            "deadline_s": self.deadline_s,
        }

    @classmethod
    def parse(cls, params: Mapping[str, EvidenceValue]) -> Self:
        """The params of a received command; ``BadParams`` if they do not fit."""
        known = {
            "survey_id", "shard", "prefixes", "ports", "udp_ports", "exclude", "opt_out",
            "rate_pps", "rate_cps", "host_deadline_s", "deadline_s",
        }  # fmt: skip
        unknown = sorted(set(params) - known)
        if unknown:
            raise BadParams(f"unknown param {unknown[0][:64]!r}")
        return cls(
            survey_id=_get_text(params, "survey_id", None),
            shard=_get_int(params, "shard", 0, 65535, 0),
            prefixes=parse_networks(_get_text(params, "prefixes", None)),
            ports=parse_ports(_get_text(params, "ports", _join(DEFAULT_PORTS))),
            udp_ports=parse_ports(
                _get_text(params, "udp_ports", _join(DEFAULT_UDP_PORTS)), "udp_ports", UDP_PORTS
            ),
            exclude=parse_networks(_get_text(params, "exclude", ""), "exclude"),
            opt_out=parse_networks(_get_text(params, "opt_out", ""), "opt_out"),
            rate_pps=_get_int(params, "rate_pps", 1, 10000, 200),
            rate_cps=_get_int(params, "rate_cps", 1, 2000, 50),
            host_deadline_s=_get_int(params, "host_deadline_s", 1, 120, 30),
            deadline_s=_get_int(params, "deadline_s", 10, 86400, 3600),
        )


@dataclass(frozen=True, slots=True)
class Scope:
    """The addresses a survey may touch: inside ``prefixes``, outside ``avoid``. The one check
    every packet of a survey passes (``allows``), on the command's side and the CLI's alike."""

    prefixes: tuple[Network, ...]
    avoid: tuple[Network, ...] = ()

    def allows(self, address: str | Address) -> bool:
        try:
            addr = ipaddress.ip_address(address) if isinstance(address, str) else address
        except ValueError:
            return False
        inside = any(addr.version == n.version and addr in n for n in self.prefixes)
        return inside and not any(addr.version == n.version and addr in n for n in self.avoid)

    def within(self, allowed: Iterable[Network]) -> bool:
        """Whether every prefix lies inside one of ``allowed`` (the agent's configured range)."""
        pool = tuple(allowed)
        return all(
            any(p.version == a.version and p.subnet_of(a) for a in pool)  # type: ignore[arg-type]
            for p in self.prefixes
        )

    def addresses(self) -> Iterator[Address]:
        """Each address of the prefixes that ``allows``, once, in order; the network and
        broadcast addresses of a prefix too (a provider's range is not one LAN)."""
        seen: set[Address] = set()
        for network in self.prefixes:
            for addr in network:
                if addr not in seen and self.allows(addr):
                    seen.add(addr)
                    yield addr
