"""A genuine project extract to forge from, and the moves a forger has: edit members and lay the archive out
again (anyone), or also re-list the members and re-sign the manifest (the notary's own key)."""

import base64
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from notary.extract import build_extract, published_roots
from notary.keys import NotaryKey
from notary.log import Disclosure, Submission
from notary.service import Notary
from tests.conftest import Participants, make_config
from verifier.canonical import canonical_bytes
from verifier.commitments import commit
from verifier.draw import draw, pool_digest
from verifier.extract import ExtractReport, canonical_zip, verify_extract
from verifier.manifest import MANIFEST, MANIFEST_CONTEXT, SIGNATURE
from verifier.merkle import leaf_hash
from verifier.times import format_time
from verifier.trust import TrustRoots

Files = dict[str, bytes]
POOL = [f"E-{i:03d}" for i in range(1, 41)]
SEED = bytes(range(32))
SALT = bytes(range(100, 132))
IDENTITY = "370102197001011234"


@dataclass
class Genuine:
    data: bytes
    roots: TrustRoots
    key: NotaryKey


def _now(offset: float = 0.0) -> str:
    return format_time(datetime.now(UTC) + timedelta(seconds=offset))


def record(kind: str, payload: dict[str, Any], device: str = "hub-1", occurred_at: str | None = None,
           session: str = "S-1") -> dict[str, Any]:
    return {"type": kind, "project_id": "P-1", "session_id": session, "venue_id": "V-1", "device_id": device,
            "occurred_at": occurred_at or _now(-1), "payload": payload}


def booking(start: str, end: str) -> dict[str, Any]:
    return record("booking", {"booking_id": "B-1", "action": "reserved", "main_venue_id": "V-1", "venue_id": "V-1",
                              "room": "评标室 1", "slot_start": start, "slot_end": end})


def commitment(draw_id: str) -> dict[str, Any]:
    return record("draw_commitment", {
        "draw_id": draw_id, "pool": POOL, "pool_digest": pool_digest(POOL), "criteria": {"specialty": "civil"},
        "count": 5, "recusal_rules": [], "seed_commitment": hashlib.sha256(SEED).hexdigest()})


def segment_bytes(index: int) -> bytes:
    return f"frames of segment {index}".encode() * 100


def segments(count: int, first_start: datetime, previous: str | None = None) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        start, end = first_start + timedelta(seconds=i), first_start + timedelta(seconds=i + 1)
        content = segment_bytes(i)
        digest = hashlib.sha256(content).hexdigest()
        seg = record("recording_segment", {
            "camera_id": "cam1", "segment_index": i, "start": format_time(start), "end": format_time(end),
            "frame_count": 10, "sha256": digest, "previous_segment": previous}, device="V-1.cam1",
            occurred_at=format_time(end))
        seg["attachments"] = [{"name": f"cam1-{i:05d}.mp4", "sha256": digest, "size": len(content),
                               "media_type": "video/mp4"}]
        out.append(seg)
        previous = digest
    return out


class Project:
    """A notary with a session under way: booking, a committed and anchored draw, its result, a check-in
    with a disclosed commitment, a camera's recording. Tests add what their forgery needs, then `finish`."""

    def __init__(self, folder: Path, slot: tuple[datetime, datetime] | None = None, log_id: str = "province",
                 ) -> None:
        self.notary = Notary(make_config(folder / "notary", log_id=log_id))
        self.people = Participants(self.notary)
        now = datetime.now(UTC)
        start, end = slot or (now - timedelta(hours=1), now + timedelta(hours=8))
        self.submit("hub-1", [booking(format_time(start), format_time(end))])

    def submit(self, who: str, records: list[dict[str, Any]], disclosures: list[Disclosure] | None = None,
               ) -> list[int]:
        key = {"hub-1": self.people.hub, "V-1.cam1": self.people.camera, "V-1.checkin": self.people.station}[who]
        result = self.notary.log.submit(Submission(who, records, key.sign_batch(records), disclosures or ()))
        return [r.leaf_index for r in result.receipts]

    def draw(self, draw_id: str, publish: bool = True) -> None:
        [leaf] = self.submit("hub-1", [commitment(draw_id)])
        anchor = self.notary.sealer.seal()
        assert anchor is not None
        if publish:
            selected = draw(POOL, 5, SEED, anchor.root)
            self.submit("hub-1", [record("draw_result", {
                "draw_id": draw_id, "commitment_leaf": leaf, "beacon": anchor.root.hex(), "revealed_seed": SEED.hex(),
                "excluded": [], "selected": selected})])

    def session(self) -> None:
        self.draw("D-1")
        self.submit("V-1.checkin", [record("checkin", {"expert_commitment": commit(SALT, IDENTITY), "method": "face",
                                                       "result": "unverified"}, device="V-1.checkin")],
                    [Disclosure(0, "expert_commitment", SALT.hex(), IDENTITY)])
        self.submit("V-1.cam1", segments(6, datetime.now(UTC) - timedelta(minutes=10)))

    def archive(self) -> None:
        leaves, hashes = [], []
        for seq, entry in self.notary.log.entries(after=-1, limit=1000, project_id="P-1"):
            if json.loads(entry)["record"]["session_id"] == "S-1":
                leaves.append(seq)
                hashes.append(leaf_hash(entry).hex())
        self.submit("hub-1", [record("archive", {"archive_id": "A-S-1", "leaves": leaves, "leaf_hashes": hashes})])

    def finish(self) -> Genuine:
        self.notary.sealer.seal()
        data = build_extract(self.notary.log, self.notary.ledger, "P-1", disclose=True)
        genuine = Genuine(data, published_roots(self.notary.log, self.notary.ledger), self.notary.key)
        self.notary.close()
        return genuine


def genuine_project(folder: Path) -> Genuine:
    """The genuine extract forgeries start from: a session with a draw, a check-in, a recording, the archive."""
    project = Project(folder)
    project.session()
    project.archive()
    return project.finish()


def files_of(data: bytes) -> Files:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def rezip(files: Files) -> bytes:
    return canonical_zip(list(files.items()))


def resign(files: Files, key: NotaryKey, manifest: dict[str, Any] | None = None, raw: bytes | None = None) -> None:
    """List the members as they now are and sign the manifest again, as only the notary can."""
    manifest = manifest if manifest is not None else json.loads(files[MANIFEST])
    manifest["members"] = [{"name": n, "sha256": hashlib.sha256(d).hexdigest(), "size": len(d)}
                           for n, d in files.items() if n not in (MANIFEST, SIGNATURE)]
    body = raw if raw is not None else canonical_bytes(manifest)
    files[MANIFEST] = body
    files[SIGNATURE] = base64.b64encode(key.sign(MANIFEST_CONTEXT + body)) + b"\n"


def record_names(files: Files) -> list[str]:
    return sorted(n for n in files if n.startswith("records/"))


def record_of_type(files: Files, kind: str) -> str:
    return next(n for n in record_names(files) if json.loads(files[n])["entry"]["record"]["type"] == kind)


def verify(tmp_path: Path, data: bytes, roots: TrustRoots | None, **kwargs: Any) -> ExtractReport:
    path = tmp_path / "forged.zip"
    path.write_bytes(data)
    return verify_extract(path, roots, **kwargs)


def messages(report: ExtractReport) -> str:
    return "\n".join([*report.errors, *(f.detail for f in report.findings if not f.ok),
                      *(e for r in report.records for e in r.errors),
                      *(f"{s.name}: {s.detail}" for s in report.sessions if not s.ok)])
