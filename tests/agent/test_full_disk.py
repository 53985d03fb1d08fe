"""A full disk under a running ``camwarden-agent run``: a clear error, no crash, and recovery
when space returns. The state directory is a 512 KiB tmpfs mounted in a private mount namespace
(``unshare --user --map-root-user --mount``), filled and freed through ``/proc/<pid>/root``."""

from __future__ import annotations

import errno
import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.agent.support import agent_key, decode_all, make_home, wait_for
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt import Subscriber

pytestmark = pytest.mark.integration


def fill(path: Path) -> int:
    """Write ``path`` until the file system is full; return the bytes written."""
    written = 0
    with path.open("wb", buffering=0) as fh:
        while True:
            try:
                written += fh.write(b"\0" * 4096)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return written


def test_full_disk_is_reported_and_survived(mosquitto: Mosquitto, tmp_path: Path) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    # no audit worker: its inventory write would report the same full disk in the same log
    config = make_home(
        tmp_path, mosquitto.port, extra="[audit]\nenabled = false", heartbeat_s=0.1, report_s=0.3
    )
    state = tmp_path / "state"
    state.mkdir()
    script = (
        f'mount -t tmpfs -o size=512k,mode=0700 camwarden-test "{state}" && '
        f'exec "{sys.executable}" -m agent run --config "{config}"'
    )
    sub = Subscriber(mosquitto.port)
    log = (tmp_path / "agent.log").open("wb")
    agent = subprocess.Popen(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script], stderr=log
    )
    try:
        inside = Path(f"/proc/{agent.pid}/root") / state.relative_to("/")
        wait_for((inside / "state.json").exists, timeout=30)
        wait_for(lambda: len(sub.snapshot()) >= 3)
        filler = inside / "filler"
        assert fill(filler) > 0
        text = (tmp_path / "agent.log").read_text
        wait_for(lambda: "no space left on the device" in text())
        assert agent.poll() is None
        assert text().count("no space left on the device") == 1  # once per episode
        filler.unlink()
        wait_for(lambda: "accepts messages again" in text())
        last = int(json.loads((inside / "state.json").read_text())["seq"])
        wait_for(
            lambda: (
                set(range(1, last + 1))
                <= set(decode_all([p for _, p in sub.snapshot()], agent_key(config)))
            )
        )
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        log.close()
        sub.close()
