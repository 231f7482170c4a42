"""Free local ports for the private servers that tests and scripts start (and kill and start again)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10000


def ephemeral_low() -> int:
    """The first port the kernel hands to outgoing connections (32768 unless configured)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port(below: int | None = None) -> int:
    """A port nothing listens on, below the ephemeral range (or `below`): no process's outgoing
    connection can be given it, so a server killed and started again on it finds it still free."""
    high = max(below or ephemeral_low(), LOWEST + 1000)
    while True:
        port = random.randrange(LOWEST, high)
        if bindable(port):
            return port
