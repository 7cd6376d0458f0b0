"""What checking the notary's promise costs a client: confirming receipts against its newest signed checkpoint.

The notary runs in its own process (`bidtrace notary serve` through bench.ingest: SQLite WAL, synchronous=FULL,
the sealer anchoring on the embedded ledger every second). One device's durable EvidenceQueue sends RECORDS
records in batches, waits until a checkpoint covers them, then runs its confirmation rounds
(`EvidenceQueue.confirm_sent`): one checkpoint fetch and consistency proof per round, one inclusion proof over
HTTP per receipt, each verified (RFC 9162). The hub's `inclusion` job does the same per mirrored leaf. Reported:
receipts confirmed per second by one client, and the time per receipt, against the time the same client took
to get the receipts in the first place.

    python -m bench.inclusion [--records 2000] [--batch 50]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.common import machine, table
from bench.ingest import notary_server
from devices.queue import EvidenceQueue
from notary.client import NotaryClient, SubmitterKey


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50, help="queue batch size (records per submission)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bidtrace-inclusion-"))
    (work / "notary").mkdir()
    with notary_server(work / "notary", None, workers=1) as (url, _pid):
        admin = NotaryClient(url)
        key = SubmitterKey.generate("V-1.cam1")
        admin.register(key, "device", "V-1", "recorder")
        queue = EvidenceQueue(work / "cam1.db", key, NotaryClient(url), batch_size=args.batch,
                              confirm_interval=3600)  # rounds run below, timed on their own
        queue.enqueue([_segment(i) for i in range(args.records)])
        t0 = time.perf_counter()
        report = queue.drain(120)
        send_seconds = time.perf_counter() - t0
        assert report.sent == args.records and report.error is None, report
        size = int(admin.get("/v1/log")["size"])
        deadline = time.monotonic() + 60
        while int(admin.get("/v1/checkpoint")["size"]) < size:
            if time.monotonic() > deadline:
                raise SystemExit("no checkpoint covered the records within 60 s")
            time.sleep(0.2)
        admin.close()
        t0 = time.perf_counter()
        confirmed = rounds = 0
        while confirmed < args.records:
            done = queue.confirm_sent(limit=1000)
            rounds += 1
            if done == 0:
                raise SystemExit(f"a round confirmed nothing: {queue.status()}")
            confirmed += done
        confirm_seconds = time.perf_counter() - t0
        status = queue.status()
        queue.close()
    assert (status.unconfirmed, status.broken) == (0, 0), status
    rows = [
        ["send (submit, receipts checked)", f"{args.records}", f"{send_seconds:.2f} s",
         f"{args.records / send_seconds:,.0f}/s", f"{send_seconds / args.records * 1e3:.2f} ms"],
        [f"confirm ({rounds} rounds, 1 proof per receipt)", f"{confirmed}", f"{confirm_seconds:.2f} s",
         f"{confirmed / confirm_seconds:,.0f}/s", f"{confirm_seconds / confirmed * 1e3:.2f} ms"],
    ]
    print(machine())
    print(table(["step", "receipts", "time", "rate", "per receipt"], rows))
    print(json.dumps({"records": args.records, "batch": args.batch, "send_seconds": round(send_seconds, 3),
                      "confirm_seconds": round(confirm_seconds, 3), "rounds": rounds}))


def _segment(i: int) -> dict[str, object]:
    start = f"2026-11-26T10:{i // 6 % 60:02d}:{i % 6 * 10:02d}+08:00"
    return {"type": "recording_segment", "project_id": "P-1", "session_id": "S-1", "venue_id": "V-1",
            "device_id": "V-1.cam1", "occurred_at": start,
            "payload": {"camera_id": "cam1", "segment_index": i, "start": start, "end": start, "frame_count": 250,
                        "sha256": f"{i + 1:064x}", "previous_segment": None}}


if __name__ == "__main__":
    main()
