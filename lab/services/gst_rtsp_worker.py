"""GStreamer RTSP worker: every lab camera's RTSP server in one GLib main loop.

Run as ``/usr/bin/python3 -I gst_rtsp_worker.py`` (python3-gi is built for Debian's Python), by
:class:`lab.services.rtsp.RtspFleet` only. It imports nothing of ours. Protocol: one JSON object
per line on stdin, one JSON reply per line on stdout::

    {"op": "add", "streams": [{"netns", "host", "port", "paths"}, ...]}  (port 0: any free)
    {"op": "online", "netns": null, "host": "127.77.0.11", "port": 18554, "online": false}
    {"op": "quit"}                   (or EOF)
    -> {"ok": true, ...} | {"ok": false, "error": "..."}   ("add": {"ports": [bound, ...]})

The first line written is ``{"ok": true, "encoder": "x264enc"}`` once GStreamer is ready.
The servers ask for no login: each camera's RTSP front (``lab/rtsp.py``) checks logins, counts
failures toward the camera's lockout and is the only address clients are given.
A server in a network namespace creates its listening socket after ``setns`` into
``/run/netns/NAME`` on the main thread and switches straight back; such servers offer RTP over
the RTSP connection only (TCP interleaved), because their RTP sockets would otherwise be
created in the worker's own namespace.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
from typing import Any

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402  # after require_version

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def launch_line() -> tuple[str, str]:
    source = (
        "videotestsrc is-live=true pattern=ball "
        "! video/x-raw,width=320,height=240,framerate=10/1 ! "
    )
    if Gst.ElementFactory.find("x264enc") is not None:
        encoder = (
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 "
            "! rtph264pay name=pay0 pt=96"
        )
        return "x264enc", f"( {source}{encoder} )"
    return "jpegenc", f"( {source}jpegenc ! rtpjpegpay name=pay0 pt=26 )"


class Camera:
    """One RTSPServer for one (netns, host, port) with its mount points."""

    def __init__(self, spec: dict[str, Any], launch: str) -> None:
        self.netns: str | None = spec["netns"]
        self.server = GstRtspServer.RTSPServer()
        self.server.set_address(spec["host"])
        self.server.set_service(str(spec["port"]))
        self.source: GLib.Source | None = None
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        if self.netns is not None:
            factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        mounts = self.server.get_mount_points()
        for path in spec["paths"]:
            mounts.add_factory(path, factory)

    def up(self) -> None:
        if self.source is not None:
            return
        if self.netns is None:
            source = self.server.create_source(None)
        else:
            target = os.open(f"/run/netns/{self.netns}", os.O_RDONLY | os.O_CLOEXEC)
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(target)
                try:
                    source = self.server.create_source(None)
                finally:
                    setns(home)
            finally:
                os.close(target)
                os.close(home)
        source.attach(None)
        self.source = source

    def down(self) -> None:
        if self.source is None:
            return
        self.source.destroy()
        self.source = None
        self.server.client_filter(lambda *_: GstRtspServer.RTSPFilterResult.REMOVE, None)


class Worker:
    def __init__(self) -> None:
        self.encoder, self.launch = launch_line()
        self.cameras: dict[tuple[str | None, str, int], Camera] = {}  # (netns, host, port)
        self.loop = GLib.MainLoop()

    def handle(self, line: str) -> bool:
        try:
            command = json.loads(line)
            reply = self.dispatch(command)
        except (OSError, ValueError, KeyError, TypeError, GLib.Error) as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        return False  # one-shot idle callback

    def dispatch(self, command: dict[str, Any]) -> dict[str, Any]:
        op = command["op"]
        if op == "add":
            added = []
            for spec in command["streams"]:
                key = (spec["netns"], spec["host"], int(spec["port"]))
                if key in self.cameras:
                    raise ValueError(f"{key[1]}:{key[2]} is already served")
                camera = Camera(spec, self.launch)
                camera.up()
                bound = camera.server.get_bound_port()
                camera.server.set_service(str(bound))  # port 0: the same port after a reboot
                self.cameras[(spec["netns"], spec["host"], bound)] = camera
                added.append(bound)
            return {"ok": True, "ports": added}
        if op == "online":
            camera = self.cameras[(command.get("netns"), command["host"], int(command["port"]))]
            if command["online"]:
                camera.up()
            else:
                camera.down()
            return {"ok": True}
        if op == "quit":
            self.loop.quit()
            return {"ok": True}
        raise ValueError(f"unknown op {op!r}")

    def read_commands(self) -> None:
        for line in sys.stdin:
            if line.strip():
                GLib.idle_add(self.handle, line)
        GLib.idle_add(self.loop.quit)


def main() -> int:
    Gst.init(None)
    worker = Worker()
    threading.Thread(target=worker.read_commands, daemon=True).start()
    sys.stdout.write(json.dumps({"ok": True, "encoder": worker.encoder}) + "\n")
    sys.stdout.flush()
    worker.loop.run()
    for camera in worker.cameras.values():
        camera.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
