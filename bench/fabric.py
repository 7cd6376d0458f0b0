"""Fabric: records anchored per second end to end against one transaction per record; ack → anchored latency;
network `up` and `add-org` times. All on one fresh three-organisation network, in one run.

* naive: one endorsed, ordered, committed transaction per record (the contract's `register_log`, a write of
  about the size a record would be), through the Python Gateway client, at concurrency 1, 32 and 128;
* end to end: the product, `bidtrace notary serve --ledger fabric` in its own process; clients POST
  pre-signed batches of 1,000 recording segments over HTTP; the clock stops when the notary reports the
  last record anchored (checkpoint sealed, VALID on Fabric, its evidence stored);
* latency: records offered at a steady rate (batches every 0.1 s); for each batch, from its acknowledgement
  to the first moment /healthz shows an anchored size covering it (polled every 20 ms).

    python -m bench.fabric [--records 200000] [--seconds 10] [--port-base 47000] [--batch-timeout 500ms]
                           [--workers 1] [--clients 2]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from bench.common import Deadline, fmt_rate, machine, percentile, table
from bench.ingest import _free_port, signed_bodies
from verifier.note import NoteKey


def naive_rate(ledger: object, concurrency: int, transactions: int) -> float:
    """Committed transactions per second, one per record."""
    from anchors.fabric import FabricLedger

    assert isinstance(ledger, FabricLedger)
    public = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    vkey = NoteKey("bidtrace.bench/naive", public).vkey()
    ids = [f"naive-{uuid.uuid4().hex}" for _ in range(transactions)]

    def one(log_id: str) -> None:
        ledger.contract.submit_transaction("register_log", log_id, vkey)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, ids))
    return transactions / (time.perf_counter() - started)


@contextmanager
def notary_on_fabric(home: Path, workdir: Path, seal_interval: float, workers: int = 1) -> Iterator[str]:
    """`bidtrace notary serve --ledger fabric --insecure-local` in its own process; yields its base URL."""
    port = _free_port()
    env = {**os.environ, "BIDTRACE_FABRIC_HOME": str(home)}
    cmd = [sys.executable, "-m", "bidtrace", "notary", "serve", "--ledger", "fabric", "--org", "ProvinceMSP",
           "--log-id", f"bench-{uuid.uuid4().hex[:8]}", "--data", str(workdir), "--port", str(port),
           "--seal-interval", str(seal_interval), "--workers", str(workers), "--insecure-local"]
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "server.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = Deadline(60)
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"notary exited: {(workdir / 'server.log').read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if deadline.passed():
                    raise RuntimeError("notary did not come up within 60 s")
                time.sleep(0.1)
            yield base
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()  # our own child, by its handle
                proc.wait(timeout=10)


def _device(base: str, name: str) -> object:
    from notary.client import NotaryClient, SubmitterKey

    key = SubmitterKey.generate(name)
    admin = NotaryClient(base)  # loopback-only notary: the operator registers without a key
    admin.register(key, "device", name.split(".")[0], "recorder")
    admin.close()
    return key


def _anchored(base: str) -> int:
    return int(httpx.get(f"{base}/healthz", timeout=10).json()["anchored_size"])


def end_to_end(home: Path, workdir: Path, records: int, clients: int = 2, batch: int = 1000,
               workers: int = 1) -> dict[str, float]:
    """Records/s from the first POST until the last record is anchored on Fabric."""
    with notary_on_fabric(home, workdir, seal_interval=0.5, workers=workers) as base:
        per_client = records // (clients * batch)
        plans = [signed_bodies(_device(base, f"V-JINAN-01.cam{c}"), "V-JINAN-01", batch, per_client)
                 for c in range(clients)]
        acked = [0] * clients

        # With several workers, a fresh connection per request lets the kernel spread them over the workers.
        headers = {"content-type": "application/json", **({"connection": "close"} if workers > 1 else {})}

        def client(c: int) -> None:
            with httpx.Client(base_url=base, timeout=120) as http:
                for body in plans[c]:
                    r = http.post("/v1/records", content=body, headers=headers)
                    r.raise_for_status()
                    acked[c] += len(r.json()["receipts"])

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ingested = time.perf_counter() - started
        total = sum(acked)
        deadline = Deadline(120)
        while _anchored(base) < total and not deadline.passed():
            time.sleep(0.02)
        anchored = time.perf_counter() - started
        if _anchored(base) < total:
            raise RuntimeError(f"only {_anchored(base)} of {total} records anchored after 120 s")
    return {"records": total, "ingest_rate": total / ingested, "end_to_end_rate": total / anchored,
            "seconds": anchored}


def latency(home: Path, workdir: Path, offered: int, seconds: float) -> dict[str, float]:
    """Ack → anchored latency percentiles at `offered` records/s (a batch every 0.1 s)."""
    batch = max(1, offered // 10)
    with notary_on_fabric(home, workdir, seal_interval=0.5) as base:
        bodies = signed_bodies(_device(base, "V-QINGDAO-02.cam1"), "V-QINGDAO-02", batch,
                               int(seconds * 10))
        polls: list[tuple[float, int]] = []
        stop = threading.Event()

        def poll() -> None:
            with httpx.Client(base_url=base, timeout=10) as http:
                while not stop.is_set():
                    polls.append((time.perf_counter(), int(http.get("/healthz").json()["anchored_size"])))
                    time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        acks: list[tuple[float, int]] = []  # (ack time, last leaf index + 1)
        with httpx.Client(base_url=base, timeout=60) as http:
            start = time.perf_counter()
            for i, body in enumerate(bodies):
                pause = start + i * 0.1 - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                r = http.post("/v1/records", content=body, headers={"content-type": "application/json"})
                r.raise_for_status()
                acks.append((time.perf_counter(), 1 + max(x["leaf_index"] for x in r.json()["receipts"])))
        sent = time.perf_counter() - start
        deadline = Deadline(60)
        while (not polls or polls[-1][1] < acks[-1][1]) and not deadline.passed():
            time.sleep(0.05)
        stop.set()
        poller.join()
    waits: list[float] = []
    for acked_at, covered in acks:
        anchored_at = next((t for t, size in polls if size >= covered and t >= acked_at), None)
        if anchored_at is None:
            raise RuntimeError(f"records up to {covered} were never seen anchored")
        waits += [anchored_at - acked_at] * batch
    waits.sort()
    return {"offered": offered, "achieved": len(waits) / sent, "p50": percentile(waits, 0.5),
            "p99": percentile(waits, 0.99), "max": waits[-1]}


def main(argv: list[str] | None = None) -> int:
    from anchors.fabric import FabricLedger
    from network.build import resolve
    from network.layout import DEFAULT_ORGS
    from network.topology import FabricNetwork

    parser = argparse.ArgumentParser(prog="python -m bench.fabric")
    parser.add_argument("--records", type=int, default=200_000, help="records for the end-to-end run")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of offered load per latency run")
    parser.add_argument("--port-base", type=int, default=47000)
    parser.add_argument("--batch-timeout", default="500ms", help="the orderer's batch timeout")
    parser.add_argument("--workers", type=int, default=1, help="notary HTTP workers for the end-to-end run")
    parser.add_argument("--clients", type=int, default=2, help="HTTP clients for the end-to-end run")
    args = parser.parse_args(argv)

    print(machine(), flush=True)
    bins = resolve()
    tmp = Path(tempfile.mkdtemp(prefix="bench-fabric-"))
    net = FabricNetwork(tmp / "fabric", list(DEFAULT_ORGS), args.port_base, bins, log=lambda m: None,
                        batch_timeout=args.batch_timeout)
    results: dict[str, object] = {}
    try:
        started = time.perf_counter()
        net.up()
        results["up_seconds"] = time.perf_counter() - started
        print(f"network up from nothing in {results['up_seconds']:.1f} s", flush=True)
        ledger = FabricLedger.from_profile(net.profile_file(net.org("ProvinceMSP")))
        naive = {}
        for concurrency, n in ((1, 20), (32, 640), (128, 1280)):
            naive[concurrency] = naive_rate(ledger, concurrency, n)
            print(f"naive, one transaction per record, concurrency {concurrency}: {naive[concurrency]:.1f} tx/s",
                  flush=True)
        ledger.close()
        e2e = end_to_end(tmp / "fabric", tmp / "e2e", args.records, args.clients, workers=args.workers)
        print(f"end to end: {e2e['records']:,} records anchored in {e2e['seconds']:.1f} s → "
              f"{fmt_rate(e2e['end_to_end_rate'])} (ingest alone {fmt_rate(e2e['ingest_rate'])})", flush=True)
        lat = [latency(tmp / "fabric", tmp / f"lat{r}", r, args.seconds) for r in (1000, 10_000)]
        for row in lat:
            print(f"offered {row['offered']:,}/s (achieved {row['achieved']:,.0f}/s): ack → anchored "
                  f"p50 {row['p50']:.2f} s, p99 {row['p99']:.2f} s, max {row['max']:.2f} s", flush=True)
        started = time.perf_counter()
        net.add_org("YantaiMSP")
        results["add_org_seconds"] = time.perf_counter() - started
        print(f"add-org YantaiMSP in {results['add_org_seconds']:.1f} s", flush=True)
    finally:
        net.down()
        shutil.rmtree(tmp, ignore_errors=True)  # a network's ledgers and logs: about a gigabyte per run
    best_naive = max(naive.values())
    print()
    print(table(["design", "concurrency", "records/s"],
                [*[["one transaction per record", str(c), f"{r:,.1f}"] for c, r in naive.items()],
                 ["checkpoint anchoring, end to end", f"{args.clients} HTTP clients, {args.workers} worker(s)",
                  f"{e2e['end_to_end_rate']:,.0f}"]]))
    print(f"\nratio end to end / best naive: {e2e['end_to_end_rate'] / best_naive:,.0f}×")
    print(table(["offered", "achieved", "ack → anchored p50", "p99", "max"],
                [[f"{r['offered']:,}/s", f"{r['achieved']:,.0f}/s", f"{r['p50']:.2f} s", f"{r['p99']:.2f} s",
                  f"{r['max']:.2f} s"] for r in lat]))
    print(json.dumps({**results, "naive": naive, "end_to_end": e2e, "latency": lat,
                      "batch_timeout": args.batch_timeout, "workers": args.workers, "clients": args.clients}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
