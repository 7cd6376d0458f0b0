"""`bidtrace demo`: one remote evaluation, simulated end to end against a real notary on the embedded ledger.

A main venue in Jinan and secondary venues in Qingdao and Yantai: booking, a verifiable expert draw,
seven experts' check-ins and signatures, recording segments from every camera, a misconduct record,
an objection, fees and the archive. Then an audit extract is written and verified offline.
"""

import hashlib
import os
import secrets
import shutil
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from notary.client import NotaryClient, SubmitterKey
from notary.server import running_notary
from notary.service import NotaryConfig
from verifier.cli import render
from verifier.commitments import commit
from verifier.draw import draw, pool_digest
from verifier.extract import verify_extract

CST = timezone(timedelta(hours=8))
PROJECT = "SD-2026-JN-0417"
SESSION = "S-20261126-01"
MAIN, SECONDARY = "V-JINAN-01", ["V-QINGDAO-02", "V-YANTAI-03"]
CAMERAS_PER_VENUE = 2


class Evaluation:
    """The simulated participants, each with its own registered key."""

    def __init__(self, client: NotaryClient) -> None:
        self.client = client
        self.hub = SubmitterKey.generate("hub-province")
        client.register(self.hub, "hub")
        self.devices: dict[str, SubmitterKey] = {}
        for venue in [MAIN, *SECONDARY]:
            for name in [*(f"cam{i}" for i in range(1, CAMERAS_PER_VENUE + 1)), "checkin", "signpad"]:
                device = SubmitterKey.generate(f"{venue}.{name}")
                client.register(device, "device")
                self.devices[device.submitter_id] = device
        self.clock = datetime(2026, 11, 26, 9, 0, tzinfo=CST)
        self.salts: dict[str, bytes] = {}

    def at(self, minutes: float = 1) -> str:
        self.clock += timedelta(minutes=minutes)
        return self.clock.isoformat(timespec="seconds")

    def record(self, kind: str, venue: str, device: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {
            "type": kind, "project_id": PROJECT, "session_id": SESSION, "venue_id": venue, "device_id": device,
            "occurred_at": extra.pop("occurred_at", None) or self.at(), "payload": payload,
            "attachments": extra.pop("attachments", []),
        }

    def commitment(self, label: str, value: str) -> tuple[str, dict[str, Any]]:
        salt = self.salts.setdefault(label, secrets.token_bytes(16))
        return commit(salt, value), {"salt": salt.hex(), "value": value}

    def submit_hub(self, records: list[dict[str, Any]], disclosures: list[dict[str, Any]] | None = None) -> list[Any]:
        return self.client.submit(self.hub, records, disclosures)


def _step(message: str) -> None:
    print(f"  • {message}", flush=True)


def simulate(ev: Evaluation, segments: int, wait_anchor: Any) -> list[str]:
    """Run the evaluation; return the ids of the experts drawn."""
    booking = [
        ev.record("booking", MAIN, "hub-province", {
            "booking_id": f"B-{venue}", "action": action, "main_venue_id": MAIN, "venue_id": venue,
            "room": "评标室 3", "slot_start": "2026-11-26T09:30:00+08:00", "slot_end": "2026-11-26T17:30:00+08:00",
        }) for venue in SECONDARY for action in ("offered", "confirmed")
    ]
    ev.submit_hub(booking)
    _step(f"booking: {MAIN} offered the session to {', '.join(SECONDARY)}; both confirmed")

    pool = [f"E-{i:04d}" for i in range(1, 241)]
    seed = secrets.token_bytes(32)
    commitment = ev.record("draw_commitment", MAIN, "hub-province", {
        "draw_id": "D-1", "pool": pool, "pool_digest": pool_digest(pool),
        "criteria": {"specialty": "房屋建筑工程", "level": "高级"}, "count": 7,
        "recusal_rules": ["same employer as a bidder", "declared conflict"],
        "seed_commitment": hashlib.sha256(seed).hexdigest(),
    })
    commitment_leaf = ev.submit_hub([commitment])[0]["leaf_index"]
    beacon = wait_anchor(commitment_leaf)
    excluded = ["E-0017", "E-0102"]
    selected = draw(pool, 7, seed, beacon, frozenset(excluded))
    ev.submit_hub([ev.record("draw_result", MAIN, "hub-province", {
        "draw_id": "D-1", "commitment_leaf": commitment_leaf, "beacon": beacon.hex(), "revealed_seed": seed.hex(),
        "excluded": excluded, "selected": selected,
    })])
    _step(f"expert draw: 7 of {len(pool)} drawn with the anchored root {beacon.hex()[:12]}… as beacon: "
          + ", ".join(selected))

    venues = [MAIN, *SECONDARY]
    for i, expert in enumerate(selected):
        venue = venues[i % 3]
        device = ev.devices[f"{venue}.checkin"]
        value, disclosure = ev.commitment(expert, f"37010219{70 + i}0101{1000 + i}")
        photo = hashlib.sha256(f"photo of {expert}".encode()).hexdigest()
        rec = ev.record("checkin", venue, device.submitter_id, {
            "expert_commitment": value, "method": "face", "result": "unverified", "provider": None,
            "photo_sha256": photo, "faces_detected": 1,
        })
        ev.client.submit(device, [rec], [{"index": 0, "field": "expert_commitment", **disclosure}])
    _step("check-in: 7 experts photographed at their venues (one face each; no face-verification provider "
          "is configured, so results say 'unverified')")

    per_camera = max(1, segments // (len(venues) * CAMERAS_PER_VENUE))
    start = datetime(2026, 11, 26, 9, 30, tzinfo=CST)
    total = 0
    for venue in venues:
        for cam in range(1, CAMERAS_PER_VENUE + 1):
            device = ev.devices[f"{venue}.cam{cam}"]
            previous: str | None = None
            batch = []
            for s in range(per_camera):
                content = hashlib.sha256(f"{venue}/{cam}/{s}".encode()).digest() * 1024
                digest = hashlib.sha256(content).hexdigest()
                t0, t1 = start + timedelta(seconds=10 * s), start + timedelta(seconds=10 * (s + 1))
                batch.append(ev.record("recording_segment", venue, device.submitter_id, {
                    "camera_id": f"cam{cam}", "segment_index": s, "start": t0.isoformat(), "end": t1.isoformat(),
                    "frame_count": 250, "sha256": digest, "previous_segment": previous,
                }, occurred_at=t1.isoformat(), attachments=[{
                    "name": f"{venue}-cam{cam}-{s:05d}.mp4", "sha256": digest, "size": len(content),
                    "media_type": "video/mp4"}]))
                previous = digest
            ev.client.submit(device, batch)
            total += len(batch)
    _step(f"recording: {total} ten-second segments from {len(venues) * CAMERAS_PER_VENUE} cameras, hash-chained")

    report = hashlib.sha256(b"evaluation report v1").hexdigest()
    for i, expert in enumerate(selected):
        venue = venues[i % 3]
        pad = ev.devices[f"{venue}.signpad"]
        signer, _ = ev.commitment(expert, f"37010219{70 + i}0101{1000 + i}")
        expert_key = SubmitterKey.generate(f"cloudsign-{expert}")
        ev.client.submit(pad, [ev.record("signature", venue, pad.submitter_id, {
            "document_sha256": report, "signer_commitment": signer,
            "certificate_sha256": hashlib.sha256(expert_key.public_pem().encode()).hexdigest(),
            "algorithm": "ecdsa-p256-sha256", "signature": expert_key.sign(bytes.fromhex(report)).hex(),
        })])
    _step("signatures: 7 cloud signatures over the evaluation report")

    bidder, bidder_disclosure = ev.commitment("bidder-3", "91370100MA3C5XXXX3")
    misconduct = ev.record("misconduct", SECONDARY[0], "hub-province", {
        "case_id": "M-1", "status": "recorded", "subject_kind": "bidder", "subject_commitment": bidder,
        "description": "投标文件雷同，疑似围标串标 (near-identical bid documents)", "evidence": [commitment_leaf],
    })
    objector, _ = ev.commitment("bidder-5", "91370200MA3D6XXXX5")
    objection = ev.record("objection", MAIN, "hub-province", {
        "objection_id": "O-1", "status": "received", "filed_by_commitment": objector,
        "summary": "对评分结果提出异议 (objection to the scoring)", "deadline": "2026-11-29T17:00:00+08:00",
    })
    answered = ev.record("objection", MAIN, "hub-province", {
        "objection_id": "O-1", "status": "answered", "filed_by_commitment": objector,
        "summary": "复核后维持原评审结果 (result upheld after review)", "deadline": "2026-11-29T17:00:00+08:00",
    })
    ev.submit_hub([misconduct, objection, answered],
                  [{"index": 0, "field": "subject_commitment", **bidder_disclosure}])
    _step("misconduct record M-1 about a bidder; objection O-1 received and answered")

    fees = []
    for i, expert in enumerate(selected):
        payee, _ = ev.commitment(expert, f"37010219{70 + i}0101{1000 + i}")
        fees.append(ev.record("fee_payment", venues[i % 3], "hub-province", {
            "payment_id": f"F-{i + 1}", "payee_commitment": payee, "payer": "山东省公共资源交易中心",
            "amount_fen": 80_000, "reference": f"{PROJECT}/{expert}"}))
    ev.submit_hub(fees)
    _step("expert fees: 7 payments of ¥800.00")
    return selected


def run_demo(data: Path, segments: int) -> int:
    if data.exists():
        shutil.rmtree(data)
    started = time.monotonic()
    print(f"bidtrace demo — project {PROJECT}, main venue {MAIN}, secondary venues {', '.join(SECONDARY)}")
    config = NotaryConfig(data_dir=data / "notary", log_id="province", seal_interval=0.5,
                          admin_token=secrets.token_urlsafe(16))
    with running_notary(config) as (notary, url):
        print(f"notary on {url}, embedded ledger ({notary.ledger.trust_roots()['org']}), "
              f"checkpoint key {notary.key.vkey[:40]}…")
        client = NotaryClient(url, admin_token=config.admin_token)
        ev = Evaluation(client)
        print(f"registered the hub and {len(ev.devices)} venue devices")

        def wait_anchor(leaf: int) -> bytes:
            while notary.sealer.state.anchored_size <= leaf:
                time.sleep(0.05)
            anchor = client.get("/v1/anchors", limit=1)[0]
            return bytes.fromhex(anchor["root"])

        simulate(ev, segments, wait_anchor)
        size = notary.log.size
        leaves = client.get("/v1/records", project_id=PROJECT, limit=1000)["records"]
        archive = ev.record("archive", MAIN, "hub-province", {
            "archive_id": f"A-{PROJECT}", "leaves": [r["leaf_index"] for r in leaves],
            "leaf_hashes": [r["leaf_hash"] for r in leaves]})
        ev.submit_hub([archive])
        _step(f"archive: {len(leaves)} pieces of evidence listed and sealed")
        print(f"log size {notary.log.size}; waiting for the anchor…", flush=True)
        wait_anchor(size)
        extract = client.extract(PROJECT, disclose=True)
        client.close()
    path = data / f"extract-{PROJECT}.zip"
    path.write_bytes(extract)
    print(f"audit extract written: {path} ({len(extract) // 1024} KiB)\n")
    print(f"verifying offline (bidtrace verify {path}):")
    report = verify_extract(path)
    text = render(report).splitlines()
    shown = [*text[:12], "   …", *text[-12:]] if len(text) > 30 else text
    print("\n".join(shown))
    print(f"\ndone in {time.monotonic() - started:.1f}s")
    return 0 if report.ok else 1


if __name__ == "__main__":
    raise SystemExit(run_demo(Path(os.environ.get("BIDTRACE_DEMO_DATA", "data/demo")), 300))
