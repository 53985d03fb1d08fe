from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.errors import OutboxFull
from agent.messaging.issuer import Header, Issuer
from agent.messaging.outbox import Outbox
from agent.state import StateStore
from protocol.envelope import digest
from protocol.keys import generate_private_key
from protocol.messages import AgentInfo, Heartbeat, Hello, HostHealth, StatusReport
from tests.agent.support import check_chain, decode_all

INFO = AgentInfo(version="0", hostname="h", platform="p")
HOST = HostHealth(cpu_percent=1, memory_percent=2, disk_free_bytes=3, uptime_s=4, load1=0.5)


def hello(h: Header) -> Hello:
    return Hello(**h.fields(), agent=INFO)


def heartbeat(h: Header) -> Heartbeat:
    return Heartbeat(**h.fields(), uptime_s=1.0, outbox_depth=0, cameras_known=0)


def report(h: Header) -> StatusReport:
    return StatusReport(
        **h.fields(), agent=INFO, host=HOST, cameras=[], outbox_dropped=h.outbox_dropped
    )


def make(tmp_path: Path, max_bytes: int = 1 << 26, max_messages: int = 1000) -> Issuer:
    outbox = Outbox(tmp_path / "outbox", max_bytes, max_messages)
    return Issuer("a1", "s1", KEY, StateStore(tmp_path), outbox)


KEY = generate_private_key()


def tokens(outbox: Outbox) -> list[bytes]:
    out = []
    for entry in outbox.entries():
        data = outbox.read(entry)
        assert data is not None
        out.append(data)
    return out


def test_entries_are_files_in_seq_order_and_chain(tmp_path: Path) -> None:
    issuer = make(tmp_path)
    for build in (hello, report, heartbeat, heartbeat, report, heartbeat):
        assert issuer.issue(build) is not None
    outbox = Outbox(tmp_path / "outbox", 1 << 20, 1000)  # reopened from disk
    names = sorted(p.name for p in (tmp_path / "outbox").iterdir())
    assert names[0] == "0000000000000001-hello.jws"
    assert [e.seq for e in outbox.entries()] == [1, 2, 3, 4, 5, 6]
    assert [e.channel for e in outbox.entries()][:3] == ["report", "report", "heartbeat"]
    by_seq = decode_all(tokens(outbox), KEY)
    assert check_chain(by_seq) == 2
    assert issuer.state.seq == 6
    assert issuer.state.head_seq == 5


def test_leftover_temporary_files_are_removed_on_open(tmp_path: Path) -> None:
    issuer = make(tmp_path)
    issuer.issue(hello)
    (tmp_path / "outbox" / ".tmp-abc.0000000000000002-report.jws").write_bytes(b"half")
    outbox = Outbox(tmp_path / "outbox", 1 << 20, 1000)
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["0000000000000001-hello.jws"]
    assert len(outbox) == 1


def test_cap_drops_oldest_heartbeats_first_and_counts_them(tmp_path: Path) -> None:
    issuer = make(tmp_path, max_messages=5)
    issuer.issue(report)  # seq 1
    for _ in range(4):
        issuer.issue(heartbeat)  # seq 2..5: box full
    issuer.issue(heartbeat)  # seq 6 drops seq 2
    issuer.issue(report)  # seq 7 drops seq 3, reports the 1 drop so far
    outbox = issuer._outbox
    assert [(e.seq, e.kind) for e in outbox.entries()] == [
        (1, "report"),
        (4, "heartbeat"),
        (5, "heartbeat"),
        (6, "heartbeat"),
        (7, "report"),
    ]
    by_seq = decode_all(tokens(outbox), KEY)
    last = by_seq[7][0]
    assert isinstance(last, StatusReport)
    assert last.outbox_dropped == 1  # seq 2; seq 3 was dropped for this very report
    assert issuer.state.outbox_dropped == 1  # carried to the next report
    assert check_chain(by_seq) == 2


def test_full_of_reports_issues_nothing_and_recovers_when_space_frees(tmp_path: Path) -> None:
    issuer = make(tmp_path, max_messages=3)
    for _ in range(3):
        issuer.issue(report)
    with pytest.raises(OutboxFull, match="nothing droppable"):
        issuer.issue(report)
    assert issuer.issue(heartbeat) is None  # dropped and counted, not written
    assert issuer.state.seq == 3  # no seq consumed by what was not written
    assert issuer.state.outbox_dropped == 1
    assert len(issuer._outbox) == 3
    issuer._outbox.remove(1)  # the broker acknowledged one
    issued = issuer.issue(report)
    assert issued is not None
    assert issued.seq == 4
    message = decode_all([issued.token], KEY)[4][0]
    assert isinstance(message, StatusReport)
    assert message.outbox_dropped == 1


def test_byte_cap(tmp_path: Path) -> None:
    issuer = make(tmp_path, max_bytes=4096)
    issued = issuer.issue(report)
    assert issued is not None
    room = 4096 // len(issued.token)
    for _ in range(room - 1):
        issuer.issue(report)
    with pytest.raises(OutboxFull):
        issuer.issue(report)
    assert issuer._outbox.size_bytes <= 4096


def test_crash_between_outbox_write_and_state_write_never_reuses_a_seq(tmp_path: Path) -> None:
    issuer = make(tmp_path)
    issuer.issue(hello)
    issuer.issue(report)
    saved = (tmp_path / "state.json").read_bytes()
    issued = issuer.issue(report)  # seq 3
    assert issued is not None
    # simulate the kill: the outbox entry of seq 3 exists, the state file is from before it
    (tmp_path / "state.json").write_bytes(saved)
    again = make(tmp_path)
    assert again.state.seq == 3
    assert (again.state.head_seq, again.state.head_digest) == (3, digest(issued.token))
    nxt = again.issue(heartbeat)
    assert nxt is not None
    assert nxt.seq == 4
    assert check_chain(decode_all(tokens(again._outbox), KEY)) == 2


def test_state_survives_an_empty_outbox(tmp_path: Path) -> None:
    issuer = make(tmp_path)
    issuer.issue(report)
    issuer.issue(heartbeat)
    for entry in issuer._outbox.entries():
        issuer._outbox.remove(entry.seq)
    again = make(tmp_path)
    assert (again.state.seq, again.state.head_seq) == (2, 1)


def test_write_latency(tmp_path: Path) -> None:
    """Sign + outbox write (fsync) + state write (fsync), the whole issue step."""
    issuer = make(tmp_path, max_messages=100_000)
    n = 200
    start = time.perf_counter()
    for _ in range(n):
        issuer.issue(heartbeat)
    per = (time.perf_counter() - start) / n
    print(f"\nissue (sign + outbox fsync + state fsync): {per * 1000:.2f} ms per message")
    assert per < 0.5


ENOSPC_SCRIPT = """
import sys
from pathlib import Path
from agent.errors import StorageError
from tests.agent.messaging.test_outbox import make, report
root = Path(sys.argv[1])
issuer = make(root)
filler = root / "filler"
with filler.open("wb", buffering=0) as fh:
    try:
        while True:
            fh.write(b"x" * 4096)
    except OSError:
        pass
before = issuer.state.seq
try:
    issuer.issue(report)
except StorageError as exc:
    print("ERR", exc)
assert not [p for p in (root / "outbox").iterdir()], "nothing half-written"
assert issuer.state.seq == before
filler.unlink()
issued = issuer.issue(report)
print("OK", issued.seq)
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")
def test_full_disk_is_a_clear_error_and_recovers(tmp_path: Path) -> None:
    """A real full filesystem: a 256 KiB tmpfs in a private user + mount namespace."""
    root = tmp_path / "tiny"
    root.mkdir()
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], check=False)
    if probe.returncode != 0:
        pytest.skip("user namespaces are not available")
    cmd = f'mount -t tmpfs -o size=256k none "{root}" && exec "$0" -c "$1" "{root}"'
    result = subprocess.run(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            cmd,
            sys.executable,
            ENOSPC_SCRIPT,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert result.returncode == 0, result.stderr
    assert "ERR cannot write" in result.stdout
    assert "no space left on the device" in result.stdout
    assert "OK 1" in result.stdout
