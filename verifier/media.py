"""Recorded media against the log: every segment file that is present must be the file whose hash was logged.

Files are looked up by the attachment name that the recorder logged, in a folder named after the venue
(`MEDIA/<venue_id>/<name>`) or else directly in the media folder. Present files must match their SHA-256
and size exactly, and hold the streams their record lists (video and audio, as `verifier.streams` reads
them from the container). An absent file fails the check, since a user who asked for the media check and got
"✓" would believe the recording was all there; with `partial` the user says a partial copy is expected,
and absent files are only counted, per camera. Files may also come from the province's media store and be
sealed (`gather_media`): they are then opened with the media key and checked in clear the same way.
"""

import hashlib
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from verifier.entry import LogEntry
from verifier.errors import MalformedInput, VerificationError
from verifier.sealed import SUFFIX, unseal
from verifier.session import SessionCheck
from verifier.streams import describe_streams, parse_streams, probe_streams

CHUNK = 4 * 1024 * 1024


def file_sha256(path: Path, limit: int | None = None) -> str:
    """SHA-256 of the file, reading at most `limit` bytes (a file that grows while it is read, or a special
    file a link points to, must not keep the check reading)."""
    digest = hashlib.sha256()
    left = limit
    with path.open("rb") as f:
        while left is None or left > 0:
            chunk = f.read(CHUNK if left is None else min(CHUNK, left))
            if not chunk:
                break
            digest.update(chunk)
            left = None if left is None else left - len(chunk)
    return digest.hexdigest()


def check_media(entries: list[LogEntry], media_dir: Path, partial: bool = False) -> list[SessionCheck]:
    cameras: dict[str, list[tuple[int, dict[str, object], object]]] = defaultdict(list)
    unbound: dict[str, list[str]] = defaultdict(list)
    for e in entries:
        if e.record.get("type") != "recording_segment":
            continue
        payload = e.record.get("payload", {})
        camera = f"{e.record.get('venue_id')}/{payload.get('camera_id')}"
        index = int(payload.get("segment_index", -1))
        logged = [a for a in e.record.get("attachments", []) or [] if isinstance(a, dict)]
        # The chain (recording continuity) runs over the payload's sha256; the file checked here is the
        # attachment's. Unless they are one hash, an edited file could be logged beside an intact chain.
        if [a.get("sha256") for a in logged] != [payload.get("sha256")]:
            unbound[camera].append(f"segment {index} does not log exactly one file, the one its chain names "
                                   f"(sha256 {str(payload.get('sha256'))[:16]}…)")
        for attachment in logged:
            cameras[camera].append((index, attachment, payload.get("streams")))
        cameras.setdefault(camera, [])
    venues = {camera: camera.rsplit("/", 1)[0] for camera in cameras}
    checks = []
    if not media_dir.is_dir():
        return [SessionCheck("media", partial, f"media folder {media_dir} does not exist; "
                                               f"{sum(len(a) for a in cameras.values())} segment files are missing")]
    for camera, attachments in sorted(cameras.items()):
        present = unsafe = 0
        problems = list(unbound.get(camera, []))
        for index, attachment, streams in sorted(attachments, key=lambda a: a[0]):
            name = Path(str(attachment.get("name", "")))
            if name.name != str(name) or name.name in ("", ".", ".."):
                problems.append(f"segment {index} names an unsafe file {str(name)!r}")
                unsafe += 1
                continue
            venue = venues[camera]
            safe_venue = Path(venue).name == venue and venue not in ("", ".", "..")
            folders = [media_dir / venue, media_dir] if safe_venue else [media_dir]
            path = next((folder / name.name for folder in folders if (folder / name.name).is_file()), None)
            if path is None:
                if any((folder / (name.name + SUFFIX)).is_file() for folder in folders):
                    problems.append(f"segment {index} is there only sealed ({name.name}{SUFFIX}); give the "
                                    "province's media key to open it")
                continue
            present += 1
            size = attachment.get("size")
            if (not isinstance(size, int) or path.stat().st_size != size
                    or file_sha256(path, size + 1) != attachment.get("sha256")):
                problems.append(f"segment {index} file {name.name} differs from the logged hash")
            elif streams is not None:
                problems += _stream_problems(index, path, streams)
        missing = len(attachments) - present - unsafe
        detail = f"{present} of {len(attachments)} segment files present, {missing} missing"
        if missing and not partial:
            problems.insert(0, f"{missing} segment files are missing (say --media-partial if a partial copy is "
                               "expected)")
        if problems:
            checks.append(SessionCheck(f"media {camera}", False, f"{detail}; " + "; ".join(problems[:3])))
        else:
            checks.append(SessionCheck(f"media {camera}", True, f"{detail}, all match their logged hashes"))
    return checks


def _stream_problems(index: int, path: Path, logged: object) -> list[str]:
    """The file's streams against its record's list (read only once the file is known to be the logged one)."""
    try:
        claimed = parse_streams(logged, f"segment {index} streams")
        held = probe_streams(path)
    except MalformedInput as exc:
        return [str(exc)]
    if sorted(held, key=repr) != sorted(claimed, key=repr):
        return [f"segment {index} file {path.name} holds {describe_streams(held)}; its record says "
                f"{describe_streams(claimed)}"]
    return []


def gather_media(entries: list[LogEntry], source: str, into: Path, endpoint: str | None = None,
                 key: X25519PrivateKey | None = None) -> list[str]:
    """Copy every segment file the log names into `into/<venue>/<name>`, in clear, from `source`: a folder
    (laid out as for `check_media`) or the media store, `s3://BUCKET/PREFIX` read through `endpoint`, where the
    forwarder put them under `PREFIX/<venue>/`. Sealed files (`<name>.sealed`) are opened with `key`.
    Returns what could not be gathered; what is absent is left to `check_media` to count."""
    fetch = _store_reader(source, endpoint) if source.startswith("s3://") else _folder_reader(Path(source))
    problems: list[str] = []
    for e in entries:
        if e.record.get("type") != "recording_segment":
            continue
        venue = str(e.record.get("venue_id"))
        for attachment in e.record.get("attachments", []) or []:
            name = str(attachment.get("name", "")) if isinstance(attachment, dict) else ""
            size = attachment.get("size") if isinstance(attachment, dict) else None
            if not isinstance(size, int) or Path(name).name != name or name in ("", ".", "..") or \
                    Path(venue).name != venue or venue in ("", ".", ".."):
                continue  # check_media names these
            limit = size + 1024  # a sealed file is its plaintext and a header
            sealed = fetch(venue, name + SUFFIX, limit)
            data = fetch(venue, name, limit) if sealed is None else None
            if sealed is not None:
                if key is None:
                    problems.append(f"{venue}/{name} is sealed; give the province's media key to open it")
                    continue
                try:
                    data = unseal(sealed, key, name)
                except VerificationError as exc:
                    problems.append(str(exc))
                    continue
            if data is not None:
                (into / venue).mkdir(parents=True, exist_ok=True)
                (into / venue / name).write_bytes(data)
    return problems


Reader = Callable[[str, str, int], bytes | None]


def _folder_reader(folder: Path) -> Reader:
    def read(venue: str, name: str, limit: int) -> bytes | None:
        for path in (folder / venue / name, folder / name):
            if path.is_file():
                with path.open("rb") as f:
                    return f.read(limit + 1)
        return None

    return read


def _store_reader(url: str, endpoint: str | None) -> Reader:
    """Objects of an S3 bucket (credentials from the environment, as for any S3 client)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, _, prefix = url[len("s3://"):].partition("/")
    if not bucket:
        raise MalformedInput(f"media store URL {url!r} names no bucket (s3://BUCKET/PREFIX)")
    prefix = prefix.strip("/")
    client = boto3.client("s3", endpoint_url=endpoint)

    def read(venue: str, name: str, limit: int) -> bytes | None:
        key = "/".join(part for part in (prefix, venue, name) if part)
        try:
            body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{limit}")["Body"]
            return bytes(body.read(limit + 1))
        except client.exceptions.NoSuchKey:
            return None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                return None
            raise MalformedInput(f"the media store refused {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise MalformedInput(f"the media store at {endpoint or 'the default endpoint'} cannot be read: "
                                 f"{exc}") from exc

    return read
