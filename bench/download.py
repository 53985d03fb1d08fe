"""Firmware download through the agent's updater vs curl, same file, same server, same run.

A 200 MB image is published in a TUF repository served by the collector's HTTP app (uvicorn
on loopback). Each round downloads it once with ``curl -o`` and once with
``agent.firmware.updater.FirmwareUpdater`` (metadata refresh, streaming download into the
partial file, ngclient's length and SHA-256 verification over the whole file, persisted),
each in its own process, the two in alternating order from round to round. Printed: median
throughput of each (MB/s) and their ratio (target >= 0.9), with the median of the per-round
ratios next to it, and the peak RSS growth of the agent's downloading process over its RSS
once its imports are loaded (target <= 15 MB; ``/proc/self/clear_refs`` resets the peak
first). Also printed, because wall-clock rates on a shared machine follow its load: the CPU
seconds per download of the client (curl, the agent's process) and of the server (the uvicorn
thread in this process), and the load average.

    python bench/download.py [--mb 200] [--rounds 9]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child(base_url: str, root_file: str, cache: str, target: str) -> None:
    from agent.firmware.updater import FirmwareUpdater  # noqa: PLC0415

    updater = FirmwareUpdater(Path(cache), base_url, Path(root_file).read_bytes())
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status("VmRSS")
    start, cpu = time.perf_counter(), _cpu(resource.RUSAGE_SELF)
    facts = updater.find(target)
    found = time.perf_counter() - start
    got = updater.download(facts)
    elapsed, cpu = time.perf_counter() - start, _cpu(resource.RUSAGE_SELF) - cpu
    growth = _status("VmHWM") - before
    size = got.path.stat().st_size
    print(
        json.dumps({"s": elapsed, "find": found, "cpu": cpu, "bytes": size, "rss_growth": growth})
    )


def main() -> int:  # noqa: PLR0915  # set-up, rounds and report in one readable place
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--child", nargs=4)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0

    from lab.firmware import make_image  # noqa: PLC0415
    from protocol import generate_private_key  # noqa: PLC0415
    from server.api import create_app  # noqa: PLC0415
    from server.config import DatabaseConfig, ServerConfig  # noqa: PLC0415
    from server.firmware.tuf_repo import TufRepository  # noqa: PLC0415
    from server.storage import Repository  # noqa: PLC0415
    from tests.server.conftest import serve  # noqa: PLC0415
    from tests.support.firmware import MODEL, publish_image, published_repo  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        state = tmp / "collector"
        state.mkdir()
        url = f"sqlite:///{state / 'c.db'}"
        store = Repository.open(url)
        store.migrate()
        published_repo(state, store)
        image = make_image("hikvision", "V5.8.0", dt.date(2024, 6, 1), args.mb * 10**6, model=MODEL)
        view = publish_image(state, store, image, version="V5.8.0")
        del image
        root = tmp / "root.json"
        root.write_bytes(TufRepository.under(state).trusted_root() or b"")
        stored = next((state / "tuf" / "targets").rglob(f"*.{Path(view.target_path).name}"))
        app = create_app(
            ServerConfig(state_dir=str(state), database=DatabaseConfig(url=url)),
            store,
            command_key=generate_private_key(),
        )
        curl_s, agent_s, find_s, growth, load = [], [], [], [], [os.getloadavg()[0]]
        cpu: dict[str, list[float]] = {k: [] for k in ("curl", "agent", "srv-curl", "srv-agent")}
        with serve(app) as http:
            base = str(http.base_url).rstrip("/")
            file_url = f"{base}/tuf/targets/{view.target_path.rsplit('/', 1)[0]}/{stored.name}"

            def run_curl(n: int) -> None:
                out = tmp / f"curl-{n}.bin"
                start, server = time.perf_counter(), time.process_time()
                client = _cpu(resource.RUSAGE_CHILDREN)
                subprocess.run(["curl", "-sSf", "-o", str(out), file_url], check=True)
                curl_s.append(time.perf_counter() - start)
                cpu["srv-curl"].append(time.process_time() - server)
                cpu["curl"].append(_cpu(resource.RUSAGE_CHILDREN) - client)
                assert out.stat().st_size == view.length
                out.unlink()

            def run_agent(n: int) -> None:
                cache = tmp / f"agent-{n}"
                server = time.process_time()
                run = subprocess.run(
                    [sys.executable, __file__, "--child", base, str(root), str(cache),
                     view.target_path],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                cpu["srv-agent"].append(time.process_time() - server)  # incl. its start-up
                result = json.loads(run.stdout.strip().splitlines()[-1])
                cpu["agent"].append(result["cpu"])
                assert result["bytes"] == view.length
                agent_s.append(result["s"])
                find_s.append(result["find"])
                growth.append(result["rss_growth"])
                subprocess.run(["rm", "-rf", str(cache)], check=True)

            for n in range(args.rounds):  # alternate who goes first: no order bias
                for run_one in (run_curl, run_agent) if n % 2 == 0 else (run_agent, run_curl):
                    run_one(n)
                load.append(os.getloadavg()[0])
        store.close()
    mb = view.length / 10**6
    curl_rate, agent_rate = mb / statistics.median(curl_s), mb / statistics.median(agent_s)
    print(f"image {mb:.0f} MB, {args.rounds} rounds (medians)")
    print(f"curl                 {curl_rate:8.1f} MB/s")
    print(f"agent updater        {agent_rate:8.1f} MB/s  (incl. TUF refresh + SHA-256 verify)")
    print(f"  of which TUF refresh {statistics.median(find_s) * 1000:6.0f} ms  (median)")
    print(f"ratio agent/curl     {agent_rate / curl_rate:8.2f}  (target >= 0.90)")
    paired = statistics.median(c / a for c, a in zip(curl_s, agent_s, strict=True))
    print(f"  per round, median  {paired:8.2f}  (curl's time / agent's time in the same round)")
    print(f"peak RSS growth      {max(growth) / 2**20:8.1f} MB  (target <= 15 MB)")
    print(
        "CPU s per download   "
        + "  ".join(f"{k} {statistics.median(v):.2f}" for k, v in cpu.items())
    )
    print(f"load average (1 min) {min(load):.2f} .. {max(load):.2f}  ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
