"""`bidtrace demo`: one remote evaluation run end to end through the real interfaces, on either ledger.

A notary and the coordination hub serve over HTTP on loopback. The main venue in Jinan offers the session
to Qingdao and Yantai; the hub commits and anchors an expert draw for all three venues, then draws; the
venues' check-in stations compare faces with enrolled photos (the real face model, on portraits that ship
in installed packages) and report the seven experts to the hub themselves; each venue registers its
room's two cameras (together 360°, one with a microphone), and both record the whole booked slot
(synthetic video made with OpenCV and a synthetic tone, segmented with sound by the real recorder,
hashed, hash-chained and sent through its durable queue); experts sign the report with cloud-signature
certificates; fees follow; a bidder objects with its own key, the main venue relays the objection to the
tenderer and the supervisor, and the tenderer answers; a misconduct case is recorded, published and
forwarded to the supervisor's intake endpoint against a signed receipt; then the archive. The project's
audit extract is then verified offline, segment files included, against the roots the notary and its
ledger publish (written beside the extract, as a court would receive them), and the month's statistics
the supervisor reads from the hub are recomputed from the extract.

On Fabric (`--ledger fabric`) the notary anchors as ProvinceMSP on the local network (`bidtrace network up`,
done here if needed); each run registers a log of its own, so the demo can run again on the same network.

Clocks are real: the session is booked from a few seconds after it is opened until just after its cameras
have recorded, the cameras record in real time from the moment the slot opens, and the recorders stamp
each segment with the wall-clock time its frames were read, so no record claims to have happened after
the notary received it and verify can check that every camera recorded the whole slot.
"""

import hashlib
import secrets
import shutil
import threading
import time
import wave
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

from devices import portraits as portraits_of
from devices.checkin import BlobStore, CheckinConfig, CheckinStation, HubReporter, hub_report
from devices.face import EnrolledPhotos, FaceEmbedder, FaceRecognitionVerifier
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
from verifier.times import format_time, now_utc

BEIJING = timezone(timedelta(hours=8))
PROJECT = "SD-2026-JN-0417"
SESSION = "S-20261126-01"
MAIN, SECONDARY = "V-JINAN-01", ["V-QINGDAO-02", "V-YANTAI-03"]
VENUES = [MAIN, *SECONDARY]
CITIES = {MAIN: "济南", "V-QINGDAO-02": "青岛", "V-YANTAI-03": "烟台"}
CAMERAS = ("cam1", "cam2")
# Each room's two cameras face opposite walls, half the room each; the first hears the room too.
INVENTORY = [{"camera_id": "cam1", "heading_degrees": 0, "field_of_view_degrees": 180, "audio": True},
             {"camera_id": "cam2", "heading_degrees": 180, "field_of_view_degrees": 180, "audio": False}]
ROOMS = {MAIN: "评标室 3", "V-QINGDAO-02": "评标室 1", "V-YANTAI-03": "评标室 1"}
FPS = 10
BIDDER, TENDERER, SUPERVISOR = "bidder-qdhj", "tenderer-sdjt", "supervisor-zjt"  # 青岛海建, 招标人, 住建厅
SEGMENT_SECONDS = 0.5
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


def _check_ins(hub_url: str, notary_url: str, data: Path, stations: dict[str, SubmitterKey],
               assignments: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    """The venues' check-in stations, reporting to the hub themselves. At the main venue two experts were
    enrolled with the only two portraits that ship in the installed packages (Eileen Collins, Grace Hopper):
    the first is shown Hopper's face (recorded, rejected), then her own, cropped and scaled (matched); the
    second is photographed darker than her enrolled photo (matched). The other experts have no enrolled
    photo: their identity cards are read, and their check-ins say 'unverified'. Returns (verified, unverified)."""
    embedder = FaceEmbedder()
    verified: list[str] = []
    unverified: list[str] = []
    for venue, experts in assignments.items():
        key = stations[venue]
        folder = data / "devices" / f"{venue}-checkin"
        queue = EvidenceQueue(folder / "queue.db", key, NotaryClient(notary_url))
        blobs = BlobStore(folder / "blobs", data / "keys" / f"{venue}-checkin-blob.key")
        faces = FaceRecognitionVerifier(EnrolledPhotos(blobs, folder / "enrolled.json"), embedder=embedder)
        reporter = HubReporter(hub_url, key)
        station = CheckinStation(CheckinConfig(PROJECT, SESSION, venue, key.submitter_id), queue, blobs,
                                 verifier=faces, hub=reporter)
        portraits = {experts[0]: portraits_of.astronaut(), experts[1]: portraits_of.grace_hopper()} \
            if venue == MAIN else {}
        for expert, portrait in portraits.items():
            faces.enrol(_identity(expert), portraits_of.png(portrait))
        for expert in experts:
            if expert not in portraits:
                _card_check_in(queue, key, venue, expert)
                unverified.append(expert)
        if portraits:
            first, second = list(portraits)
            station.check_in(_identity(first), portraits_of.png(portraits_of.grace_hopper()), expert_id=first)
            smaller = cv2.resize(portraits[first][20:280, 10:250], None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
            station.check_in(_identity(first), portraits_of.png(smaller), expert_id=first)
            darker = (portraits[second] * 0.55).astype(np.uint8)
            station.check_in(_identity(second), portraits_of.png(darker), expert_id=second)
        queue.drain(timeout=60)
        reports = station.report_to_hub()
        queue.close()
        reporter.close()
        if reports.waiting or reports.refused:
            raise RuntimeError(f"check-in station at {venue} could not report to the hub: {reports}")
        for answer in reports.reported:
            _step(f"check-in {answer['expert_id']} at {venue}, leaf {answer['checkin_leaf']}: {answer['result']} "
                  f"→ {answer['roster_status']}")
            if answer["roster_status"] == "present — identity verified":
                verified.append(answer["expert_id"])
    return verified, unverified


def _card_check_in(queue: EvidenceQueue, station: SubmitterKey, venue: str, expert: str) -> None:
    """An identity-card check-in: no photo, no face comparison, so the record says 'unverified'. It goes through
    the station's queue like any check-in, with its report to the hub."""
    salt = new_salt()
    record = {
        "type": "checkin", "project_id": PROJECT, "session_id": SESSION, "venue_id": venue,
        "device_id": station.submitter_id, "occurred_at": now_utc(),
        "payload": {"expert_commitment": commit(salt, _identity(expert)), "method": "card", "result": "unverified",
                    "provider": None},
    }
    opening = {"field": "expert_commitment", "salt": salt.hex(), "value": _identity(expert)}
    queue.enqueue([record], [[opening]], state=hub_report(record, expert, salt.hex()))


def _tone(path: Path, seconds: float, hz: float) -> Path:
    """A microphone's synthetic feed: a sine tone, 16-bit mono at 48 kHz."""
    rate = 48_000
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((0.2 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16).tobytes())
    return path


class _Cameras:
    """Every venue's cameras, recording in real time on threads of their own from the moment the slot opens."""

    def __init__(self, notary_url: str, admin: NotaryClient, data: Path, seconds: float) -> None:
        self.runs: list[tuple[str, Recorder, EvidenceQueue, threading.Thread]] = []
        self.errors: list[str] = []
        for n, venue in enumerate(VENUES):
            for camera in CAMERAS:
                key = SubmitterKey.generate(f"{venue}.{camera}")
                admin.register(key, "device", venue, "recorder")
                video = _camera_video(data / "camera-feeds" / f"{venue}-{camera}.avi", int(seconds * FPS),
                                      f"{CITIES[venue]} {camera}")
                microphone = next(c["audio"] for c in INVENTORY if c["camera_id"] == camera)
                sound = _tone(data / "camera-feeds" / f"{venue}-{camera}.wav", seconds + 1, 330.0 + 110 * n)
                queue = EvidenceQueue(data / "devices" / f"{venue}-{camera}.queue.db", key, NotaryClient(notary_url),
                                      batch_size=25)
                recorder = Recorder(RecorderConfig(
                    source=str(video), camera_id=camera, project_id=PROJECT, session_id=SESSION, venue_id=venue,
                    device_id=key.submitter_id, output_dir=data / "media" / venue, segment_seconds=SEGMENT_SECONDS,
                    codec="MJPG", clock="wall", realtime=True, audio_source=str(sound) if microphone else None),
                    queue)
                thread = threading.Thread(target=self._record, args=(f"{venue}/{camera}", recorder),
                                          name=f"camera {venue}/{camera}")
                self.runs.append((f"{venue}/{camera}", recorder, queue, thread))
        self.opens = datetime.now(UTC)

    def start(self, opens: datetime) -> None:
        self.opens = opens
        for *_, thread in self.runs:
            thread.start()

    def _record(self, name: str, recorder: Recorder) -> None:
        time.sleep(max(0.0, (self.opens - datetime.now(UTC)).total_seconds()))
        try:
            recorder.run()
        except Exception as exc:  # reported by finish, with the camera's name
            self.errors.append(f"camera {name}: {type(exc).__name__}: {exc}")

    def finish(self) -> int:
        """Wait for every camera to finish and its queue to be sent; the number of segments recorded."""
        total = 0
        for name, recorder, queue, thread in self.runs:
            thread.join()
            total += len(recorder.segments)
            queue.drain(timeout=60)
            status = queue.status()
            queue.close()
            if status.pending or status.refused:
                self.errors.append(f"camera {name} left records unsent: {status.as_dict()}")
        if self.errors:
            raise RuntimeError("; ".join(self.errors))
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


def run_demo(data: Path, segments: int, ledger: str = "embedded", console: bool = False) -> int:
    """The evaluation end to end; with `console`, pause before it and after it so that a supervisor can
    watch it in the browser (the sign-in link is printed)."""
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
    # A check-in station is one device key: it submits its evidence to the notary and reports to the hub.
    stations = {v: SubmitterKey.load_or_create(data / "keys" / f"{v}.checkin.key", f"{v}.checkin") for v in VENUES}
    hub_access = data / "hub-access.json"
    write_access_config(hub_access, [
        operator_key.principal(Role.HUB_OPERATOR),
        *(k.principal(Role.VENUE_OPERATOR, v) for v, k in venue_keys.items()),
        *(k.principal(Role.DEVICE, v, "checkin") for v, k in stations.items()),
        parties[BIDDER].principal(Role.BIDDER, projects=[PROJECT]),
        parties[TENDERER].principal(Role.TENDERER, projects=[PROJECT]),
        Principal(SUPERVISOR, Role.SUPERVISOR, supervisor_key.public_pem(), endpoints=frozenset({intake.endpoint}))])
    access = data / "notary-access.json"
    write_access_config(access, [admin_key.principal(Role.NOTARY_ADMIN)])
    config = NotaryConfig(data_dir=data / "notary", log_id=log_id, ledger=ledger, seal_interval=0.5, access=access)
    with running_notary(config) as (notary, notary_url):
        print(f"notary {log_id} on {notary_url}, {_ledger_line(notary.ledger.trust_roots().body)}, "
              f"checkpoint key {notary.key.vkey[:40]}…")
        admin = NotaryClient(notary_url, as_principal=admin_key)
        roots_path = data / "published-roots.json"
        roots_path.write_bytes(published_roots(notary.log, notary.ledger).encode())
        hub_service = Hub(HubConfig(data_dir=data / "hub", notary_url=notary_url, access=hub_access, beacon_wait=30,
                                    trust=roots_path))
        hub_service.register(admin_key)
        try:
            with serving_hub(hub_service) as hub_url:
                print(f"hub on {hub_url}, writing its evidence as {hub_service.config.hub_id}")
                if console:
                    _pause_for_console(hub_url, supervisor_key, "run the evaluation")
                hub = _Hub(hub_url, operator_key)
                venues = {v: _Hub(hub_url, k) for v, k in venue_keys.items()}
                venues.update({name: _Hub(hub_url, k) for name, k in parties.items()})
                venues[SUPERVISOR] = _Hub(hub_url, supervisor_key)
                _evaluate(hub, venues, admin, notary_url, hub_url, stations, data, segments)
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
                if console:
                    _pause_for_console(hub_url, supervisor_key, "stop the notary and the hub")
        finally:
            hub_service.close()
            admin.close()
            intake.close()
        roots = published_roots(notary.log, notary.ledger)
    path = data / f"extract-{PROJECT}.zip"
    path.write_bytes(extract)
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


def _pause_for_console(hub_url: str, supervisor: PrincipalKey, then: str) -> None:
    from hub.web.login import LOGIN_SECONDS, request_login_link

    print(f"\nconsoles on {hub_url}/console (信息公开: {hub_url}/console/public)")
    print(f"supervisor's sign-in link, valid {LOGIN_SECONDS} s and once (later: bidtrace hub login --hub-url {hub_url} "
          f"--principal-id {supervisor.principal_id} --key KEY under keys/):")
    print(f"  {request_login_link(hub_url, supervisor)}")
    input(f"press Enter to {then}… ")


def _evaluate(hub: _Hub, venues: dict[str, _Hub], admin: NotaryClient, notary_url: str, hub_url: str,
              stations: dict[str, SubmitterKey], data: Path, segments: int) -> None:
    for venue in VENUES:
        hub("PUT", "/venues", {"venue_id": venue, "name": f"{CITIES[venue]}评标中心", "city": CITIES[venue],
                               "rooms": ["评标室 1", "评标室 2", "评标室 3"]})
    pool = _experts()
    hub("PUT", "/experts", {"experts": pool})
    for venue in VENUES:
        venues[venue]("PUT", f"/venues/{venue}/rooms/{ROOMS[venue]}/cameras", {"cameras": INVENTORY})
    _step("cameras: each venue registered its room's two cameras (360° together, one with a microphone)")
    seconds = max(1, segments // (len(VENUES) * len(CAMERAS))) * SEGMENT_SECONDS
    cameras = _Cameras(notary_url, admin, data, seconds)
    # The slot opens once the session is booked and closes just after its cameras have recorded it.
    opens = datetime.now(BEIJING).replace(microsecond=0) + timedelta(seconds=5)
    hub("POST", "/sessions", {"session_id": SESSION, "project_id": PROJECT, "main_venue_id": MAIN,
                              "room": ROOMS[MAIN], "slot_start": format_time(opens),
                              "slot_end": format_time(opens + timedelta(seconds=seconds + 3)), "bidders": BIDDERS,
                              "tenderer_id": TENDERER})
    for venue in SECONDARY:
        offer = hub("POST", f"/sessions/{SESSION}/offers", {"venue_id": venue, "room": ROOMS[venue]})
        venues[venue]("POST", f"/bookings/{offer['booking_id']}/confirm")
    _step(f"booking: {MAIN} offered the session to {', '.join(SECONDARY)}; both confirmed; the slot opens at "
          f"{opens:%H:%M:%S} and lasts {seconds + 3:g} s")
    cameras.start(opens)

    committed = hub("POST", f"/sessions/{SESSION}/draws", {
        "criteria": {"specialty": "房屋建筑工程", "level": "高级"}, "conflicts": ["E-0042"],
        "venues": [{"venue_id": MAIN, "count": 3}, {"venue_id": SECONDARY[0], "count": 2},
                   {"venue_id": SECONDARY[1], "count": 2}]})
    drawn = hub("POST", f"/draws/{committed['draw_id']}/execute")
    _step(f"expert draw: 7 of {len(pool)} drawn for three venues at once, {len(drawn['excluded'])} recused, "
          f"beacon = anchored root {drawn['beacon'][:12]}…: " + ", ".join(drawn["selected"]))

    for venue, key in stations.items():
        admin.register(key, "device", venue, "checkin")
    verified, unverified = _check_ins(hub_url, notary_url, data, stations, drawn["assignments"])
    roster = hub("POST", f"/sessions/{SESSION}/roster")
    _step(f"roster {roster['roster_id']}: {len(verified)} present — identity verified by face ("
          f"{', '.join(verified)}); {len(unverified)} present — unverified (identity card, no enrolled photo: "
          f"{', '.join(unverified)})")

    total = cameras.finish()
    _step(f"recording: {total} segments of {SEGMENT_SECONDS:g} s from {len(VENUES) * len(CAMERAS)} cameras over the "
          "whole slot, with sound from each room's microphone, segmented, hashed and hash-chained by the venues' "
          "recorders")

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
