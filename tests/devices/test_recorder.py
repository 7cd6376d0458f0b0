"""The recorder against a real notary over HTTP, on real video files made with OpenCV."""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import pytest

from devices.queue import EvidenceQueue, open_queue
from devices.recorder import Recorder, RecorderConfig, Segment, sha256_file
from notary.client import SubmitterKey
from tests.devices.conftest import LiveNotary, make_video, notary_down, segments_of, wait_for
from verifier.entry import LogEntry
from verifier.session import recording_continuity
from verifier.times import format_time, parse_time

DEVICE = "V-1.cam1"
FPS = 20.0


def config(source: Path, out: Path, **kw: Any) -> RecorderConfig:
    defaults: dict[str, Any] = {"segment_seconds": 0.5}
    defaults.update(kw)
    return RecorderConfig(source=str(source), camera_id="cam1", project_id="P-1", session_id="S-1",
                          venue_id="V-1", device_id=DEVICE, output_dir=out, **defaults)


def frames_in(path: Path) -> int:
    cap = cv2.VideoCapture(str(path))
    n = 0
    while n < 100_000 and cap.read()[0]:
        n += 1
    cap.release()
    return n


def assert_complete(entries: list[LogEntry], out: Path, total_frames: int) -> list[LogEntry]:
    """Every segment once, in order, chained without gap, every file present and matching its hash."""
    segs = segments_of(entries, "cam1")
    assert [e.record["payload"]["segment_index"] for e in segs] == list(range(len(segs))), "missing or reordered"
    assert len({e.record_hash for e in segs}) == len(segs), "a segment is in the log twice"
    [check] = [c for c in recording_continuity(entries) if c.name == "recording V-1/cam1"]
    assert check.ok, check.detail
    for e in segs:
        p, [att] = e.record["payload"], e.record["attachments"]
        path = out / att["name"]
        assert sha256_file(path) == (p["sha256"], att["size"]) == (att["sha256"], path.stat().st_size)
        assert frames_in(path) == p["frame_count"]
    assert sum(e.record["payload"]["frame_count"] for e in segs) == total_frames
    return segs


@pytest.fixture
def camera_key(live_notary: LiveNotary, tmp_path: Path) -> SubmitterKey:
    key = SubmitterKey.load_or_create(tmp_path / "state" / f"{DEVICE}.key", DEVICE)
    live_notary.register(key)
    return key


def test_segments_form_a_chain_the_notary_accepts(live_notary: LiveNotary, camera_key: SubmitterKey,
                                                  tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.avi", frames=47, fps=FPS)
    out = tmp_path / "segments"
    queue = open_queue(tmp_path / "state" / "q.db", camera_key, live_notary.url, batch_size=3)
    segments = Recorder(config(video, out), queue).run()
    assert [s.frame_count for s in segments] == [10, 10, 10, 10, 7]
    assert queue.drain(30).refusal is None
    assert queue.status().pending == 0
    segs = assert_complete(live_notary.entries(), out, 47)
    # the receipts the queue kept are those of the leaves
    receipts = [rc for _, _, _, rc in queue.records()]
    assert [rc.leaf_index for rc in receipts if rc] == [e.leaf_index for e in segs]
    assert [rc.record_hash.hex() for rc in receipts if rc] == [e.record_hash.hex() for e in segs]
    # media clock: 0.5 s per segment from the first start, RFC 3339 with offset
    first, last = segs[0].record["payload"], segs[-1].record["payload"]
    assert first["previous_segment"] is None
    # the machine's offset, in the one encoding of times (`Z` when the machine runs on UTC)
    assert first["start"] == format_time(parse_time(first["start"], "start").astimezone())
    assert last["end"] > first["start"]
    # running again on the same file adds nothing; the chain state is kept
    again = Recorder(config(video, out), queue).run()
    assert again == []
    queue.close()


def test_a_resumed_recording_continues_the_chain(live_notary: LiveNotary, camera_key: SubmitterKey,
                                                 tmp_path: Path) -> None:
    video = make_video(tmp_path / "in.avi", frames=60, fps=FPS)
    out = tmp_path / "segments"
    queue = open_queue(tmp_path / "state" / "q.db", camera_key, live_notary.url)
    first = Recorder(config(video, out, max_frames=25), queue).run()
    assert [s.index for s in first] == [0, 1, 2]  # 10 + 10 + 5 (the run ended mid-segment)
    queue.close()
    queue = open_queue(tmp_path / "state" / "q.db", camera_key, live_notary.url)
    second = Recorder(config(video, out), queue).run()
    assert [s.index for s in second] == [3, 4, 5, 6]
    assert second[0].previous == first[-1].sha256 and second[0].start == first[-1].end
    queue.drain(30)
    assert_complete(live_notary.entries(), out, 60)
    queue.close()


RECORD_CMD = [sys.executable, "-m", "devices.cli", "record", "--camera-id", "cam1", "--venue", "V-1",
              "--device-id", DEVICE, "--project", "P-1", "--session", "S-1", "--segment-seconds", "0.5",
              "--realtime", "--batch-size", "2", "--drain-timeout", "20"]


def _queued(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db, timeout=10) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM outbox WHERE record LIKE '%recording_segment%'")
                       .fetchone()[0])
        except sqlite3.OperationalError:
            return 0


def _at_least(db: Path, n: int) -> bool:
    return _queued(db) >= n


def test_kill_9_loses_nothing_captured(live_notary: LiveNotary, camera_key: SubmitterKey, tmp_path: Path) -> None:
    frames = 120  # 6 s of video at 20 fps, 12 segments
    video = make_video(tmp_path / "in.avi", frames=frames, fps=FPS)
    out, state = tmp_path / "segments", tmp_path / "state"
    db = state / f"{DEVICE}.queue.db"
    cmd = [*RECORD_CMD, "--source", str(video), "--notary", live_notary.url, "--output-dir", str(out),
           "--state-dir", str(state)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    # killed twice: right after a segment was queued, and in the middle of writing one
    for kill_after, extra in ((3, 0.0), (7, 0.25)):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(partial(_at_least, db, kill_after), 60, f"{kill_after} queued segments")
            time.sleep(extra)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    entries = live_notary.entries()
    segs = assert_complete(entries, out, frames)
    assert len(segs) == 12
    # segments queued before each kill are all there, once; interrupted partial files are reported, not lost
    incidents = [e for e in entries if e.record["type"] == "incident"]
    kept = sorted(p.name for p in out.iterdir() if ".interrupted-" in p.name)
    assert sorted(i.record["attachments"][0]["name"] for i in incidents) == kept
    for e in incidents:
        assert sha256_file(out / e.record["attachments"][0]["name"])[0] == e.record["attachments"][0]["sha256"]
    assert not list(out.glob("*.part.*"))
    assert len(incidents) >= 1  # the second kill interrupted a segment being written


def test_notary_unreachable_while_recording(live_notary: LiveNotary, camera_key: SubmitterKey,
                                            tmp_path: Path) -> None:
    frames = 100  # 5 s at 20 fps, 10 segments of 0.5 s
    video = make_video(tmp_path / "in.avi", frames=frames, fps=FPS)
    out = tmp_path / "segments"
    queue = EvidenceQueue(tmp_path / "state" / "q.db", camera_key, None, backoff_initial=0.05, backoff_max=0.3)
    from notary.client import NotaryClient

    queue.client = NotaryClient(live_notary.url, timeout=2)
    done: list[Segment] = []
    seen = threading.Condition()

    def on_segment(s: Segment) -> None:
        with seen:
            done.append(s)
            seen.notify_all()

    recorder = Recorder(config(video, out, realtime=True), queue, on_segment=on_segment)
    result: list[list[Segment]] = []
    thread = threading.Thread(target=lambda: result.append(recorder.run()), daemon=True)
    queue.start()
    thread.start()
    try:
        wait_for(lambda: queue.status().sent >= 2, 30, "two segments sent")
        with notary_down(live_notary):
            mark = len(done)
            wait_for(lambda: len(done) >= mark + 3, 30, "three segments recorded while the notary is down")
            st = queue.status()
            assert st.pending >= 3 and st.last_error and "unreachable" in st.last_error
        thread.join(30)
        assert not thread.is_alive()
        assert queue.wait_drained(30), queue.status()
    finally:
        recorder.stop()
        queue.close()
    assert len(result[0]) == 10
    assert_complete(live_notary.entries(), out, frames)
