"""`bidtrace demo`: one remote evaluation run end to end through the real interfaces, on either ledger.

A notary and the coordination hub serve over HTTP on loopback. The main venue in Jinan offers the session
to Qingdao and Yantai; the hub commits and anchors an expert draw for all three venues, then draws;
check-in stations report seven experts; two cameras per venue record (synthetic video made with OpenCV,
segmented, hashed and hash-chained by the real recorder, sent through its durable queue); experts sign
the report with cloud-signature certificates; fees follow; a bidder objects with its own key, the main
venue relays the objection to the tenderer and the supervisor, and the tenderer answers; a misconduct
case is recorded, published and forwarded to the supervisor's intake endpoint against a signed receipt;
then the archive. The project's audit extract is then verified offline, segment files included, against
the roots the notary and its ledger publish (written beside the extract, as a court would receive them),
and the month's statistics the supervisor reads from the hub are recomputed from the extract.

On Fabric (`--ledger fabric`) the notary anchors as ProvinceMSP on the local network (`bidtrace network up`,
done here if needed); each run registers a log of its own, so the demo can run again on the same network.

Clocks are real: the session is booked from shortly before the demo starts, and the recorders stamp each
segment with the wall-clock time its frames were read, so no record claims to have happened after the
notary received it.
"""

import hashlib
import secrets
import shutil
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from devices.queue import EvidenceQueue
from devices.recorder import Recorder, RecorderConfig
from hub.config import HubConfig
from hub.intake import SupervisorIntake
from hub.server import serving_hub
from hub.service import Hub
from notary.access import Principal, PrincipalKey, Role, SignedRequests, write_access_config
from notary.client import NotaryClient, SubmitterKey
from notary.extract import published_roots
from notary.server import running_notary
from notary.service import NotaryConfig
from verifier.cli import render
from verifier.commitments import commit, new_salt
from verifier.extract import verify_extract
from verifier.statistics import PROVINCE_TIME, MonthlyStatistics, monthly_statistics

BEIJING = timezone(timedelta(hours=8))
PROJECT = "SD-2026-JN-0417"
SESSION = "S-20261126-01"
MAIN, SECONDARY = "V-JINAN-01", ["V-QINGDAO-02", "V-YANTAI-03"]
VENUES = [MAIN, *SECONDARY]
CITIES = {MAIN: "济南", "V-QINGDAO-02": "青岛", "V-YANTAI-03": "烟台"}
CAMERAS = ("cam1", "cam2")
FPS = 10
BIDDER, TENDERER, SUPERVISOR = "bidder-qdhj", "tenderer-sdjt", "supervisor-zjt"  # 青岛海建, 招标人, 住建厅
BIDDERS = [{"name": "山东建工集团", "credit_code": "91370000MA3C5XXXX1"},
           {"name": "青岛海建有限公司", "credit_code": "91370200MA3D6XXXX2"},
           {"name": "烟台港城建设有限公司", "credit_code": "91370600MA3E7XXXX3"}]


def _experts(n: int = 240) -> list[dict[str, Any]]:
    return [{"expert_id": f"E-{i:04d}", "name": f"专家{i:03d}", "identity_number": _identity(f"E-{i:04d}"),
             "employer": "山东建工集团" if i % 97 == 0 else f"单位{i}", "specialty": "房屋建筑工程", "level": "高级"}
            for i in range(1, n + 1)]


def _identity(expert_id: str) -> str:
    return f"3701021970{int(expert_id[2:]):04d}1234"


def _step(message: str) -> None:
    print(f"  • {message}", flush=True)


class _Hub:
    """The hub's HTTP API as one party uses it: every request signed with that party's own key."""

    def __init__(self, url: str, key: PrincipalKey) -> None:
        self.http = httpx.Client(base_url=url, timeout=60, auth=SignedRequests(key))

    def __call__(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400:
            raise RuntimeError(f"hub refused {method} {path}: {response.status_code} {response.text}")
        return response.json()


class _CloudSignCA:
    """The cloud-signature system's CA, issuing each expert a certificate (云签名)."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "山东省云签名 CA (demo)")])
        self.cert = self._build(name, self.key.public_key(), ca=True)

    def _build(self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, ca: bool) -> x509.Certificate:
        now = datetime.now(UTC)
        issuer = subject if ca else self.cert.subject
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
                .sign(self.key, hashes.SHA256()))

    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def sign_as(self, expert_id: str, document_sha256: str) -> tuple[str, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"专家 {expert_id}")]),
                           key.public_key(), ca=False)
        signature = key.sign(bytes.fromhex(document_sha256), ec.ECDSA(Prehashed(hashes.SHA256())))
        return cert.public_bytes(serialization.Encoding.PEM).decode(), signature.hex()


def _camera_video(path: Path, frames: int, label: str) -> Path:
    """A synthetic camera: a moving marker and a clock drawn on every frame (a file the recorder reads)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), FPS, (160, 120))
    for i in range(frames):
        frame = np.full((120, 160, 3), 35, np.uint8)
        cv2.circle(frame, ((i * 5) % 160, 50), 10, (0, 190, 255), -1)
        cv2.putText(frame, f"{label} {i // FPS:04d}s", (4, 112), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1)
        writer.write(frame)
    writer.release()
    return path


def _check_in(notary: NotaryClient, hub: _Hub, station: SubmitterKey, venue: str, expert: str) -> None:
    """A venue's check-in station writes the check-in to the notary, then reports it to the hub. No face
    verification provider is configured here, so the record says 'unverified' rather than invent one."""
    salt = new_salt()
    record = {
        "type": "checkin", "project_id": PROJECT, "session_id": SESSION, "venue_id": venue,
        "device_id": station.submitter_id, "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "payload": {"expert_commitment": commit(salt, _identity(expert)), "method": "face", "result": "unverified",
                    "provider": None, "photo_sha256": hashlib.sha256(f"photo of {expert}".encode()).hexdigest(),
                    "faces_detected": 1},
    }
    opening = [{"index": 0, "field": "expert_commitment", "salt": salt.hex(), "value": _identity(expert)}]
    leaf = notary.submit(station, [record], opening)[0]["leaf_index"]
    hub("POST", f"/sessions/{SESSION}/checkins", {"expert_id": expert, "checkin_leaf": leaf, "salt": salt.hex()})


def _record_cameras(notary_url: str, admin: NotaryClient, data: Path, per_camera: int) -> int:
    total = 0
    for venue in VENUES:
        for camera in CAMERAS:
            key = SubmitterKey.generate(f"{venue}.{camera}")
            admin.register(key, "device", venue, "recorder")
            video = _camera_video(data / "camera-feeds" / f"{venue}-{camera}.avi", per_camera * FPS,
                                  f"{CITIES[venue]} {camera}")
            queue = EvidenceQueue(data / "devices" / f"{venue}-{camera}.queue.db", key, NotaryClient(notary_url),
                                  batch_size=25)
            recorder = Recorder(RecorderConfig(
                source=str(video), camera_id=camera, project_id=PROJECT, session_id=SESSION, venue_id=venue,
                device_id=key.submitter_id, output_dir=data / "media" / venue, segment_seconds=1.0,
                codec="MJPG", clock="wall"), queue)
            total += len(recorder.run())
            queue.drain(timeout=60)
            status = queue.status()
            queue.close()
            if status.pending or status.refused:
                raise RuntimeError(f"camera {venue}/{camera} left records unsent: {status.as_dict()}")
    return total


def _fabric_network_up() -> None:
    """Bring the local Fabric network up (a no-op for nodes already running), building binaries if need be."""
    from network.build import resolve
    from network.topology import FabricNetwork

    FabricNetwork(bins=resolve()).up()


def _ledger_line(trust: dict[str, Any]) -> str:
    if trust.get("ledger") == "fabric":
        return (f"Fabric channel {trust['channel']} founded by {', '.join(sorted(trust['organizations']))}, "
                "endorsement by a majority of the members")
    return f"embedded ledger ({trust.get('org')})"


def run_demo(data: Path, segments: int, ledger: str = "embedded") -> int:
    if ledger not in ("embedded", "fabric"):
        raise ValueError(f"ledger must be 'embedded' or 'fabric', got {ledger!r}")
    if data.exists():
        shutil.rmtree(data)
    (data / "camera-feeds").mkdir(parents=True)
    started = time.monotonic()
    print(f"bidtrace demo — project {PROJECT}, main venue {MAIN}, secondary venues {', '.join(SECONDARY)}")
    log_id = "province"
    if ledger == "fabric":
        from network.build import BuildError
        from network.topology import NetworkError

        try:
            _fabric_network_up()
        except (BuildError, NetworkError, TimeoutError, RuntimeError) as exc:
            print(f"error: the Fabric network could not be brought up: {exc}")
            return 1
        # The ledger keeps every earlier run's log, bound to that run's notary key: this run needs its own.
        log_id = f"province-demo-{datetime.now(UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
    # Each party holds its own key (created 0600 under keys/); the access configurations name the public halves.
    admin_key = SubmitterKey.load_or_create(data / "keys" / "notary-admin.key", "notary-admin")
    operator_key = PrincipalKey.load_or_create(data / "keys" / "hub-operator.key", "hub-operator-province")
    venue_keys = {v: PrincipalKey.load_or_create(data / "keys" / f"{v}-operator.key", f"{v}-operator") for v in VENUES}
    parties = {name: PrincipalKey.load_or_create(data / "keys" / f"{name}.key", name)
               for name in (BIDDER, TENDERER)}
    supervisor_key = SubmitterKey.load_or_create(data / "keys" / f"{SUPERVISOR}.key", SUPERVISOR)
    intake = SupervisorIntake(supervisor_key)
    hub_access = data / "hub-access.json"
    write_access_config(hub_access, [
        operator_key.principal(Role.HUB_OPERATOR),
        *(k.principal(Role.VENUE_OPERATOR, v) for v, k in venue_keys.items()),
        parties[BIDDER].principal(Role.BIDDER, projects=[PROJECT]),
        parties[TENDERER].principal(Role.TENDERER, projects=[PROJECT]),
        Principal(SUPERVISOR, Role.SUPERVISOR, supervisor_key.public_pem(), endpoints=frozenset({intake.endpoint}))])
    access = data / "notary-access.json"
    write_access_config(access, [admin_key.principal(Role.NOTARY_ADMIN)])
    config = NotaryConfig(data_dir=data / "notary", log_id=log_id, ledger=ledger, seal_interval=0.5, access=access)
    with running_notary(config) as (notary, notary_url):
        print(f"notary {log_id} on {notary_url}, {_ledger_line(notary.ledger.trust_roots())}, "
              f"checkpoint key {notary.key.vkey[:40]}…")
        admin = NotaryClient(notary_url, as_principal=admin_key)
        hub_service = Hub(HubConfig(data_dir=data / "hub", notary_url=notary_url, access=hub_access, beacon_wait=30))
        hub_service.register(admin_key)
        try:
            with serving_hub(hub_service) as hub_url:
                print(f"hub on {hub_url}, writing its evidence as {hub_service.config.hub_id}")
                hub = _Hub(hub_url, operator_key)
                venues = {v: _Hub(hub_url, k) for v, k in venue_keys.items()}
                venues.update({name: _Hub(hub_url, k) for name, k in parties.items()})
                venues[SUPERVISOR] = _Hub(hub_url, supervisor_key)
                _evaluate(hub, venues, admin, notary_url, data, segments)
                size = notary.log.size
                print(f"log size {size}; waiting for the anchor…", flush=True)
                while notary.sealer.state.anchored_size < size:
                    time.sleep(0.05)
                # A court granted the project reads its extract, stating why; the read is itself recorded.
                court_key = SubmitterKey.load_or_create(data / "keys" / "court.key", "court-jinan-intermediate")
                admin.register(court_key, "court", projects=[PROJECT])
                court = NotaryClient(notary_url, as_principal=court_key, purpose="case 2026-0417 evidence review")
                extract = court.extract(PROJECT, disclose=True)
                court.close()
                figures = _statistics(hub_service, venues[SUPERVISOR], notary.log.size)
        finally:
            hub_service.close()
            admin.close()
            intake.close()
        roots = published_roots(notary.log, notary.ledger)
    path = data / f"extract-{PROJECT}.zip"
    path.write_bytes(extract)
    roots_path = data / "published-roots.json"
    roots_path.write_bytes(roots.encode())
    print(f"audit extract written: {path} ({len(extract) // 1024} KiB)")
    print(f"published roots written: {roots_path}")
    for line in roots.describe():
        print(f"  {line}")
    print(f"\nverifying offline (bidtrace verify {path} --trust {roots_path} --media {data / 'media'}):")
    report = verify_extract(path, roots, media=data / "media")
    text = render(report).splitlines()
    print("\n".join([*text[:12], "   …", *text[-22:]] if len(text) > 40 else text))
    records = [(r.leaf_index, report.entries[r.leaf_index].record) for r in report.records if r.ok]
    recomputed = monthly_statistics(records, figures.month)
    print("\nthe month's statistics, as the supervisor reads them from the hub (GET /statistics):")
    print("\n".join(figures.lines()))
    same = recomputed == figures
    print(f"recomputed from the verified extract (bidtrace stats {path.name} --month {figures.month}): "
          f"{'identical ✓' if same else 'DIFFERENT ✗ ' + str(recomputed.encode())}")
    print(f"\ndone in {time.monotonic() - started:.1f}s")
    return 0 if report.ok and same else 1


def _statistics(hub: Hub, supervisor: _Hub, size: int) -> MonthlyStatistics:
    """The month's figures of the project as the supervisor reads them, once the hub's mirror of the log has
    caught up with everything the extract holds."""
    from hub import db

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with hub.db() as s:
            cursor = s.get(db.State, "tail_cursor")
            if cursor is not None and cursor.value >= size - 1:
                break
        time.sleep(0.1)
    month = datetime.now(PROVINCE_TIME).strftime("%Y-%m")
    return MonthlyStatistics.parse(supervisor("GET", f"/statistics?month={month}&project_id={PROJECT}"))


def _evaluate(hub: _Hub, venues: dict[str, _Hub], admin: NotaryClient, notary_url: str, data: Path,
              segments: int) -> None:
    for venue in VENUES:
        hub("PUT", "/venues", {"venue_id": venue, "name": f"{CITIES[venue]}评标中心", "city": CITIES[venue],
                               "rooms": ["评标室 1", "评标室 2", "评标室 3"]})
    pool = _experts()
    hub("PUT", "/experts", {"experts": pool})
    now = datetime.now(BEIJING).replace(microsecond=0)
    hub("POST", "/sessions", {"session_id": SESSION, "project_id": PROJECT, "main_venue_id": MAIN,
                              "room": "评标室 3", "slot_start": (now - timedelta(minutes=5)).isoformat(),
                              "slot_end": (now + timedelta(hours=8)).isoformat(), "bidders": BIDDERS,
                              "tenderer_id": TENDERER})
    for venue in SECONDARY:
        offer = hub("POST", f"/sessions/{SESSION}/offers", {"venue_id": venue, "room": "评标室 1"})
        venues[venue]("POST", f"/bookings/{offer['booking_id']}/confirm")
    _step(f"booking: {MAIN} offered the session to {', '.join(SECONDARY)}; both confirmed")

    committed = hub("POST", f"/sessions/{SESSION}/draws", {
        "criteria": {"specialty": "房屋建筑工程", "level": "高级"}, "conflicts": ["E-0042"],
        "venues": [{"venue_id": MAIN, "count": 3}, {"venue_id": SECONDARY[0], "count": 2},
                   {"venue_id": SECONDARY[1], "count": 2}]})
    drawn = hub("POST", f"/draws/{committed['draw_id']}/execute")
    _step(f"expert draw: 7 of {len(pool)} drawn for three venues at once, {len(drawn['excluded'])} recused, "
          f"beacon = anchored root {drawn['beacon'][:12]}…: " + ", ".join(drawn["selected"]))

    stations = {}
    for venue in VENUES:
        stations[venue] = SubmitterKey.generate(f"{venue}.checkin")
        admin.register(stations[venue], "device", venue, "checkin")
    for venue, experts in drawn["assignments"].items():
        for expert in experts:
            _check_in(admin, hub, stations[venue], venue, expert)
    hub("POST", f"/sessions/{SESSION}/roster")
    _step("check-in: 7 experts photographed at their venues and on the roster (no face-verification provider "
          "is configured, so results say 'unverified')")

    per_camera = max(1, segments // (len(VENUES) * len(CAMERAS)))
    total = _record_cameras(notary_url, admin, data, per_camera)
    _step(f"recording: {total} one-second segments from {len(VENUES) * len(CAMERAS)} cameras, "
          "segmented, hashed and hash-chained by the venues' recorders")

    ca = _CloudSignCA()
    hub("POST", "/trusted-cas", {"pem": ca.pem()})
    report = hashlib.sha256(b"evaluation report v1").hexdigest()
    for expert in drawn["selected"]:
        cert, signature = ca.sign_as(expert, report)
        hub("POST", f"/sessions/{SESSION}/signatures", {"expert_id": expert, "document_sha256": report,
                                                        "certificate_pem": cert, "signature": signature})
        hub("POST", f"/sessions/{SESSION}/fees", {"expert_id": expert, "amount_fen": 80_000,
                                                  "payer": "山东省公共资源交易中心"})
    _step("signatures: 7 cloud signatures over the evaluation report, verified; fees: 7 payments of ¥800.00")

    objection = venues[BIDDER]("POST", f"/sessions/{SESSION}/objections",
                               {"summary": "对评分结果提出异议 (objection to the scoring)"})
    venues[MAIN]("POST", f"/objections/{objection['objection_id']}/review", {})
    venues[MAIN]("POST", f"/objections/{objection['objection_id']}/relay", {"to": [TENDERER, SUPERVISOR]})
    venues[TENDERER]("POST", f"/objections/{objection['objection_id']}/answer",
                     {"answer": "经复核维持原评审结果 (result upheld after review)"})
    case = hub("POST", "/misconduct", {
        "session_id": SESSION, "subject_kind": "bidder", "subject_id": "91370600MA3E7XXXX3",
        "subject_name": "烟台港城建设有限公司",
        "description": "投标文件雷同，疑似围标串标 (near-identical bid documents)", "evidence": [drawn["result_leaf"]]})
    for action, body in (("verify", {}), ("publish", {}), ("forward", {"supervisor": SUPERVISOR})):
        forwarded = hub("POST", f"/misconduct/{case['case_id']}/{action}", body)
    _step(f"objection filed by bidder {BIDDER} with its own key, relayed by {MAIN} to the tenderer and the "
          "supervisor, answered by the tenderer; misconduct case recorded, verified, published and forwarded "
          f"(receipt {forwarded['delivery']['receipt_id']} signed by {SUPERVISOR})")

    archived = hub("POST", f"/sessions/{SESSION}/archive")
    _step(f"archive: {len(archived['leaves'])} pieces of evidence listed and sealed")
