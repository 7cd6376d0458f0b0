"""The evidence log: sequencing, durable appends, tree state, proofs and receipts.

A batch is checked in full (submitter, role, schema, signature, disclosures) before anything is
written, then appended in one transaction together with the tree nodes it completes. A record is
acknowledged only after that transaction commits. The database is the only state: an append takes the
sequencer row lock first, then reads the tree size and its right edge (O(log n) perfect-subtree roots),
so any number of notary processes can append to one log safely, each append costs O(1) amortised hashes,
and a proof costs O(log n) node reads at any size.
"""

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from notary import store
from notary.keys import NotaryKey
from notary.records import MAX_RECORD_BYTES, ROLES, SchemaViolation, validate_record
from notary.tree import CompactRange, NodeId, batch_tree, consistency_proof, inclusion_proof, tree_root
from verifier.canonical import canonical_bytes
from verifier.commitments import verify_disclosure
from verifier.errors import VerificationError
from verifier.merkle import leaf_hash, root_of_hashes
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


def _size(conn: Connection) -> int:
    last = conn.execute(select(func.max(store.leaves.c.seq))).scalar()
    return 0 if last is None else int(last) + 1


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
        self._keys: dict[str, PublicKey] = {}  # parsed public keys by PEM: a cache, not state
        self._append_lock = store.AppendLock(engine)
        store.ensure_sequencer(engine)
        with engine.connect() as conn:
            size = _size(conn)
            count = conn.execute(select(func.count()).select_from(store.leaves)).scalar_one()
        if count != size:
            raise RuntimeError(f"log has {count} leaves but its last sequence number is {size - 1}")

    def close(self) -> None:
        self._append_lock.close()

    # ----- state -----

    @property
    def size(self) -> int:
        with self.engine.connect() as conn:
            return _size(conn)

    def _fetch(self, ids: Iterable[NodeId], conn: Connection | None = None) -> Mapping[NodeId, bytes]:
        """Perfect-subtree roots by (level, index): leaves from `leaves`, the levels above from `nodes`."""
        ids = list(ids)
        if not ids:
            return {}
        if conn is None:
            with self.engine.connect() as own:
                return self._fetch(ids, own)
        leaf_ids = [index for level, index in ids if level == 0]
        wanted = {store.node_id(level, index): (level, index) for level, index in ids if level > 0}
        found: dict[NodeId, bytes] = {}
        if leaf_ids:
            rows = conn.execute(
                select(store.leaves.c.seq, store.leaves.c.leaf_hash).where(store.leaves.c.seq.in_(leaf_ids))
            ).all()
            found.update({(0, row.seq): bytes(row.leaf_hash) for row in rows})
        if wanted:
            rows = conn.execute(
                select(store.nodes.c.id, store.nodes.c.hash).where(store.nodes.c.id.in_(list(wanted)))
            ).all()
            found.update({wanted[row.id]: bytes(row.hash) for row in rows})
        if len(found) != len(set(ids)):
            missing = sorted(set(ids) - set(found))
            raise RuntimeError(f"tree nodes missing from the database: {missing[:5]}")
        return found

    def _edge(self, conn: Connection, size: int) -> CompactRange:
        ids = CompactRange.node_ids(size)
        found = self._fetch(ids, conn)
        return CompactRange(size, [found[i] for i in ids])

    def state(self) -> tuple[int, bytes]:
        """The current tree size and root, read together."""
        with self.engine.connect() as conn:
            size = _size(conn)
            return size, self._edge(conn, size).root()

    def root(self, size: int | None = None) -> bytes:
        if size is None:
            return self.state()[1]
        return tree_root(size, self._fetch)

    # ----- submitters -----

    def _load_submitter(self, conn: Connection, submitter_id: str) -> Submitter | None:
        row = conn.execute(select(store.submitters).where(store.submitters.c.submitter_id == submitter_id)).first()
        return None if row is None else Submitter(**row._asdict())

    def register_submitter(self, submitter_id: str, role: str, public_key_pem: str) -> Submitter:
        if role not in ROLES:
            raise RecordRejected(422, f"role must be one of {sorted(ROLES)}, got {role!r}")
        try:
            load_public_key(public_key_pem)
        except VerificationError as exc:
            raise RecordRejected(422, f"submitter {submitter_id}: {exc}") from exc
        with self.engine.begin() as conn:
            store.lock_sequencer(conn)
            existing = self._load_submitter(conn, submitter_id)
            if existing is not None:
                if existing.public_key.strip() == public_key_pem.strip() and existing.role == role:
                    return existing
                raise RecordRejected(409, f"submitter {submitter_id} is already registered with another key")
            sub = Submitter(submitter_id, role, public_key_pem, now_rfc3339(), None)
            conn.execute(
                insert(store.submitters).values(
                    submitter_id=submitter_id, role=role, public_key=public_key_pem, registered_at=sub.registered_at,
                )
            )
        return sub

    def revoke_submitter(self, submitter_id: str) -> Submitter:
        with self.engine.begin() as conn:
            store.lock_sequencer(conn)  # no append of this submitter's records runs while its key is revoked
            sub = self._load_submitter(conn, submitter_id)
            if sub is None:
                raise RecordRejected(404, f"submitter {submitter_id} is not registered")
            if sub.revoked_at is None:
                sub.revoked_at = now_rfc3339()
                conn.execute(
                    update(store.submitters)
                    .where(store.submitters.c.submitter_id == submitter_id)
                    .values(revoked_at=sub.revoked_at)
                )
        return sub

    def submitters(self) -> list[Submitter]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(store.submitters).order_by(store.submitters.c.submitter_id)).all()
        return [Submitter(**row._asdict()) for row in rows]

    def _submitter(self, conn: Connection, submitter_id: str) -> tuple[Submitter, PublicKey]:
        sub = self._load_submitter(conn, submitter_id)
        if sub is None:
            raise RecordRejected(403, f"submitter {submitter_id!r} is not registered with this notary")
        if sub.revoked_at is not None:
            raise RecordRejected(
                403, f"key of submitter {submitter_id} (registered {sub.registered_at}) was revoked {sub.revoked_at}"
            )
        key = self._keys.get(sub.public_key)
        if key is None:
            key = self._keys[sub.public_key] = load_public_key(sub.public_key)
        return sub, key

    # ----- submission -----

    def submit(self, submission: Submission) -> "SubmitResult":
        """Check and durably append a batch; return one receipt per record, in order. The receipts of the
        records appended now come without their batch paths (see `_receipts`).

        A record already in the log (same canonical bytes) is not appended again: its receipt is the
        one it got the first time.
        """
        records = submission.records
        if not 1 <= len(records) <= MAX_BATCH:
            raise RecordRejected(413 if records else 400, f"a batch holds 1 to {MAX_BATCH} records, got {len(records)}")
        with self.engine.connect() as conn:
            sub, key = self._submitter(conn, submission.submitter)
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
            if len(canon[-1]) > MAX_RECORD_BYTES:
                raise RecordRejected(413, f"record {i} is {len(canon[-1])} bytes; a record holds at most "
                                          f"{MAX_RECORD_BYTES} (its project's extract must stay verifiable)")
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
        return self._append(sub, records, canon, record_hashes, paths, alg, sig_b64, openings)

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

    @staticmethod
    def _project_seq(conn: Connection, project_id: str) -> int:
        last = conn.execute(
            select(func.max(store.leaves.c.project_seq)).where(store.leaves.c.project_id == project_id)
        ).scalar()
        return 0 if last is None else int(last) + 1

    def _append(
        self, sub: Submitter, records: Sequence[Any], canon: list[bytes], record_hashes: list[bytes],
        paths: list[list[bytes]], alg: str, sig_b64: str, openings: dict[int, list[Disclosure]],
    ) -> "SubmitResult":
        leaf_rows: list[dict[str, Any]] = []
        node_rows: list[dict[str, Any]] = []
        disclosure_rows: list[dict[str, Any]] = []
        with self._append_lock.held(), self.engine.begin() as conn:
            store.lock_sequencer(conn)  # held until commit: one append at a time, across processes
            current, _ = self._submitter(conn, sub.submitter_id)
            if current.public_key != sub.public_key:
                raise RecordRejected(409, f"submitter {sub.submitter_id}'s key changed during the submission")
            rows = conn.execute(
                select(store.leaves.c.record_hash, store.leaves.c.seq).where(
                    store.leaves.c.record_hash.in_(set(record_hashes))
                )
            ).all()
            known: dict[bytes, int] = {bytes(r.record_hash): r.seq for r in rows}
            start = _size(conn)
            tree = self._edge(conn, start)
            received_at = now_rfc3339()
            next_seq: dict[str, int] = {}
            for i, rh in enumerate(record_hashes):
                if rh in known:
                    continue
                project_id = records[i]["project_id"]
                pseq = next_seq.get(project_id)
                if pseq is None:
                    pseq = self._project_seq(conn, project_id)
                next_seq[project_id] = pseq + 1
                seq = tree.size
                entry = _entry_bytes(
                    seq, pseq, received_at, canon[i], sub.submitter_id, alg, i, paths[i], len(records), sig_b64
                )
                lh = leaf_hash(entry)
                known[rh] = seq
                leaf_rows.append(
                    {"seq": seq, "record_hash": rh, "leaf_hash": lh, "entry": entry, "project_id": project_id,
                     "project_seq": pseq, "batch_start": start, "batch_size": 0}
                )
                # Level 0 is the leaves table itself; only the levels above are stored as nodes.
                node_rows.extend({"id": store.node_id(*nid), "hash": h} for nid, h in tree.append(lh)[1:])
                disclosure_rows.extend(
                    {"seq": seq, "field": d.field, "salt": bytes.fromhex(d.salt), "value": d.value}
                    for d in openings.get(i, ())
                )
            for row in leaf_rows:
                row["batch_size"] = len(leaf_rows)
            store.insert_many(conn, store.leaves, leaf_rows)
            store.insert_many(conn, store.nodes, node_rows)
            store.insert_many(conn, store.disclosures, disclosure_rows)
        members = [(r["seq"], r["leaf_hash"], r["record_hash"]) for r in leaf_rows]
        fresh = self._receipts(members, received_at, paths=False)
        by_seq = {r["seq"]: receipt for r, receipt in zip(leaf_rows, fresh, strict=True)}
        receipts = [by_seq[known[rh]] if known[rh] in by_seq else self.receipt(known[rh]) for rh in record_hashes]
        return SubmitResult(receipts, len(leaf_rows))

    # ----- receipts -----

    def _receipts(
        self, members: list[tuple[int, bytes, bytes]], received_at: str, paths: bool = True
    ) -> list[dict[str, Any]]:
        """Receipts for one appended batch, one signature over the root of its leaf hashes. Without
        `paths`, each receipt's batch path is left out: whoever holds all of them can compute it
        (`notary.client.complete_receipts`), and a submission's answer holds all of them."""
        if not members:
            return []
        hashes = [lh for _, lh, _ in members]
        root, member_paths = batch_tree(hashes) if paths else (root_of_hashes(hashes), [])
        sig = base64.b64encode(
            self.key.sign(batch_statement(RECEIPT_CONTEXT, self.log_id, len(members), root))
        ).decode()
        receipts: list[dict[str, Any]] = [
            {
                "log_id": self.log_id,
                "leaf_index": seq,
                "leaf_hash": lh.hex(),
                "record_hash": rh.hex(),
                "received_at": received_at,
                "batch": {"size": len(members), "index": i},
                "signature": sig,
            }
            for i, (seq, lh, rh) in enumerate(members)
        ]
        for receipt, path in zip(receipts, member_paths, strict=False):
            batch: dict[str, Any] = receipt["batch"]
            batch["path"] = [h.hex() for h in path]
        return receipts

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
        current = self.size
        if size > current:
            raise ValueError(f"tree size {size} is beyond the log's size {current}")

    def disclosures(self, seq: int) -> list[dict[str, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(store.disclosures).where(store.disclosures.c.seq == seq)).all()
        return [{"field": r.field, "salt": bytes(r.salt).hex(), "value": r.value} for r in rows]

    # ----- checkpoints -----

    def sign_checkpoint(self) -> tuple[int, bytes, str]:
        """Sign and store a checkpoint of the current tree (or return the stored one of that size)."""
        size, root = self.state()
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
