"""The whole chain through real interfaces: the hub's HTTP API runs the session and its draw, the venues'
recorders segment real video files (made here with OpenCV) into the notary through their durable queues,
and the project's extract verifies offline with the draw re-run and every camera's recording complete.
Removing one segment, editing one frame or changing the draw result is each detected."""

import json
import zipfile
from pathlib import Path

from devices.queue import EvidenceQueue
from devices.recorder import Recorder, RecorderConfig
from notary.client import NotaryClient, SubmitterKey
from tests.conftest import device_bindings
from tests.devices.conftest import make_video
from tests.hub.conftest import MAIN, PROJECT, QD, YT, Stack, published, setup_session, slot_around_now
from tests.hub.test_evaluation import _extract
from verifier.extract import ExtractReport, canonical_zip, verify_extract


def _messages(r: ExtractReport) -> str:
    return "\n".join([*r.errors, *(f.detail for f in r.findings if not f.ok),
                      *(e for rec in r.records for e in rec.errors),
                      *(f"{s.name}: {s.detail}" for s in r.sessions if not s.ok)])


def test_session_with_real_recordings(stack: Stack, tmp_path: Path) -> None:
    st = stack
    setup_session(st, slot=slot_around_now())
    committed = st.call("POST", "/sessions/S-1/draws", {
        "criteria": {"specialty": "房屋建筑工程"}, "conflicts": [],
        "venues": [{"venue_id": MAIN, "count": 3}, {"venue_id": QD, "count": 2}, {"venue_id": YT, "count": 2}]}, 201)
    drawn = st.call("POST", f"/draws/{committed['draw_id']}/execute")
    assert len(drawn["selected"]) == 7

    media = tmp_path / "media"
    for venue in (MAIN, QD):
        camera = SubmitterKey.generate(f"{venue}.cam1")
        st.admin.register(camera, "device", *device_bindings(camera.principal_id))
        video = make_video(tmp_path / f"{venue}.avi", frames=45, fps=10)
        queue = EvidenceQueue(tmp_path / f"{venue}.queue.db", camera, NotaryClient(st.notary_url), batch_size=3)
        recorder = Recorder(RecorderConfig(
            source=str(video), camera_id="cam1", project_id=PROJECT, session_id="S-1", venue_id=venue,
            device_id=camera.submitter_id, output_dir=media / venue, segment_seconds=1.0, codec="MJPG"), queue)
        segments = recorder.run()
        assert len(segments) == 5
        queue.drain(timeout=30)
        status = queue.status()
        assert status.pending == 0 and status.sent == 5 and status.refused == 0, status
        queue.close()

    path = _extract(st, tmp_path, "session.zip")
    roots = published(st)
    report = verify_extract(path, roots, media=media)
    assert report.ok, _messages(report)
    checks = {s.name: s for s in report.sessions}
    for venue in (MAIN, QD):
        assert checks[f"recording {venue}/cam1"].ok and "5 segments, no gap" in checks[f"recording {venue}/cam1"].detail
        assert checks[f"media {venue}/cam1"].detail == ("5 of 5 segment files present, 0 missing, "
                                                        "all match their logged hashes")
    assert checks[f"draw {committed['draw_id']}"].ok

    # One edited frame: a byte inside the third segment file of the Qingdao camera.
    victim = sorted((media / QD).glob("cam1-*"))[2]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x10
    victim.write_bytes(bytes(data))
    edited = verify_extract(path, roots, media=media)
    assert not edited.ok and f"segment 2 file {victim.name} differs" in _messages(edited)

    # One segment removed from the extract, even by someone who can re-sign nothing: the manifest lists it.
    with zipfile.ZipFile(path) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    manifest = json.loads(files["manifest.json"])
    segment_files = [r["file"] for r in manifest["records"]
                     if json.loads(files[r["file"]])["entry"]["record"]["type"] == "recording_segment"]
    removed = dict(files)
    removed.pop(segment_files[1])
    (tmp_path / "removed.zip").write_bytes(canonical_zip(list(removed.items())))
    gone = verify_extract(tmp_path / "removed.zip", roots)
    assert not gone.ok and f"extract has no {segment_files[1]}" in _messages(gone)

    # A changed draw result: the edited record file is not the one the manifest lists.
    changed = dict(files)
    for name in [r["file"] for r in manifest["records"]]:
        record_file = json.loads(changed[name])
        if record_file["entry"]["record"]["type"] == "draw_result":
            selected = record_file["entry"]["record"]["payload"]["selected"]
            selected[0], selected[-1] = selected[-1], selected[0]
            changed[name] = json.dumps(record_file).encode()
    (tmp_path / "changed.zip").write_bytes(canonical_zip(list(changed.items())))
    forged = verify_extract(tmp_path / "changed.zip", roots)
    assert not forged.ok and "is not the member the notary signed" in _messages(forged)
