"""Host health of the machine running the agent, from psutil."""

from __future__ import annotations

import time
from pathlib import Path

import psutil

from protocol.messages import HostHealth


def host_health(state_dir: Path) -> HostHealth:
    return HostHealth(
        cpu_percent=psutil.cpu_percent(interval=None),
        memory_percent=psutil.virtual_memory().percent,
        disk_free_bytes=psutil.disk_usage(str(state_dir)).free,
        uptime_s=max(0.0, time.time() - psutil.boot_time()),
        load1=psutil.getloadavg()[0],
    )
