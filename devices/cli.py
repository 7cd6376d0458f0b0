"""`bidtrace device …`: the venue capture agents.

Every agent keeps its evidence in a durable queue under --state-dir (one SQLite file per device) before
sending it; whatever could not be sent yet goes out on the next run or with `bidtrace device flush`.
Exit status: 0 everything acknowledged by the notary, 3 evidence still queued (notary unreachable),
4 a record was refused by the notary (see `status`), 2 bad input or a refused check-in.
"""

import json
import signal
from pathlib import Path
from types import FrameType

import typer

from devices.checkin import BlobStore, CheckinConfig, CheckinRefused, CheckinStation, HubReporter, capture_photo
from devices.face import DEFAULT_THRESHOLD, EnrolledPhotos, FaceModelMissing, FaceRecognitionVerifier
from devices.forwarder import ForwardError, MediaForwarder, MediaStore
from devices.queue import EvidenceQueue, SendReport, open_queue
from devices.recorder import Recorder, RecorderConfig, RecorderError, describe
from notary.client import NotaryClient, NotaryError, SubmitterKey
from verifier.errors import MalformedInput
from verifier.sealed import load_media_public_key

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Venue capture agents (recorder, check-in).")

EXIT_PENDING, EXIT_REFUSED, EXIT_INPUT = 3, 4, 2

StateDir = typer.Option(Path("data/device"), "--state-dir", help="queue, chain state and key files of this device")
DeviceId = typer.Option(..., "--device-id", help="this device's submitter id, as registered with the notary")
KeyFile = typer.Option(None, "--key-file", help="device key (PEM; created if missing) [default: STATE_DIR/ID.key]")
NotaryUrl = typer.Option("http://127.0.0.1:8700", "--notary", help="notary base URL")
Project = typer.Option(..., "--project", help="project id (招标项目编号)")
Session = typer.Option(..., "--session", help="session id")
Venue = typer.Option(..., "--venue", help="venue id")
DrainTimeout = typer.Option(30.0, "--drain-timeout", help="seconds to keep sending queued evidence at the end")


def queue_path(state_dir: Path, device_id: str) -> Path:
    return state_dir / f"{device_id}.queue.db"


def _key(state_dir: Path, device_id: str, key_file: Path | None) -> SubmitterKey:
    return SubmitterKey.load_or_create(key_file or state_dir / f"{device_id}.key", device_id)


def _finish(queue: EvidenceQueue, timeout: float) -> int:
    report: SendReport = queue.drain(timeout)
    st = queue.status()
    if report.refusal is not None or st.refusal is not None:
        typer.echo(f"REFUSED: {report.refusal or st.refusal}", err=True)
        return EXIT_REFUSED
    if st.pending:
        typer.echo(f"{st.pending} records stay queued in {queue.path} ({report.error}); "
                   "they will be sent on the next run or with `bidtrace device flush`", err=True)
        return EXIT_PENDING
    last = st.last_receipt
    typer.echo(f"all {st.sent} queued records acknowledged"
               + (f"; last leaf {last.leaf_index} of log {last.log_id}" if last else ""))
    return 0


@app.command("record")
def record(
    source: str = typer.Option(..., "--source", help="camera index (0), stream URL, or video file"),
    camera_id: str = typer.Option(..., "--camera-id"),
    venue: str = Venue,
    device_id: str = DeviceId,
    project: str = Project,
    session: str = Session,
    key_file: Path | None = KeyFile,
    notary: str = NotaryUrl,
    segment_seconds: float = typer.Option(10.0, "--segment-seconds", help="segment length (frames = seconds × fps)"),
    output_dir: Path = typer.Option(Path("data/device/segments"), "--output-dir", help="segment files"),
    state_dir: Path = StateDir,
    max_seconds: float | None = typer.Option(None, "--max-seconds", help="stop after this long"),
    max_frames: int | None = typer.Option(None, "--max-frames", help="stop after this many frames"),
    codec: str = typer.Option("mp4v", "--codec", help="mp4v (.mp4) or MJPG (.avi)"),
    clock: str = typer.Option("auto", "--clock", help="auto, media (file time) or wall (camera time)"),
    realtime: bool = typer.Option(False, "--realtime", help="read a video file at its frame rate, like a camera"),
    audio_source: str | None = typer.Option(None, "--audio-source", help="microphone or audio input recorded "
                                            "into each segment: a file, a URL, or a device (with --audio-format)"),
    audio_format: str | None = typer.Option(None, "--audio-format", help="FFmpeg input format of --audio-source, "
                                            "e.g. alsa or pulse"),
    seal_to: Path | None = typer.Option(None, "--seal-to", help="the province's media key (X25519 public key, PEM): "
                                        "segments are kept sealed to it, never in clear at rest"),
    batch_size: int = typer.Option(50, "--batch-size", help="records per submission"),
    drain_timeout: float = DrainTimeout,
) -> None:
    """Record segments, hash-chain them and send them to the notary through the durable queue."""
    if clock not in ("auto", "media", "wall"):
        raise typer.BadParameter("--clock must be auto, media or wall")
    try:
        recipient = load_media_public_key(seal_to.read_bytes(), str(seal_to)) if seal_to is not None else None
    except (OSError, MalformedInput) as exc:
        raise typer.BadParameter(f"--seal-to: {exc}") from exc
    key = _key(state_dir, device_id, key_file)
    queue = open_queue(queue_path(state_dir, device_id), key, notary, batch_size=batch_size)
    config = RecorderConfig(
        source=source, camera_id=camera_id, project_id=project, session_id=session, venue_id=venue,
        device_id=device_id, output_dir=output_dir, segment_seconds=segment_seconds, max_frames=max_frames,
        max_seconds=max_seconds, codec=codec, clock=clock,  # type: ignore[arg-type]
        realtime=realtime, audio_source=audio_source, audio_format=audio_format, seal_to=recipient,
    )
    code = 0
    try:
        recorder = Recorder(config, queue, on_segment=lambda s: typer.echo(describe(s)))

        def _stop(signum: int, frame: FrameType | None) -> None:
            recorder.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        queue.start()
        try:
            segments = recorder.run()
        except RecorderError as exc:
            typer.echo(f"error: {exc}", err=True)
            code = EXIT_INPUT
        else:
            typer.echo(f"recorded {len(segments)} segments of camera {camera_id}; next index "
                       f"{recorder.next_index}")
        queue.stop()
        finish = _finish(queue, drain_timeout)
        code = code or finish
    finally:
        queue.close()
    raise typer.Exit(code)


def _faces(state_dir: Path, threshold: float) -> FaceRecognitionVerifier:
    blobs = BlobStore(state_dir / "blobs", state_dir / "blob.key")
    return FaceRecognitionVerifier(EnrolledPhotos(blobs, state_dir / "enrolled.json"), threshold)


Identity = typer.Option(..., "--identity", envvar="BIDTRACE_IDENTITY_NUMBER", prompt=True, hide_input=True,
                        help="the expert's identity number (only its commitment is logged); prompted for, or "
                             "from the environment")


@app.command("enrol")
def enrol(
    photo: Path = typer.Option(..., "--photo", help="the expert's enrolled photo (exactly one face)"),
    identity: str = Identity,
    state_dir: Path = StateDir,
) -> None:
    """Keep an expert's enrolled photo at this station, encrypted, for 1:1 face verification at check-in."""
    try:
        digest = _faces(state_dir, DEFAULT_THRESHOLD).enrol(identity.strip(), photo.read_bytes())
    except (OSError, ValueError, FaceModelMissing) as exc:
        typer.echo(f"enrolment refused: {exc}", err=True)
        raise typer.Exit(EXIT_INPUT) from exc
    typer.echo(f"enrolled photo {digest} (stored encrypted under {state_dir / 'blobs'})")


@app.command("forward")
def forward(
    store: str = typer.Option(..., "--store", help="the province's media store: its S3 endpoint URL"),
    bucket: str = typer.Option("media", "--bucket"),
    device_id: str = DeviceId,
    output_dir: Path = typer.Option(Path("data/device/segments"), "--output-dir", help="the recorder's segment files"),
    key_file: Path | None = KeyFile,
    notary: str = NotaryUrl,
    state_dir: Path = StateDir,
    drain_timeout: float = DrainTimeout,
) -> None:
    """Forward every recorded segment not yet in the media store, log each arrival, send the queue.
    The store's credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    import os

    access, secret = os.environ.get("AWS_ACCESS_KEY_ID", ""), os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    if not access or not secret:
        typer.echo("error: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to the media store's credentials", err=True)
        raise typer.Exit(EXIT_INPUT)
    queue = open_queue(queue_path(state_dir, device_id), _key(state_dir, device_id, key_file), notary)
    code = 0
    try:
        forwarder = MediaForwarder(MediaStore(store, bucket, access, secret), queue, output_dir)
        try:
            typer.echo(f"forwarded {forwarder.forward_pending()} segment files to {store}/{bucket}")
        except ForwardError as exc:
            typer.echo(f"{exc}; the rest waits for the next run", err=True)
            code = EXIT_PENDING
        code = _finish(queue, drain_timeout) or code
    finally:
        queue.close()
    raise typer.Exit(code)


@app.command("checkin")
def checkin(
    source: str = typer.Option(..., "--source", help="camera index (0), stream URL, or image file"),
    identity: str = Identity,
    venue: str = Venue,
    device_id: str = DeviceId,
    project: str = Project,
    session: str = Session,
    key_file: Path | None = KeyFile,
    notary: str = NotaryUrl,
    state_dir: Path = StateDir,
    drain_timeout: float = DrainTimeout,
    verify_face: bool = typer.Option(True, "--verify-face/--no-verify-face",
                                     help="compare the face with the expert's enrolled photo (`enrol`); without "
                                          "it the record says unverified"),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--face-threshold",
                                    help="largest embedding distance that is a match"),
    hub: str | None = typer.Option(None, "--hub", help="hub base URL: report the check-in to the session's roster"),
    expert_id: str | None = typer.Option(None, "--expert-id", help="the expert's id in the hub (with --hub)"),
) -> None:
    """Photograph an expert, require exactly one face, compare it with the enrolled photo, store the photo
    encrypted, submit the check-in and (with --hub) report it to the hub."""
    if (hub is None) != (expert_id is None):
        typer.echo("--hub and --expert-id go together", err=True)
        raise typer.Exit(EXIT_INPUT)
    key = _key(state_dir, device_id, key_file)
    queue = open_queue(queue_path(state_dir, device_id), key, notary)
    reporter = HubReporter(hub, key) if hub is not None else None
    try:
        try:
            faces = _faces(state_dir, threshold) if verify_face else None
            station = CheckinStation(CheckinConfig(project, session, venue, device_id), queue,
                                     BlobStore(state_dir / "blobs", state_dir / "blob.key"), verifier=faces,
                                     hub=reporter)
            result = station.check_in(identity, capture_photo(source), expert_id)
        except (CheckinRefused, FaceModelMissing, ValueError) as exc:
            typer.echo(f"check-in refused: {exc}", err=True)
            raise typer.Exit(EXIT_INPUT) from exc
        p = result.record["payload"]
        match = result.face_match
        typer.echo(f"check-in queued: photo {result.photo_sha256}, {result.faces} face, result {p['result']}"
                   + (f" by {p['provider']}: {match.decision}, distance {match.distance} (threshold "
                      f"{match.threshold})" if match is not None else " (no face comparison: unverified)"))
        code = _finish(queue, drain_timeout)
        if reporter is not None and code == 0:
            reports = station.report_to_hub()
            for answer in reports.reported:
                typer.echo(f"reported to the hub: {answer['expert_id']} {answer['roster_status']}")
            if reports.refused or reports.waiting:
                typer.echo(f"not reported to the hub: {'; '.join(reports.refused) or reports.error}", err=True)
                code = EXIT_REFUSED if reports.refused else EXIT_PENDING
    finally:
        queue.close()
        if reporter is not None:
            reporter.close()
    raise typer.Exit(code)


@app.command("status")
def status(
    device_id: str = DeviceId,
    state_dir: Path = StateDir,
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Queue depth, last receipt, and why sending stopped (if it did)."""
    path = queue_path(state_dir, device_id)
    if not path.exists():
        typer.echo(f"no queue for device {device_id} in {state_dir}", err=True)
        raise typer.Exit(EXIT_INPUT)
    queue = EvidenceQueue(path, SubmitterKey.generate(device_id))  # reads only; the key is not used
    try:
        st = queue.status()
    finally:
        queue.close()
    if as_json:
        typer.echo(json.dumps(st.as_dict(), indent=2))
        return
    last = st.last_receipt
    typer.echo(f"device {device_id}: {st.pending} pending, {st.sent} sent, {st.refused} refused, "
               f"{st.set_aside} set aside; {st.unconfirmed} sent not yet seen in a signed checkpoint")
    if st.oldest_pending_at:
        typer.echo(f"oldest pending since {st.oldest_pending_at}")
    typer.echo("last receipt: " + (f"leaf {last.leaf_index} of log {last.log_id} "
                                   f"({last.leaf_hash.hex()}, received {last.received_at})" if last else "none"))
    if st.refusal:
        typer.echo(f"BLOCKED: {st.refusal}")
    if st.first_broken:
        typer.echo(f"BROKEN PROMISE ({st.broken} records kept with their receipts): {st.first_broken}")


@app.command("flush")
def flush(
    device_id: str = DeviceId,
    state_dir: Path = StateDir,
    key_file: Path | None = KeyFile,
    notary: str = NotaryUrl,
    retry_refused: bool = typer.Option(False, "--retry-refused", help="send refused records again (cause fixed)"),
    set_aside_refused: bool = typer.Option(False, "--set-aside-refused",
                                           help="keep refused records but stop trying to send them"),
    drain_timeout: float = DrainTimeout,
) -> None:
    """Send whatever is queued."""
    queue = open_queue(queue_path(state_dir, device_id), _key(state_dir, device_id, key_file), notary)
    try:
        if retry_refused:
            typer.echo(f"{queue.retry_refused()} refused records back in line")
        if set_aside_refused:
            typer.echo(f"{queue.set_aside_refused()} refused records set aside")
        code = _finish(queue, drain_timeout)
    finally:
        queue.close()
    raise typer.Exit(code)


@app.command("register")
def register(
    device_id: str = DeviceId,
    state_dir: Path = StateDir,
    key_file: Path | None = KeyFile,
    notary: str = NotaryUrl,
    venue: str = typer.Option(..., "--venue", help="the venue this device is bound to"),
    function: str = typer.Option(..., "--function", help="recorder, checkin or signing_pad"),
    admin_id: str = typer.Option(..., "--admin-id", envvar="BIDTRACE_ADMIN_ID", help="notary administrator's id"),
    admin_key: Path = typer.Option(..., "--admin-key", envvar="BIDTRACE_ADMIN_KEY",
                                   help="notary administrator's private key (PEM)"),
) -> None:
    """Bind this device's key with the notary (role device, its venue and function); creates the key if needed."""
    from notary.access import PrincipalKey

    key = _key(state_dir, device_id, key_file)
    client = NotaryClient(notary, as_principal=PrincipalKey.load(admin_key, admin_id))
    try:
        out = client.register(key, "device", venue, function)
    except NotaryError as exc:
        typer.echo(f"registration refused: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from exc
    finally:
        client.close()
    typer.echo(f"registered {out.describe()}")


if __name__ == "__main__":
    app()
