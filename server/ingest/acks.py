"""End-to-end acknowledgements: after a batch commits, tell each agent which of its seqs are
stored, so it can drop them from its outbox (see docs/adr/0001-envelope-format.md, Delivery).

One ``Ack`` per (agent_id, site) in the batch, covering the seqs stored by this batch or found
already stored (duplicates: a republish of something an earlier ack did not reach). Rejected
messages are never acknowledged; the agent keeps them and retries. Acks are signed with the
collector's command key (protocol header ``typ`` = ``camwarden-ack+jws``) and published QoS 1 on
the agent's ``cmd`` topic through the subscriber's MQTT client, which queues them without
blocking the ingest loop. ``camwarden-server import`` does not acknowledge: an air-gapped agent
already dropped what it wrote to the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from joserfc.jwk import OKPKey

from protocol import Ack, DuplicateMessage, encode, sign, to_ranges, topic
from protocol.envelope import ACK_TYP
from server.storage.records import Checked, Rejected

Publish = Callable[[str, bytes], object]  # (topic, payload), QoS 1


def acks_for(results: Sequence[Checked | Rejected], now: datetime) -> list[Ack]:
    """The acks for one committed batch: stored and duplicate seqs, grouped per agent."""
    seqs: dict[tuple[str, str], list[int]] = {}
    for item in results:
        stored = isinstance(item, Checked) or isinstance(item.error, DuplicateMessage)
        message = item.message
        if not stored or message is None:
            continue
        seqs.setdefault((message.agent_id, message.site), []).append(message.seq)
    return [
        Ack(agent_id=agent_id, site=site, ranges=to_ranges(numbers), issued_at=now)
        for (agent_id, site), numbers in seqs.items()
    ]


class AckSender:
    def __init__(self, key: OKPKey, publish: Publish, clock: Callable[[], datetime]) -> None:
        self._key = key
        self._publish = publish
        self._clock = clock

    def send(self, results: Sequence[Checked | Rejected]) -> None:
        """Sign and publish the acks of a committed batch."""
        for ack in acks_for(results, self._clock()):
            token = sign(encode(ack), self._key, typ=ACK_TYP).encode("ascii")
            self._publish(topic(ack.site, ack.agent_id, "cmd"), token)
