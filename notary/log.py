"""The evidence log: sequencing, durable appends, tree state, proofs and receipts.

One writer appends at a time. A batch is checked in full (submitter, role, schema, signature,
disclosures) before anything is written, then appended in one transaction together with the tree
nodes it completes. A record is acknowledged only after that transaction commits. The right edge of
the tree (a compact range) is kept in memory, so an append costs O(1) amortised hashes and a proof
costs O(log n) node reads at any size.
"""

import base64
import binascii
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from notary import store
from notary.keys import NotaryKey
from notary.records import ROLES, SchemaViolation, validate_record
from notary.tree import CompactRange, NodeId, batch_tree, consistency_proof, inclusion_proof, tree_root
from verifier.canonical import canonical_bytes
from verifier.commitments import verify_disclosure
from verifier.errors import VerificationError
from verifier.merkle import leaf_hash
from verifier.note import Checkpoint
from verifier.signatures import (
    RECEIPT_CONTEXT,
    SUBMISSION_CONTEXT,
    PublicKey,
    batch_statement,
    key_algorithm,
    load_public_key,
    verify_signature,
)

MAX_BATCH = 10_000


class RecordRejected(Exception):
    """A submission refused before anything was written; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Disclosure:
    index: int
    field: str
    salt: str
    value: str


@dataclass(frozen=True)
class Submission:
    submitter: str
    records: Sequence[Any]
    signature: str  # base64
    disclosures: Sequence[Disclosure] = ()


@dataclass(frozen=True)
class SubmitResult:
    receipts: list[dict[str, Any]]
    appended: int  # the rest were already in the log


@dataclass
class Submitter:
    submitter_id: str
    role: str
    public_key: str
    registered_at: str
    revoked_at: str | None = None
    key: PublicKey | None = field(default=None, repr=False)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _entry_bytes(
    seq: int, project_seq: int, received_at: str, record: bytes, submitter: str, alg: str,
    index: int, path: list[bytes], size: int, sig_b64: str,
) -> bytes:
    # Keys in RFC 8785 order; every value but `record` (already canonical) is ASCII by validation,
    # so this equals rfc8785.dumps of the same object (tests check it against the library).
    path_json = ",".join(f'"{h.hex()}"' for h in path)
    return (
        f'{{"project_seq":{project_seq},"received_at":"{received_at}","record":'.encode()
        + record
        + f',"seq":{seq},"signature":{{"alg":"{alg}","index":{index},"path":[{path_json}],'
        f'"size":{size},"value":"{sig_b64}"}},"submitter":"{submitter}"}}'.encode()
    )


class EvidenceLog:
    def __init__(self, engine: Engine, key: NotaryKey, log_id: str) -> None:
        self.engine = engine
        self.key = key
        self.log_id = log_id
        self._lock = threading.Lock()
        self._submitters: dict[str, Submitter] = {}
        self._project_next: dict[str, int] = {}
        self._tree = self._load_tree()
        self._load_submitters()

    # ----- state -----

    @property
    def size(self) -> int:
        return self._tree.size

    def _load_tree(self) -> CompactRange:
        with self.engine.connect() as conn:
            size = conn.execute(select(func.count()).select_from(store.leaves)).scalar_one()
            last = conn.execute(select(func.max(store.leaves.c.seq))).scalar()
        if size and last != size - 1:
            raise RuntimeError(f"log has {size} leaves but its last sequence number is {last}")
        ids = CompactRange.node_ids(size)
        found = self._fetch(ids)
        return CompactRange(size, [found[i] for i in ids])

    def _fetch(self, ids: Iterable[NodeId]) -> Mapping[NodeId, bytes]:
        wanted = {store.node_id(level, index): (level, index) for level, index in ids}
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(store.nodes.c.id, store.nodes.c.hash).where(store.nodes.c.id.in_(list(wanted)))
            ).all()
        found = {wanted[row.id]: bytes(row.hash) for row in rows}
        if len(found) != len(wanted):
            missing = sorted(set(wanted.values()) - set(found))
            raise RuntimeError(f"tree nodes missing from the database: {missing[:5]}")
        return found

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        if size == self.size:
            return self._tree.root()
        return tree_root(size, self._fetch)

    # ----- submitters -----

    def _load_submitters(self) -> None:
        with self.engine.connect() as conn:
            for row in conn.execute(select(store.submitters)):
                self._submitters[row.submitter_id] = Submitter(**row._asdict())

    def register_submitter(self, submitter_id: str, role: str, public_key_pem: str) -> Submitter:
        if role not in ROLES:
            raise RecordRejected(422, f"role must be one of {sorted(ROLES)}, got {role!r}")
        try:
            key = load_public_key(public_key_pem)
        except VerificationError as exc:
            raise RecordRejected(422, f"submitter {submitter_id}: {exc}") from exc
        with self._lock:
            existing = self._submitters.get(submitter_id)
            if existing is not None:
                if existing.public_key.strip() == public_key_pem.strip() and existing.role == role:
                    return existing
                raise RecordRejected(409, f"submitter {submitter_id} is already registered with another key")
            sub = Submitter(submitter_id, role, public_key_pem, now_rfc3339(), None, key)
            with self.engine.begin() as conn:
                conn.execute(
                    insert(store.submitters).values(
                        submitter_id=submitter_id, role=role, public_key=public_key_pem,
                        registered_at=sub.registered_at,
                    )
                )
            self._submitters[submitter_id] = sub
            return sub

    def revoke_submitter(self, submitter_id: str) -> Submitter:
        with self._lock:
            sub = self._submitters.get(submitter_id)
            if sub is None:
                raise RecordRejected(404, f"submitter {submitter_id} is not registered")
            if sub.revoked_at is None:
                sub.revoked_at = now_rfc3339()
                with self.engine.begin() as conn:
                    conn.execute(
                        update(store.submitters)
                        .where(store.submitters.c.submitter_id == submitter_id)
                        .values(revoked_at=sub.revoked_at)
                    )
            return sub

    def submitters(self) -> list[Submitter]:
        return sorted(self._submitters.values(), key=lambda s: s.submitter_id)

    def _submitter(self, submitter_id: str) -> tuple[Submitter, PublicKey]:
        sub = self._submitters.get(submitter_id)
        if sub is None:
            raise RecordRejected(403, f"submitter {submitter_id!r} is not registered with this notary")
        if sub.revoked_at is not None:
            raise RecordRejected(
                403, f"key of submitter {submitter_id} (registered {sub.registered_at}) was revoked {sub.revoked_at}"
            )
        if sub.key is None:
            sub.key = load_public_key(sub.public_key)
        return sub, sub.key

    # ----- submission -----

    def submit(self, submission: Submission) -> "SubmitResult":
        """Check and durably append a batch; return one receipt per record, in order.

        A record already in the log (same canonical bytes) is not appended again: its receipt is the
        one it got the first time.
        """
        records = submission.records
        if not 1 <= len(records) <= MAX_BATCH:
            raise RecordRejected(413 if records else 400, f"a batch holds 1 to {MAX_BATCH} records, got {len(records)}")
        sub, key = self._submitter(submission.submitter)
        allowed = ROLES[sub.role]
        canon: list[bytes] = []
        for i, record in enumerate(records):
            try:
                kind = validate_record(record)
            except SchemaViolation as exc:
                raise RecordRejected(422, f"record {i}: {exc}") from exc
            if kind not in allowed:
                raise RecordRejected(403, f"record {i}: role {sub.role} of {sub.submitter_id} may not submit {kind}")
            if sub.role == "device" and record["device_id"] != sub.submitter_id:
                raise RecordRejected(
                    403, f"record {i}: device {sub.submitter_id} may not submit for device {record['device_id']}"
                )
            canon.append(canonical_bytes(record))
        members = [leaf_hash(c) for c in canon]
        batch_root, paths = batch_tree(members)
        try:
            signature = base64.b64decode(submission.signature, validate=True)
        except binascii.Error as exc:
            raise RecordRejected(400, "signature is not base64") from exc
        try:
            statement = batch_statement(SUBMISSION_CONTEXT, sub.submitter_id, len(records), batch_root)
            verify_signature(key, signature, statement, sub.submitter_id)
        except VerificationError as exc:
            raise RecordRejected(
                401, f"signature does not verify for {sub.submitter_id} (key registered {sub.registered_at}) "
                f"over a batch of {len(records)} records with root {batch_root.hex()}"
            ) from exc
        openings = self._check_disclosures(records, submission.disclosures)
        record_hashes = [hashlib.sha256(c).digest() for c in canon]
        sig_b64 = base64.b64encode(signature).decode()
        alg = key_algorithm(key)
        with self._lock:
            return self._append(sub.submitter_id, records, canon, record_hashes, paths, alg, sig_b64, openings)

    def _check_disclosures(
        self, records: Sequence[Any], disclosures: Sequence[Disclosure]
    ) -> dict[int, list[Disclosure]]:
        openings: dict[int, list[Disclosure]] = {}
        for d in disclosures:
            if not 0 <= d.index < len(records):
                raise RecordRejected(422, f"disclosure names record {d.index}, outside the batch of {len(records)}")
            payload = records[d.index]["payload"]
            if not d.field.endswith("_commitment") or d.field not in payload:
                raise RecordRejected(422, f"record {d.index} has no commitment field {d.field!r}")
            try:
                verify_disclosure(payload[d.field], d.salt, d.value, f"record {d.index} {d.field}")
            except VerificationError as exc:
                raise RecordRejected(422, str(exc)) from exc
            openings.setdefault(d.index, []).append(d)
        return openings

    def _project_seq(self, conn: Any, project_id: str) -> int:
        nxt = self._project_next.get(project_id)
        if nxt is None:
            last = conn.execute(
                select(func.max(store.leaves.c.project_seq)).where(store.leaves.c.project_id == project_id)
            ).scalar()
            nxt = 0 if last is None else last + 1
        return nxt

    def _append(
        self, submitter: str, records: Sequence[Any], canon: list[bytes], record_hashes: list[bytes],
        paths: list[list[bytes]], alg: str, sig_b64: str, openings: dict[int, list[Disclosure]],
    ) -> "SubmitResult":
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(store.leaves.c.record_hash, store.leaves.c.seq).where(
                    store.leaves.c.record_hash.in_(set(record_hashes))
                )
            ).all()
        known: dict[bytes, int] = {bytes(r.record_hash): r.seq for r in rows}
        tree = CompactRange(self._tree.size, self._tree.nodes)
        received_at = now_rfc3339()
        leaf_rows: list[dict[str, Any]] = []
        node_rows: list[dict[str, Any]] = []
        disclosure_rows: list[dict[str, Any]] = []
        next_seq: dict[str, int] = {}
        placed: dict[bytes, int] = {}
        start = tree.size
        with self.engine.begin() as conn:
            for i, rh in enumerate(record_hashes):
                if rh in known or rh in placed:
                    continue
                project_id = records[i]["project_id"]
                pseq = next_seq.get(project_id)
                if pseq is None:
                    pseq = self._project_seq(conn, project_id)
                next_seq[project_id] = pseq + 1
                seq = tree.size
                entry = _entry_bytes(
                    seq, pseq, received_at, canon[i], submitter, alg, i, paths[i], len(records), sig_b64
                )
                lh = leaf_hash(entry)
                placed[rh] = seq
                leaf_rows.append(
                    {"seq": seq, "record_hash": rh, "leaf_hash": lh, "entry": entry, "project_id": project_id,
                     "project_seq": pseq, "batch_start": start, "batch_size": 0}
                )
                node_rows.extend({"id": store.node_id(*nid), "hash": h} for nid, h in tree.append(lh))
                disclosure_rows.extend(
                    {"seq": seq, "field": d.field, "salt": bytes.fromhex(d.salt), "value": d.value}
                    for d in openings.get(i, ())
                )
            for row in leaf_rows:
                row["batch_size"] = len(leaf_rows)
            store.insert_many(conn, store.leaves, leaf_rows)
            store.insert_many(conn, store.nodes, node_rows)
            store.insert_many(conn, store.disclosures, disclosure_rows)
        # Committed: only now does the in-memory state move on.
        self._tree = tree
        self._project_next.update(next_seq)
        fresh = self._receipts([(r["seq"], r["leaf_hash"], r["record_hash"]) for r in leaf_rows], received_at)
        by_hash = {r["record_hash"]: fresh[r["seq"] - start] for r in leaf_rows}
        receipts = [by_hash[rh] if rh in by_hash else self.receipt(known[rh]) for rh in record_hashes]
        return SubmitResult(receipts, len(leaf_rows))

    # ----- receipts -----

    def _receipts(self, members: list[tuple[int, bytes, bytes]], received_at: str) -> list[dict[str, Any]]:
        if not members:
            return []
        root, paths = batch_tree([lh for _, lh, _ in members])
        sig = base64.b64encode(
            self.key.sign(batch_statement(RECEIPT_CONTEXT, self.log_id, len(members), root))
        ).decode()
        return [
            {
                "log_id": self.log_id,
                "leaf_index": seq,
                "leaf_hash": lh.hex(),
                "record_hash": rh.hex(),
                "received_at": received_at,
                "batch": {"size": len(members), "index": i, "path": [h.hex() for h in paths[i]]},
                "signature": sig,
            }
            for i, (seq, lh, rh) in enumerate(members)
        ]

    def receipt(self, seq: int) -> dict[str, Any]:
        """The receipt a leaf was given when it was appended (signatures are deterministic)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(store.leaves).where(store.leaves.c.seq == seq)).one()
            batch = conn.execute(
                select(store.leaves.c.seq, store.leaves.c.leaf_hash, store.leaves.c.record_hash)
                .where(store.leaves.c.seq >= row.batch_start, store.leaves.c.seq < row.batch_start + row.batch_size)
                .order_by(store.leaves.c.seq)
            ).all()
        received_at = json.loads(row.entry)["received_at"]
        members = [(r.seq, bytes(r.leaf_hash), bytes(r.record_hash)) for r in batch]
        receipt: dict[str, Any] = self._receipts(members, received_at)[seq - row.batch_start]
        return receipt

    # ----- reading and proofs -----

    def entry(self, seq: int) -> bytes | None:
        with self.engine.connect() as conn:
            raw = conn.execute(select(store.leaves.c.entry).where(store.leaves.c.seq == seq)).scalar()
        return None if raw is None else bytes(raw)

    def entries(self, after: int = -1, limit: int = 100, project_id: str | None = None) -> list[tuple[int, bytes]]:
        query = select(store.leaves.c.seq, store.leaves.c.entry).where(store.leaves.c.seq > after)
        if project_id is not None:
            query = query.where(store.leaves.c.project_id == project_id)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(store.leaves.c.seq).limit(limit)).all()
        return [(r.seq, bytes(r.entry)) for r in rows]

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        self._check_size(size)
        return inclusion_proof(index, size, self._fetch)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        self._check_size(second)
        return consistency_proof(first, second, self._fetch)

    def _check_size(self, size: int) -> None:
        if size > self.size:
            raise ValueError(f"tree size {size} is beyond the log's size {self.size}")

    def disclosures(self, seq: int) -> list[dict[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(store.disclosures).where(store.disclosures.c.seq == seq)).all()
        return [{"field": r.field, "salt": bytes(r.salt).hex(), "value": r.value} for r in rows]

    # ----- checkpoints -----

    def sign_checkpoint(self) -> tuple[int, bytes, str]:
        """Sign and store a checkpoint of the current tree (or return the stored one of that size)."""
        with self._lock:
            size, root = self._tree.size, self._tree.root()
        with self.engine.begin() as conn:
            note = conn.execute(select(store.checkpoints.c.note).where(store.checkpoints.c.size == size)).scalar()
            if note is None:
                note = self.key.sign_checkpoint(Checkpoint(self.key.name, size, root))
                conn.execute(
                    insert(store.checkpoints).values(size=size, root=root, note=note, signed_at=now_rfc3339())
                )
        return size, root, note

    def latest_checkpoint(self) -> tuple[int, bytes, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(store.checkpoints).order_by(store.checkpoints.c.size.desc()).limit(1)
            ).first()
        return None if row is None else (row.size, bytes(row.root), row.note)
