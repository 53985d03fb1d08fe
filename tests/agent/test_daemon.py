"""systemd integration: the notify protocol, the watchdog, SIGHUP reloads and SIGTERM, driven
through ``camwarden-agent run`` as a real process with a real ``AF_UNIX`` datagram socket; and
journald's native protocol against a real socket."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from agent.daemon import Service
from service.systemd import JournalHandler, Notifier, encode_journal, log_handler, under_journal
from tests.agent.support import AGENT, make_home, wait_for
from tests.support.mosquitto import free_port
from tests.support.notify import NotifySocket

CAMERA = '[[cameras]]\nid = "cam-{n}"\naddress = "127.0.0.1"\nhttp_port = {port}\n'


def cameras(n: int, port: int) -> str:
    return "".join(CAMERA.format(n=i, port=port) for i in range(n))


def test_run_speaks_the_notify_protocol(notify: NotifySocket, tmp_path: Path) -> None:
    """READY once up, WATCHDOG at half of WATCHDOG_USEC with STATUS, RELOADING/READY around a
    SIGHUP (a bad config is refused and the old one kept), STOPPING and a bounded exit."""
    config = make_home(tmp_path, free_port(), extra=cameras(2, free_port()), report_s=0.3)
    log = (tmp_path / "agent.log").open("wb")
    env = {**os.environ, "NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "400000"}
    agent = subprocess.Popen([*AGENT, "run", "--config", str(config)], stderr=log, env=env)
    try:
        wait_for(lambda: notify.count("READY=1") == 1)
        started = time.monotonic()
        wait_for(lambda: notify.count("WATCHDOG=1") >= 6)
        pings = notify.count("WATCHDOG=1") / (time.monotonic() - started)
        assert 3 <= pings <= 8, pings  # every 0.2 s: half of the 0.4 s watchdog
        wait_for(lambda: any("last audit" in s for s in notify.statuses()))
        assert notify.statuses()[-1].startswith("2 cameras, last audit ")
        assert notify.statuses()[-1].endswith(", broker disconnected")

        # a valid new config: three cameras
        config.write_text(config.read_text() + cameras(3, free_port()).replace("cam-", "new-"))
        agent.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.count("READY=1") == 2)
        assert "RELOADING=1" in notify.lines()
        assert any(line.startswith("MONOTONIC_USEC=") for line in notify.lines())
        wait_for(lambda: notify.statuses()[-1].startswith("5 cameras"))

        # an invalid one: refused, the agent keeps running with five cameras
        good = config.read_text()
        config.write_text(good + '[intervals]\nreport_s = "soon"\n')
        agent.send_signal(signal.SIGHUP)
        wait_for(lambda: notify.count("READY=1") == 3)
        assert notify.count("RELOADING=1") == 2
        wait_for(lambda: "reload failed" in (tmp_path / "agent.log").read_text())
        text = (tmp_path / "agent.log").read_text()
        assert f"{config}:" in text
        assert "intervals" in text
        before = notify.count("WATCHDOG=1")
        wait_for(lambda: notify.count("WATCHDOG=1") > before + 2)
        assert notify.statuses()[-1].startswith("5 cameras")
        assert agent.poll() is None

        stopped = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
        took = time.monotonic() - stopped
    finally:
        if agent.poll() is None:
            agent.kill()
        log.close()
    assert "STOPPING=1" in notify.lines()
    assert took < 5  # shutdown_grace_s is 3


def test_no_notify_socket_no_notifications(tmp_path: Path) -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.watchdog_s is None
    notifier.send("READY=1")  # nothing happens


def test_watchdog_for_another_pid_is_not_ours() -> None:
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier(env).watchdog_s is None
    assert Notifier({**env, "WATCHDOG_PID": str(os.getpid())}).watchdog_s == 1.0


async def test_a_stalled_loop_stops_pinging(notify: NotifySocket) -> None:
    env = {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "100000"}
    service = Service(Notifier(env), lambda: "busy")
    service.ready()
    await asyncio.sleep(0.3)
    running = notify.count("WATCHDOG=1")
    assert running >= 4
    time.sleep(0.5)  # noqa: ASYNC251  # the stall under test: the loop does not run
    assert notify.count("WATCHDOG=1") <= running + 1  # at most the one queued before
    await service.stopping()
    assert notify.lines()[-2:] == ["STOPPING=1", "STATUS=stopping: flushing the outbox"]


async def test_failed_notifications_are_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    notifier.send("READY=1")
    notifier.send("STATUS=x")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "cannot notify systemd" in warnings[0].getMessage()


def parse_journal(data: bytes) -> dict[str, str]:
    """journald's reader side of the native protocol."""
    fields: dict[str, str] = {}
    while data:
        head, newline, rest = data.partition(b"\n")
        assert newline
        if b"=" in head:
            key, _, value = head.partition(b"=")
            fields[key.decode()] = value.decode()
            data = rest
        else:
            (size,) = struct.unpack("<Q", rest[:8])
            fields[head.decode()] = rest[8 : 8 + size].decode()
            assert rest[8 + size : 9 + size] == b"\n"
            data = rest[9 + size :]
    return fields


def test_journal_fields_on_a_real_socket(tmp_path: Path) -> None:
    path = tmp_path / "journal.sock"
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(path))
    handler = JournalHandler("camwarden-agent", str(path))
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("camwarden.test.journal")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "camera %s fails %s\nsecond line",
            "lobby",
            "TLS-01",
            extra={"CAMERA": "lobby", "CHECK": "tls", "FINDING_CODE": "TLS-01", "lower": "x"},
        )
        fields = parse_journal(journal.recv(65536))
    finally:
        logger.removeHandler(handler)
        handler.close()
        journal.close()
    assert fields["MESSAGE"] == "camera lobby fails TLS-01\nsecond line"
    assert fields["PRIORITY"] == "4"
    assert fields["SYSLOG_IDENTIFIER"] == "camwarden-agent"
    assert fields["LOGGER"] == "camwarden.test.journal"
    assert fields["CODE_FUNC"] == "test_journal_fields_on_a_real_socket"
    assert (fields["CAMERA"], fields["CHECK"], fields["FINDING_CODE"]) == ("lobby", "tls", "TLS-01")
    assert "lower" not in fields


def test_encoding_is_binary_safe_for_newlines() -> None:
    data = encode_journal({"A": "one", "B": "two\nlines"})
    assert data == b"A=one\nB\n" + struct.pack("<Q", 9) + b"two\nlines\n"
    assert parse_journal(data) == {"A": "one", "B": "two\nlines"}


def test_journal_when_journal_stream_is_stderr(tmp_path: Path) -> None:
    with (tmp_path / "stream").open("w") as stream:
        st = os.fstat(stream.fileno())
        env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        assert under_journal(env, stream)
        assert not under_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"}, stream)
        assert not under_journal({}, stream)
        handler = log_handler("camwarden-agent", env, stream)
        assert isinstance(handler, JournalHandler)
        handler.close()
        plain = log_handler("camwarden-agent", {}, stream)
        assert type(plain) is logging.StreamHandler
