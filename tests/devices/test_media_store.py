"""Segments sealed at rest on the venue and forwarded to the province's media store, a real SeaweedFS server
(`weed server -s3` on loopback): the venue's disk holds only what the province's key opens; each arrival is
checked against the store's SHA-256 and logged; after the venue's disk is lost, `bidtrace verify --media
s3://…` reads every segment back from the store; a multipart upload cut by the store going down resumes
with only the parts the store does not hold."""

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from devices.forwarder import MIN_PART, ForwardError, MediaForwarder, MediaStore
from devices.queue import open_queue
from devices.recorder import Recorder, sha256_file
from network.seaweedfs import SeaweedServer, resolve
from notary.client import NotaryClient, SubmitterKey
from notary.extract import published_roots
from tests.conftest import ADMIN
from tests.devices.conftest import LiveNotary, make_video, wait_for
from tests.devices.test_audio import tone
from tests.devices.test_recorder import DEVICE, config
from verifier.extract import ExtractReport, verify_extract
from verifier.sealed import SUFFIX, UnsealError, unseal

ACCESS_KEY, SECRET_KEY = "province-media-01", "a-long-secret-for-the-test-store-0123456789"
BUCKET = "media"


@pytest.fixture(scope="session")
def weed() -> Path:
    binary = resolve()
    if binary is None:
        why = "no SeaweedFS binary: run .ci/seaweedfs.sh (python -m network.seaweedfs) to build it"
        if os.environ.get("CI") == "true":
            pytest.fail(why)  # CI builds it first; a missing binary there is a failure, never a skip
        pytest.skip(why)
    return binary


@pytest.fixture
def store(weed: Path, tmp_path: Path) -> Iterator[tuple[SeaweedServer, MediaStore]]:
    server = SeaweedServer(weed, tmp_path / "seaweedfs", ACCESS_KEY, SECRET_KEY)
    server.start()
    try:
        media = MediaStore(server.endpoint, BUCKET, ACCESS_KEY, SECRET_KEY)
        media.client().create_bucket(Bucket=BUCKET)
        yield server, media
    finally:
        server.stop()


@pytest.fixture
def camera_key() -> SubmitterKey:
    return SubmitterKey.generate(DEVICE)


def test_sealed_segments_forwarded_to_the_store_verify_after_the_venue_disk_is_lost(
        live_notary: LiveNotary, camera_key: SubmitterKey, store: tuple[SeaweedServer, MediaStore],
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server, media = store
    live_notary.register(camera_key)
    province = X25519PrivateKey.generate()  # the province's media key: the venue is given its public half only
    out = tmp_path / "venue-disk"
    queue = open_queue(tmp_path / "state" / "q.db", camera_key, live_notary.url)
    segments = Recorder(config(make_video(tmp_path / "in.avi", frames=30, fps=10), out, segment_seconds=1.0,
                               codec="mp4v", audio_source=str(tone(tmp_path / "mic.wav", 4.0)),
                               seal_to=province.public_key()), queue).run()
    assert len(segments) == 3

    # At rest the venue holds sealed files only: no file there has a logged hash, each opens with the key.
    logged = {s.sha256 for s in segments}
    assert sorted(p.name for p in out.iterdir()) == [f"cam1-{i:06d}.mp4{SUFFIX}" for i in range(3)]
    assert not {sha256_file(p)[0] for p in out.iterdir()} & logged
    for s in segments:
        assert hashlib.sha256(unseal(s.path.read_bytes(), province, s.path.name[:-len(SUFFIX)])).hexdigest() == s.sha256
    with pytest.raises(UnsealError, match="does not open"):
        unseal(segments[0].path.read_bytes(), X25519PrivateKey.generate(), segments[0].path.name[:-len(SUFFIX)])

    forwarder = MediaForwarder(media, queue, out)
    assert forwarder.forward_pending() == 3
    assert forwarder.pending() == [] and forwarder.forward_pending() == 0  # forwarded once
    assert queue.drain(30).refusal is None and queue.status().pending == 0
    arrivals = [e.record["payload"] for e in live_notary.entries() if e.record["type"] == "media_arrival"]
    assert [(a["segment_index"], a["segment_sha256"], a["sealed"]) for a in arrivals] == \
           [(s.index, s.sha256, True) for s in segments]
    for a, s in zip(arrivals, segments, strict=True):
        assert a["object_key"] == f"P-1/V-1/{s.path.name}" and a["stored_sha256"] == sha256_file(s.path)[0]

    shutil.rmtree(out)  # the venue's disk fails
    extract, roots = _extract(live_notary, tmp_path)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    trust = published_roots(live_notary.notary.log, live_notary.notary.ledger)  # type: ignore[union-attr]
    report = verify_extract(extract, trust, media=f"s3://{BUCKET}/P-1", media_endpoint=server.endpoint,
                            media_key=province)
    checks = {s.name: s for s in report.sessions}
    assert report.ok, [f"{s.name}: {s.detail}" for s in report.sessions if not s.ok]
    assert checks["media V-1/cam1"].detail == "3 of 3 segment files present, 0 missing, all match their logged hashes"
    assert checks["recording V-1/cam1 in the media store"].detail == ("3 of 3 segments arrived, each with the "
                                                                      "store's checksum")

    # The same through the command line a court runs.
    key_file = tmp_path / "media-key.pem"
    key_file.write_bytes(province.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    run = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(extract), "--trust", str(roots),
                          "--media", f"s3://{BUCKET}/P-1", "--media-endpoint", server.endpoint,
                          "--media-key", str(key_file)], capture_output=True, text=True, env=dict(os.environ))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "media V-1/cam1 ✓ 3 of 3 segment files present" in run.stdout

    # Without the key nothing opens; with another key neither; a replaced object in the store is caught.
    closed = verify_extract(extract, trust, media=f"s3://{BUCKET}/P-1", media_endpoint=server.endpoint)
    assert not closed.ok and "is sealed; give the province's media key" in _failures(closed)
    other = verify_extract(extract, trust, media=f"s3://{BUCKET}/P-1", media_endpoint=server.endpoint,
                           media_key=X25519PrivateKey.generate())
    assert not other.ok and "does not open with the media key given" in _failures(other)
    media.client().put_object(Bucket=BUCKET, Key=f"P-1/V-1/{segments[1].path.name}", Body=b"not the recording")
    replaced = verify_extract(extract, trust, media=f"s3://{BUCKET}/P-1", media_endpoint=server.endpoint,
                              media_key=province)
    assert not replaced.ok and "1 segment files are missing" in _failures(replaced)
    queue.close()


def _extract(live_notary: LiveNotary, tmp_path: Path) -> tuple[Path, Path]:
    """The project's extract as a court reads it over HTTP, and the notary's published roots."""
    notary = live_notary.notary
    assert notary is not None
    wait_for(lambda: notary.sealer.state.anchored_size >= notary.log.size, 30, "the log to be anchored")
    court = SubmitterKey.generate("court-1")
    admin = NotaryClient(live_notary.url, as_principal=ADMIN)
    admin.register(court, "court", projects=["P-1"])
    admin.close()
    reader = NotaryClient(live_notary.url, as_principal=court, purpose="case 2026-0417")
    path = tmp_path / "extract.zip"
    path.write_bytes(reader.extract("P-1", disclose=False))
    reader.close()
    roots = tmp_path / "roots.json"
    roots.write_bytes(published_roots(notary.log, notary.ledger).encode())
    return path, roots


def _failures(report: ExtractReport) -> str:
    return "\n".join(f"{s.name}: {s.detail}" for s in report.sessions if not s.ok)


def test_a_multipart_upload_cut_by_the_store_going_down_resumes_with_the_missing_parts(
        camera_key: SubmitterKey, store: tuple[SeaweedServer, MediaStore], tmp_path: Path) -> None:
    server, media = store
    folder = tmp_path / "venue-disk"
    folder.mkdir()
    big = os.urandom(2 * MIN_PART + 123_456)  # three parts: 5 MiB, 5 MiB and the rest
    (folder / "cam1-000000.mp4").write_bytes(big)
    digest = hashlib.sha256(big).hexdigest()
    queue = open_queue(tmp_path / "q.db", camera_key, None)
    queue.enqueue([{"type": "recording_segment", "project_id": "P-1", "session_id": "S-1", "venue_id": "V-1",
                    "device_id": DEVICE, "occurred_at": "2026-11-27T09:00:10+08:00",
                    "payload": {"camera_id": "cam1", "segment_index": 0, "start": "2026-11-27T09:00:00+08:00",
                                "end": "2026-11-27T09:00:10+08:00", "frame_count": 250, "sha256": digest,
                                "previous_segment": None},
                    "attachments": [{"name": "cam1-000000.mp4", "sha256": digest, "size": len(big),
                                     "media_type": "video/mp4"}]}])
    sent: list[int] = []

    def cut_after_first(part: int) -> None:
        sent.append(part)
        if part == 1:
            server.kill()  # the store goes down mid-upload, as a power cut would take it

    with pytest.raises(ForwardError, match="segment 0 of camera cam1 not forwarded"):
        MediaForwarder(media, queue, folder, part_size=MIN_PART, on_part=cut_after_first).forward_pending()
    assert sent == [1] and not [r for _, _, r, _ in queue.records() if r["type"] == "media_arrival"]

    server.start()  # the same data and ports
    resumed: list[int] = []
    assert MediaForwarder(media, queue, folder, part_size=MIN_PART, on_part=resumed.append).forward_pending() == 1
    assert resumed == [2, 3]  # part 1 was already in the store
    [arrival] = [r["payload"] for _, _, r, _ in queue.records() if r["type"] == "media_arrival"]
    assert arrival["stored_sha256"] == digest and arrival["store_checksum"].endswith("-3")
    assert media.client().get_object(Bucket=BUCKET, Key="P-1/V-1/cam1-000000.mp4")["Body"].read() == big
    queue.close()
