"""MQTT topics, built and parsed here only: ``camwarden/v1/<site>/<agent_id>/<channel>``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal, get_args

from protocol.errors import MisaddressedMessage

PREFIX: Final = "camwarden/v1"
Channel = Literal["report", "heartbeat", "cmd", "cmd-result"]
CHANNELS: Final[tuple[str, ...]] = get_args(Channel)
AGENT_CHANNELS: Final[tuple[Channel, ...]] = ("report", "heartbeat", "cmd-result")
# the channel each agent message type (its ``type`` tag) travels on; hellos share the report one
CHANNEL_OF: Final[Mapping[str, Channel]] = MappingProxyType(
    {
        "hello": "report",
        "report": "report",
        "heartbeat": "heartbeat",
        "cmd-result": "cmd-result",
        "survey-result": "cmd-result",  # the parts of a survey command's findings
    }
)
SHARE_GROUP: Final = "collectors"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Topic:
    site: str
    agent_id: str
    channel: Channel

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/{self.agent_id}/{self.channel}"


def topic(site: str, agent_id: str, channel: Channel) -> str:
    for label, value in (("site", site), ("agent_id", agent_id)):
        if not _NAME.match(value):
            raise ValueError(f"{label} {value!r} is not a valid topic level")
    return str(Topic(site, agent_id, channel))


def parse(name: str) -> Topic:
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != PREFIX:
        raise MisaddressedMessage(f"not a camwarden/v1 topic: {name!r}")
    site, agent_id, channel = parts[2], parts[3], parts[4]
    if not (_NAME.match(site) and _NAME.match(agent_id)) or channel not in CHANNELS:
        raise MisaddressedMessage(f"malformed topic: {name!r}")
    return Topic(site, agent_id, channel)  # type: ignore[arg-type]  # checked against CHANNELS


def collector_subscriptions(group: str = SHARE_GROUP) -> list[str]:
    """Shared subscriptions so several collector processes split the agents' traffic. Every
    collector of a fleet must name the same ``group``; a name agents do not know keeps them
    out of the round robin on brokers that do not check SUBSCRIBE against their ACL."""
    if not _NAME.match(group):
        raise ValueError(f"share group {group!r} is not a valid topic level")
    return [f"$share/{group}/{PREFIX}/+/+/{channel}" for channel in AGENT_CHANNELS]
