"""How many cameras one notary sustains at one 10-second segment per camera, and where the limit is.

The notary runs in its own process (`bidtrace notary serve` through bench.ingest: SQLite WAL with
synchronous=FULL, the sealer anchoring on the embedded ledger every second). This process simulates the
camera agents with the real device code: AGENTS agents, each with its own registered ECDSA P-256 key and
its own durable EvidenceQueue (SQLite, synchronous=FULL) whose sender thread submits over HTTP with
backoff, exactly as `bidtrace device record` does. Time is compressed: to simulate N cameras, each agent
produces a hash-chained `recording_segment` record every 10 × AGENTS / N seconds, so the notary receives
N / 10 segments per second, as from N real cameras. (Segment *files* are not written: hashing is measured
by bench.devices_hash; this measures the notary and the queues.)

For each step the offered load runs STEP seconds; then we measure the acknowledged rate, the latency from
enqueue (durable on the agent) to receipt, and the backlog left in the queues. A step is sustained when
the acknowledged rate is >= 97 % of the offered rate, the p95 latency stays below 2 s (a fifth of the
segment period) and the backlog at the end is below one second's worth of segments.

    python -m bench.devices_cameras [--agents 32] [--step 10] [--cameras 1000,2000,4000,...]
"""

import argparse
import hashlib
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.common import Deadline, machine, percentile, table
from bench.ingest import notary_server
from devices.queue import EvidenceQueue, record_hash
from notary.client import NotaryClient, SubmitterKey
from verifier.receipt import Receipt

CST = timezone(timedelta(hours=8))
START = datetime(2026, 11, 26, 9, 30, tzinfo=CST)
SEGMENT = 10.0


@dataclass
class Agent:
    index: int
    queue: EvidenceQueue
    next_segment: int = 0
    previous: str | None = None

    def segment(self) -> dict[str, Any]:
        s = self.next_segment
        digest = hashlib.sha256(f"{self.index}/{s}".encode()).hexdigest()
        t0, t1 = START + timedelta(seconds=SEGMENT * s), START + timedelta(seconds=SEGMENT * (s + 1))
        device = self.queue.key.submitter_id
        rec = {"type": "recording_segment", "project_id": "BENCH-CAM", "session_id": "S-1", "venue_id": "V-1",
               "device_id": device, "occurred_at": t1.isoformat(),
               "payload": {"camera_id": f"cam{self.index}", "segment_index": s, "start": t0.isoformat(),
                           "end": t1.isoformat(), "frame_count": 250, "sha256": digest,
                           "previous_segment": self.previous},
               "attachments": [{"name": f"cam{self.index}-{s:06d}.mp4", "sha256": digest, "size": 6_000_000,
                                "media_type": "video/mp4"}]}
        self.previous = digest
        self.next_segment += 1
        return rec


@dataclass
class Tracker:
    lock: threading.Lock = field(default_factory=threading.Lock)
    enqueued_at: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    acked: int = 0

    def sent(self, receipts: list[Receipt]) -> None:
        now = time.perf_counter()
        with self.lock:
            for r in receipts:
                t = self.enqueued_at.pop(r.record_hash.hex(), None)
                if t is not None:
                    self.latencies.append(now - t)
                    self.acked += 1


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        parts = [float(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def run_step(agents: list[Agent], tracker: Tracker, cameras: int, seconds: float) -> dict[str, Any]:
    interval = SEGMENT * len(agents) / cameras  # each agent's period between segments
    with tracker.lock:
        tracker.latencies.clear()
        tracker.acked = 0
    busy0, total0 = cpu_times()
    own0 = time.process_time()
    t0 = time.perf_counter()
    counts = [0] * len(agents)

    def produce(i: int) -> None:  # one producer per agent: its segments, on its own schedule
        due = t0 + interval * i / len(agents)
        deadline = Deadline(seconds)
        while not deadline.passed():
            now = time.perf_counter()
            if due > now:
                time.sleep(min(due - now, 0.05))
                continue
            rec = agents[i].segment()
            with tracker.lock:
                tracker.enqueued_at[record_hash(rec)] = time.perf_counter()
            agents[i].queue.enqueue([rec])
            counts[i] += 1
            due += interval

    threads = [threading.Thread(target=produce, args=(i,), daemon=True) for i in range(len(agents))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    produced = sum(counts)
    elapsed = time.perf_counter() - t0
    busy1, total1 = cpu_times()
    own = time.process_time() - own0
    backlog = sum(a.queue.status().pending for a in agents)
    with tracker.lock:
        lat = sorted(tracker.latencies)
        acked = tracker.acked
    cores = os.cpu_count() or 1
    machine_busy = (busy1 - busy0) / (total1 - total0) * cores if total1 > total0 else float("nan")
    return {"cameras": cameras, "offered": cameras / SEGMENT, "produced": produced / elapsed,
            "acked": acked / elapsed, "p50": percentile(lat, 0.5), "p95": percentile(lat, 0.95),
            "max": lat[-1] if lat else float("nan"), "backlog": backlog, "cpu_total": machine_busy,
            "cpu_agents": own / elapsed}


def drain(agents: list[Agent], timeout: float) -> bool:
    deadline = Deadline(timeout)
    while not deadline.passed():
        if all(a.queue.status().pending == 0 for a in agents):
            return True
        time.sleep(0.1)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--step", type=float, default=10.0, help="seconds per load step")
    parser.add_argument("--cameras", default="1000,2000,4000,6000,8000,10000,12000,16000")
    parser.add_argument("--batch", type=int, default=50, help="queue batch size (records per submission)")
    args = parser.parse_args()
    steps = [int(x) for x in args.cameras.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bidtrace-cams-"))
    tracker = Tracker()
    agents: list[Agent] = []
    rows: list[dict[str, Any]] = []
    try:
        (tmp / "notary").mkdir()
        with notary_server(tmp / "notary", None, workers=1) as (url, _pid):
            admin = NotaryClient(url)
            for i in range(args.agents):
                key = SubmitterKey.generate(f"V-1.cam{i}")
                admin.register(key, "device", "V-1", "recorder")
                q = EvidenceQueue(tmp / "agents" / f"cam{i}.db", key, NotaryClient(url, timeout=30),
                                  batch_size=args.batch, backoff_initial=0.05, backoff_max=1.0)
                q.on_sent = tracker.sent
                q.start()
                agents.append(Agent(i, q))
            admin.close()
            for cameras in steps:
                row = run_step(agents, tracker, cameras, args.step)
                row["ok"] = (row["acked"] >= 0.97 * row["offered"] and row["p95"] < 2.0
                             and row["backlog"] < row["offered"])
                rows.append(row)
                print(f"  {cameras} cameras: offered {row['offered']:.0f}/s acked {row['acked']:.0f}/s "
                      f"p95 {row['p95'] * 1000:.0f} ms backlog {row['backlog']}", flush=True)
                drained = drain(agents, 60)
                if not row["ok"] and len(rows) >= 2 and not rows[-2]["ok"]:
                    break
                if not drained:
                    print("  backlog did not drain within 60 s; stopping the ramp")
                    break
            for a in agents:
                a.queue.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(machine())
    print(f"\n{args.agents} simulated camera agents (time-compressed), one durable queue each, "
          f"{args.step:.0f} s per step, notary in its own process\n")
    print(table(
        ["cameras", "offered seg/s", "produced seg/s", "acked seg/s", "p50", "p95", "max", "backlog at end",
         "CPU (cores) all/agents", "sustained"],
        [[str(r["cameras"]), f"{r['offered']:.0f}", f"{r['produced']:.0f}", f"{r['acked']:.0f}",
          f"{r['p50'] * 1000:.0f} ms", f"{r['p95'] * 1000:.0f} ms", f"{r['max'] * 1000:.0f} ms", str(r["backlog"]),
          f"{r['cpu_total']:.2f} / {r['cpu_agents']:.2f}", "yes" if r["ok"] else "no"] for r in rows]))
    sustained = 0
    for r in rows:
        if not r["ok"]:
            break
        sustained = r["cameras"]
    print(f"\nsustained (every step up to it within the criteria): {sustained} cameras per notary on this machine")


if __name__ == "__main__":
    main()
