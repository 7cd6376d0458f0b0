"""Ack → anchored latency on the embedded ledger at half capacity, and a soak at that rate.

    python -m bench anchoring                    # capacity, then 2 minutes at half of it
    python -m bench anchoring --minutes 20       # the long soak

First the notary's capacity for one-record POSTs is measured with the Go load generator (128 clients,
`bidtrace notary serve`, SQLite, sealing every second on the embedded ledger). Then a fresh notary is
offered half that rate by paced clients, one record per POST, for the soak's length. Each acknowledged
record's leaf is matched to the first anchor that covers it (GET /v1/anchors, polled every 50 ms, so a
latency is late by at most that), giving ack → anchored latency; per window the table shows what was
acknowledged, errors, request and anchoring latencies, and the server's resident memory (all processes).
"""

import argparse
import bisect
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.common import machine, percentile, table
from bench.ingest import build_tools, drive, notary_server, register, write_submissions


def rss_mib(pid: int) -> float:
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False).stdout.split()
    total = 0
    for p in [pid, *map(int, children)]:
        with contextlib.suppress(OSError):
            for row in Path(f"/proc/{p}/status").read_text().splitlines():
                if row.startswith("VmRSS:"):
                    total += int(row.split()[1])
    return total / 1024


class Anchors:
    """Anchored sizes as first seen, in time order."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.times: list[float] = []
        self.sizes: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as http:
            after = -1
            while not self.stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    rows = http.get("/v1/anchors", params={"after_size": after, "limit": 1000}).json()
                    now = time.monotonic()
                    for row in rows:
                        self.times.append(now)
                        self.sizes.append(int(row["size"]))
                        after = int(row["size"])
                time.sleep(0.05)

    def anchored_at(self, leaf: int) -> float | None:
        """When an anchor covering `leaf` was first seen."""
        i = bisect.bisect_right(self.sizes, leaf)  # sizes only grow: first size > leaf
        return self.times[i] if i < len(self.sizes) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the soak at half capacity")
    parser.add_argument("--window", type=float, default=30.0, help="seconds per row of the soak table")
    parser.add_argument("--clients", type=int, default=32, help="paced clients sharing the offered rate")
    parser.add_argument("--rate", type=float, default=0.0, help="offered records/s (default: half the capacity)")
    args = parser.parse_args(argv)
    print(f"# Ack → anchored latency and soak (embedded ledger)\n{machine()}\n", flush=True)
    loadgen, _ = build_tools()
    with tempfile.TemporaryDirectory(prefix="bidtrace-anchoring-") as tmpdir:
        tmp = Path(tmpdir)
        rate = args.rate
        if not rate:
            probe = write_submissions(tmp / "probe.bin", 1, 30_000)
            (tmp / "capacity").mkdir()
            with notary_server(tmp / "capacity", None, 1) as (base, _pid):
                register(base, probe.keys)
                capacity = drive(loadgen, f"{base}/v1/records", 128, 10, bodies=probe)
            rate = capacity["rate"] / 2
            print(f"capacity: {capacity['rate']:,.0f}/s at 128 clients; offering half: {rate:,.0f}/s", flush=True)
        seconds = args.minutes * 60
        count = int(rate * seconds * 1.1) + args.clients
        soak = write_submissions(tmp / "soak.bin", 1, count)
        bodies = _bodies(soak.path)
        (tmp / "soak").mkdir()
        with notary_server(tmp / "soak", None, 1) as (base, pid):
            register(base, soak.keys)
            anchors = Anchors(base)
            poller = threading.Thread(target=anchors.run, daemon=True)
            poller.start()
            acks: list[tuple[float, float, int]] = []  # (ack time, request latency, leaf)
            errors: list[tuple[float, str]] = []
            memory: list[tuple[float, float]] = []
            lock = threading.Lock()
            start = time.monotonic() + 0.5
            interval = args.clients / rate  # each client's spacing between POSTs

            def client(c: int) -> None:
                with httpx.Client(base_url=base, timeout=60) as http:
                    n = 0
                    while True:
                        due = start + c * interval / args.clients + n * interval
                        index = c + n * args.clients
                        if due > start + seconds or index >= len(bodies):
                            return
                        time.sleep(max(0.0, due - time.monotonic()))
                        t = time.monotonic()
                        try:
                            r = http.post("/v1/records", content=bodies[index],
                                          headers={"content-type": "application/json"})
                            leaf = r.json()["receipts"][0]["leaf_index"] if r.status_code == 200 else None
                        except (httpx.HTTPError, ValueError, KeyError) as exc:
                            leaf, r = None, None
                            with lock:
                                errors.append((t, str(exc)))
                        done = time.monotonic()
                        with lock:
                            if leaf is not None:
                                acks.append((done, done - t, leaf))
                            elif r is not None:
                                errors.append((t, f"{r.status_code} {r.text[:200]}"))
                        n += 1

            threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
            for t in threads:
                t.start()
            while any(t.is_alive() for t in threads):
                memory.append((time.monotonic(), rss_mib(pid)))
                time.sleep(1)
            for t in threads:
                t.join()
            settle = time.monotonic() + 10  # let the last records be anchored
            while acks and anchors.anchored_at(max(a[2] for a in acks)) is None and time.monotonic() < settle:
                time.sleep(0.1)
            anchors.stop.set()
            poller.join()
        rows = []
        w = 0
        while start + w * args.window < start + seconds:
            lo, hi = start + w * args.window, start + (w + 1) * args.window
            mine = [a for a in acks if lo <= a[0] < hi]
            lat = sorted(a[1] for a in mine)
            anchored = sorted(t - a[0] for a in mine if (t := anchors.anchored_at(a[2])) is not None)
            mem = [m for t, m in memory if lo <= t < hi]
            rows.append([f"{w * args.window:.0f}–{(w + 1) * args.window:.0f}s", f"{len(mine) / args.window:,.0f}/s",
                         str(sum(1 for t, _ in errors if lo <= t < hi)),
                         f"{percentile(lat, 0.5) * 1e3:.1f} ms", f"{percentile(lat, 0.99) * 1e3:.1f} ms",
                         f"{percentile(anchored, 0.5) * 1e3:,.0f} ms", f"{percentile(anchored, 0.99) * 1e3:,.0f} ms",
                         f"{len(mine) - len(anchored)}", f"{max(mem) if mem else float('nan'):,.0f} MiB"])
            w += 1
        everything = sorted(t - a[0] for a in acks if (t := anchors.anchored_at(a[2])) is not None)
        print(f"\noffered {rate:,.0f}/s for {seconds:.0f}s from {args.clients} paced clients: "
              f"{len(acks):,} acknowledged, {len(errors)} errors"
              + (f" (first: {errors[0][1]})" if errors else ""))
        print(f"ack → anchored over the whole run: p50 {percentile(everything, 0.5) * 1e3:,.0f} ms, "
              f"p99 {percentile(everything, 0.99) * 1e3:,.0f} ms, "
              f"{len(acks) - len(everything)} acknowledged records not seen anchored")
        print(table(["window", "acked", "errors", "request p50", "request p99", "ack→anchored p50",
                     "ack→anchored p99", "not anchored", "server RSS max"], rows))
    return 0


def _bodies(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, i = [], 0
    while i < len(data):
        size = int.from_bytes(data[i:i + 4], "big")
        out.append(data[i + 4:i + 4 + size])
        i += 4 + size
    return out


if __name__ == "__main__":
    sys.exit(main())
