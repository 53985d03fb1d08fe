"""The systemd side of the notify protocol, for tests of ``Type=notify`` services."""

from __future__ import annotations

import socket


class NotifySocket:
    """The systemd side: a bound datagram socket collecting every notification."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.05)
        self.messages: list[list[str]] = []

    def poll(self) -> list[list[str]]:
        while True:
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return self.messages
            self.messages.append(data.decode().split("\n"))

    def lines(self) -> list[str]:
        return [line for message in self.poll() for line in message]

    def count(self, line: str) -> int:
        return self.lines().count(line)

    def statuses(self) -> list[str]:
        return [line[7:] for line in self.lines() if line.startswith("STATUS=")]
