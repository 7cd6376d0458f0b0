"""The evidence log: sequencing, durable appends, tree state, proofs and receipts.

A batch is checked in full (submitter, role, schema, signature, disclosures) before anything is
written. Checked batches are appended in groups: whatever waits while one group commits forms the
next, all of it in one transaction with the tree nodes it completes, one commit and one fsync; each
record is acknowledged only after its group commits (the worker processes of one notary hand their
checked batches to one sequencer, `notary.sequencer`, so groups span them). The database is the only
state: a group takes the sequencer row lock first, then reads the tree size and its right edge
(O(log n) perfect-subtree roots) and its projects' heads, so any number of notary processes can append
to one log safely, each append costs O(1) amortised hashes, and a proof costs O(log n) node reads at
any size.
"""
import asyncio
import base64
import binascii
import hashlib
import json
import queue
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from notary import store
from notary.keys import NotaryKey
from notary.records import MAX_RECORD_BYTES, ROLES, SchemaViolation, validate_record
from notary.tree import CompactRange, NodeId, batch_tree, consistency_proof, inclusion_proof, tree_root
from verifier.canonical import canonical_bytes
from verifier.commitments import verify_disclosure
from verifier.entry import encode_entry
from verifier.errors import VerificationError
from verifier.heads import ProjectHead, heads_line
from verifier.merkle import leaf_hash, root_of_hashes
from verifier.note import Checkpoint
from verifier.receipt import Receipt, receipt_member, receipt_statement
from verifier.signatures import (
    SUBMISSION_CONTEXT,
    BatchSignature,
    PublicKey,
    batch_statement,
    key_algorithm,
    load_public_key,
    verify_signature,
)
from verifier.times import now_utc

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
    receipts: list[Receipt]
    appended: int  # the rest were already in the log
    # Leaves whose receipts are answered without their batch path: the answer holds every member of their
    # batch, so the client computes it (`notary.client.complete_receipts`).
    pathless: frozenset[int] = frozenset()

    def encode(self) -> list[dict[str, Any]]:
        return [r.encode(with_path=r.leaf_index not in self.pathless) for r in self.receipts]


@dataclass
class Submitter:
    submitter_id: str
    role: str
    public_key: str
    registered_at: str
    revoked_at: str | None = None


def _size(conn: Connection) -> int:
    last = conn.exec_driver_sql("SELECT max(seq) FROM leaves").scalar()
    return 0 if last is None else int(last) + 1


@dataclass(frozen=True)
class _Pending:
    """A checked submission waiting for its group's commit."""

    submitter: Submitter
    project_ids: list[str]  # each record's project
    canon: list[bytes]  # each record's canonical bytes
    record_hashes: list[bytes]
    paths: list[list[bytes]]  # each record's inclusion path in the signed batch
    alg: str
    signature: str  # base64
    openings: dict[int, list[Disclosure]]


@dataclass(frozen=True)
class _Appended:
    """What one submission's part of a group commit wrote."""

    members: list[tuple[int, bytes, bytes]]  # (seq, leaf hash, record hash) of the leaves it appended
    received_at: str
    seq_of: dict[bytes, int]  # record hash -> leaf, for every record of the group, old or new

    @property
    def appended(self) -> int:
        return len(self.members)


def _still_registered(sub: Submitter, current: Submitter | None) -> RecordRejected | None:
    if current is None or current.public_key != sub.public_key:
        return RecordRejected(409, f"submitter {sub.submitter_id}'s key changed during the submission")
    if current.revoked_at is not None:
        return RecordRejected(
            403,
            f"key of submitter {sub.submitter_id} (registered {sub.registered_at}) was revoked {current.revoked_at}",
        )
    return None


class _ProjectHeads:
    """The `project_heads` rows of a group's projects, read and written inside its transaction."""

    def __init__(self, found: dict[str, tuple[int, int]], projects: set[str]) -> None:
        self._known = found  # project -> (records, last leaf) as stored
        self._next = {p: found.get(p, (0, -1)) for p in projects}

    @classmethod
    def read(cls, conn: Connection, projects: set[str]) -> "_ProjectHeads":
        rows = store.rows_where_in(
            conn, "SELECT project_id, records, last_leaf FROM project_heads WHERE project_id IN ({in})", list(projects))
        return cls({p: (int(records), int(last)) for p, records, last in rows}, projects)

    @staticmethod
    def read_all(conn: Connection) -> list[ProjectHead]:
        rows = conn.exec_driver_sql("SELECT project_id, records, last_leaf FROM project_heads").all()
        return [ProjectHead(str(p), int(records), int(last)) for p, records, last in rows]

    def next_record(self, project_id: str, seq: int) -> int:
        """Count leaf `seq` as the project's next record; return its number in the project (project_seq)."""
        records, _ = self._next[project_id]
        self._next[project_id] = (records + 1, seq)
        return records

    def write(self, conn: Connection) -> None:
        changed = [(p, head) for p, head in self._next.items() if head[0] and head != self._known.get(p)]
        updates = [(records, last, p) for p, (records, last) in changed if p in self._known]
        if updates:
            mark = store.mark(conn)
            conn.exec_driver_sql(
                f"UPDATE project_heads SET records = {mark}, last_leaf = {mark} WHERE project_id = {mark}", updates)
        store.insert_many(conn, store.project_heads, [
            {"project_id": p, "records": records, "last_leaf": last}
            for p, (records, last) in changed if p not in self._known])


@dataclass(frozen=True)
class CommitCounts:
    """How many durable commits appended how many submissions (a group commit appends several at once),
    and how many of those commits held submissions that came from more than one worker process."""

    commits: int = 0
    submissions: int = 0
    across_workers: int = 0

    def add(self, submissions: int, workers: int) -> "CommitCounts":
        return CommitCounts(self.commits + 1, self.submissions + submissions, self.across_workers + (workers > 1))


class Committer(Protocol):
    """What appends checked submissions: the group commit of this process, or the notary's sequencer."""

    def commit(self, pending: "_Pending", worker: int = 0) -> "Future[_Appended]": ...

    def counts(self) -> CommitCounts: ...

    def close(self) -> None: ...


_Waiting = tuple[_Pending, "Future[_Appended]", int]  # a submission, its answer to come, its worker


class _GroupCommit:
    """Appends submissions in groups: one thread takes every submission waiting, appends them in one
    transaction, commits once, then answers each. Whatever arrives during a commit forms the next group,
    so a lone submission waits for nothing and a crowd shares each fsync. Across processes the
    sequencer lock orders the groups of each worker."""

    MAX_GROUP_RECORDS = 20_000  # bounds one transaction; a larger crowd simply forms several groups

    def __init__(self, append: Callable[[list[_Pending]], list[_Appended | RecordRejected]]) -> None:
        self._append = append
        self._waiting: queue.SimpleQueue[_Waiting | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._counts = CommitCounts()

    def commit(self, pending: _Pending, worker: int = 0) -> "Future[_Appended]":
        """Queue a checked submission for the next group; `worker` names the process it came from."""
        future: Future[_Appended] = Future()
        future.set_running_or_notify_cancel()  # answered even if its caller stopped waiting (a cancelled task)
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
                    self._thread.start()
        self._waiting.put((pending, future, worker))
        return future

    def counts(self) -> CommitCounts:
        return self._counts

    def close(self) -> None:
        if self._thread is not None:
            self._waiting.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        carried: _Waiting | None = None
        while True:
            first = carried or self._waiting.get()
            carried = None
            if first is None:
                return
            group = [first]
            records = len(first[0].canon)
            while records < self.MAX_GROUP_RECORDS:
                try:
                    item = self._waiting.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._waiting.put(None)  # stop after this group
                    break
                if records + len(item[0].canon) > self.MAX_GROUP_RECORDS:
                    carried = item
                    break
                group.append(item)
                records += len(item[0].canon)
            self._commit(group)

    def _commit(self, group: list[_Waiting]) -> None:
        try:
            outcomes = self._append([pending for pending, _, _ in group])
        except SQLAlchemyError as exc:
            # The driver's own message, without SQLAlchemy's echo of the statement and its parameters.
            cause = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
            refusal = RecordRejected(
                503, f"the evidence database refused a write ({cause}); nothing was appended, and resubmitting is "
                "safe: a record already in the log is answered with its receipt",
            )
            for _, future, _ in group:
                future.set_exception(refusal)
            return
        except BaseException as exc:  # answered to every waiter, never lost in this thread
            for _, future, _ in group:
                future.set_exception(exc)
            return
        self._counts = self._counts.add(len(group), len({worker for _, _, worker in group}))
        for (_, future, _), outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, RecordRejected):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)


class EvidenceLog:
    def __init__(self, engine: Engine, key: NotaryKey, log_id: str, committer: Committer | None = None) -> None:
        """`committer` appends the checked submissions (the notary's sequencer, for a worker process);
        without it, this log group-commits them itself."""
        self.engine = engine
        self.key = key
        self.log_id = log_id
        self._keys: dict[str, PublicKey] = {}  # parsed public keys by PEM: a cache, not state
        self._registered: dict[str, Submitter] = {}  # submitters by id as last read: a cache, not state
        self._append_lock = store.AppendLock(engine)
        self._group: Committer = committer or _GroupCommit(self._append_group)
        store.ensure_sequencer(engine)
        with engine.connect() as conn:
            size = _size(conn)
            count = conn.execute(select(func.count()).select_from(store.leaves)).scalar_one()
            heads_kept = conn.exec_driver_sql("SELECT 1 FROM project_heads LIMIT 1").first() is not None
        if count != size:
            raise RuntimeError(f"log has {count} leaves but its last sequence number is {size - 1}")
        if size and not heads_kept:
            self._count_project_heads()

    def _count_project_heads(self) -> None:
        """Fill `project_heads` from the leaves, for a log written before the appends kept it."""
        with self._append_lock.held(), self.engine.begin() as conn:
            store.lock_sequencer(conn)
            if conn.exec_driver_sql("SELECT 1 FROM project_heads LIMIT 1").first() is None:
                store.insert_many(conn, store.project_heads, [
                    {"project_id": h.project_id, "records": h.records, "last_leaf": h.last_leaf}
                    for h in self.project_heads(_size(conn), conn)])

    def close(self) -> None:
        self._group.close()
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
        rows = store.rows_where_in(conn, "SELECT seq, leaf_hash FROM leaves WHERE seq IN ({in})", leaf_ids)
        found.update({(0, seq): bytes(h) for seq, h in rows})
        rows = store.rows_where_in(conn, "SELECT id, hash FROM nodes WHERE id IN ({in})", list(wanted))
        found.update({wanted[node]: bytes(h) for node, h in rows})
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
            sub = Submitter(submitter_id, role, public_key_pem, now_utc(), None)
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
                sub.revoked_at = now_utc()
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
        one it got the first time. Concurrent submissions share one commit (see `_GroupCommit`).
        """
        pending = self._check(submission)
        try:
            appended = self._group.commit(pending).result()
        except RecordRejected as exc:
            self._forget_if_refused(pending, exc)
            raise
        return self._answer(pending, appended)

    async def submit_async(self, submission: Submission) -> "SubmitResult":
        """`submit` for an event loop: the loop serves other requests while the group commits."""
        pending = self._check(submission)
        try:
            appended = await asyncio.wrap_future(self._group.commit(pending))
        except RecordRejected as exc:
            self._forget_if_refused(pending, exc)
            raise
        if appended.appended != len(pending.record_hashes):  # resubmissions: their receipts are read back
            return await asyncio.to_thread(self._answer, pending, appended)
        return self._answer(pending, appended)

    def sequence(self, pending: "_Pending", worker: int) -> "Future[_Appended]":
        """Append a submission another process checked (the sequencer's part, see `notary.sequencer`)."""
        return self._group.commit(pending, worker)

    def commit_counts(self) -> CommitCounts:
        return self._group.counts()

    def _forget_if_refused(self, pending: "_Pending", refusal: RecordRejected) -> None:
        """A submitter refused at append time (revoked, key changed) is read again next time."""
        if refusal.status in (403, 409):
            self._registered.pop(pending.submitter.submitter_id, None)

    def _check(self, submission: Submission) -> "_Pending":
        """Everything about a submission that needs no lock: size, schema, role, signature, disclosures."""
        records = submission.records
        if not 1 <= len(records) <= MAX_BATCH:
            raise RecordRejected(413 if records else 400, f"a batch holds 1 to {MAX_BATCH} records, got {len(records)}")
        sub, key = self._checked_submitter(submission.submitter)
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
        return _Pending(
            submitter=sub, project_ids=[record["project_id"] for record in records], canon=canon,
            record_hashes=[hashlib.sha256(c).digest() for c in canon],
            paths=paths, alg=key_algorithm(key), signature=base64.b64encode(signature).decode(), openings=openings,
        )

    def _checked_submitter(self, submitter_id: str) -> tuple[Submitter, PublicKey]:
        """The submitter as last seen registered. A cached entry may since have been revoked: the group
        commit checks every submitter again inside its transaction, which is what decides."""
        cached = self._registered.get(submitter_id)
        if cached is not None:
            return cached, self._keys[cached.public_key]
        with self.engine.connect() as conn:
            sub, key = self._submitter(conn, submitter_id)
        self._registered[submitter_id] = sub
        return sub, key

    def _answer(self, pending: "_Pending", appended: "_Appended") -> "SubmitResult":
        fresh = self._receipts(appended.members, appended.received_at, paths=False)
        by_seq = {seq: receipt for (seq, _, _), receipt in zip(appended.members, fresh, strict=True)}
        receipts = [
            by_seq[seq] if seq in by_seq else self.receipt(seq)
            for seq in (appended.seq_of[rh] for rh in pending.record_hashes)
        ]
        return SubmitResult(receipts, len(appended.members), frozenset(by_seq))

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

    def _append_group(self, group: list["_Pending"]) -> list["_Appended | RecordRejected"]:
        """Append every submission of a group in one transaction, in the order they arrived; one commit
        (one fsync) makes them all durable. A submission whose submitter was revoked meanwhile is refused
        alone. Each submission keeps its own contiguous leaves, so its receipts stay one signed batch."""
        leaf_rows: list[dict[str, Any]] = []
        node_rows: list[dict[str, Any]] = []
        disclosure_rows: list[dict[str, Any]] = []
        outcomes: list[_Appended | RecordRejected] = []
        with self._append_lock.held(), self.engine.begin() as conn:
            store.lock_sequencer(conn)  # held until commit: one group at a time, across processes
            current = self._current_submitters(conn, {p.submitter.submitter_id for p in group})
            all_hashes = list({rh for p in group for rh in p.record_hashes})
            rows = store.rows_where_in(conn, "SELECT record_hash, seq FROM leaves WHERE record_hash IN ({in})",
                                       all_hashes)
            seq_of: dict[bytes, int] = {bytes(rh): seq for rh, seq in rows}
            tree = self._edge(conn, _size(conn))
            received_at = now_utc()
            heads = _ProjectHeads.read(conn, {pid for p in group for pid in p.project_ids})
            for pending in group:
                sub = pending.submitter
                refusal = _still_registered(sub, current.get(sub.submitter_id))
                if refusal is not None:
                    self._registered.pop(sub.submitter_id, None)
                    outcomes.append(refusal)
                    continue
                first = len(leaf_rows)
                members: list[tuple[int, bytes, bytes]] = []
                signature_value = base64.b64decode(pending.signature)
                for i, rh in enumerate(pending.record_hashes):
                    if rh in seq_of:
                        continue
                    project_id = pending.project_ids[i]
                    seq = tree.size
                    pseq = heads.next_record(project_id, seq)
                    signature = BatchSignature(len(pending.canon), i, tuple(pending.paths[i]), signature_value)
                    entry = encode_entry(seq, pseq, received_at, sub.submitter_id, pending.canon[i], signature,
                                         pending.alg)
                    lh = leaf_hash(entry)
                    seq_of[rh] = seq
                    members.append((seq, lh, rh))
                    leaf_rows.append(
                        {"seq": seq, "record_hash": rh, "leaf_hash": lh, "entry": entry, "project_id": project_id,
                         "project_seq": pseq, "batch_start": seq - len(members) + 1, "batch_size": 0}
                    )
                    # Level 0 is the leaves table itself; only the levels above are stored as nodes.
                    node_rows.extend({"id": store.node_id(*nid), "hash": h} for nid, h in tree.append(lh)[1:])
                    disclosure_rows.extend(
                        {"seq": seq, "field": d.field, "salt": bytes.fromhex(d.salt), "value": d.value}
                        for d in pending.openings.get(i, ())
                    )
                for row in leaf_rows[first:]:
                    row["batch_size"] = len(members)
                outcomes.append(_Appended(members, received_at, seq_of))
            store.insert_many(conn, store.leaves, leaf_rows)
            store.insert_many(conn, store.nodes, node_rows)
            store.insert_many(conn, store.disclosures, disclosure_rows)
            heads.write(conn)
        return outcomes

    @staticmethod
    def _current_submitters(conn: Connection, ids: set[str]) -> dict[str, Submitter]:
        rows = store.rows_where_in(conn, "SELECT submitter_id, role, public_key, registered_at, revoked_at "
                                         "FROM submitters WHERE submitter_id IN ({in})", list(ids))
        return {row[0]: Submitter(*row) for row in rows}

    # ----- receipts -----

    def _receipts(
        self, members: list[tuple[int, bytes, bytes]], received_at: str, paths: bool = True
    ) -> list[Receipt]:
        """Receipts for one appended batch, one signature over the root of their `receipt_member` hashes
        (each binds its leaf, record hash and time). Without `paths`, each receipt's batch path is left empty:
        whoever holds all of them can compute it (`notary.client.complete_receipts`), and a submission's
        answer holds all of them."""
        if not members:
            return []
        hashes = [receipt_member(seq, lh, rh, received_at) for seq, lh, rh in members]
        root, member_paths = batch_tree(hashes) if paths else (root_of_hashes(hashes), [[] for _ in hashes])
        sig = self.key.sign(receipt_statement(self.log_id, len(members), root))
        return [Receipt(self.log_id, seq, lh, rh, received_at, len(members), i, tuple(path), sig)
                for i, ((seq, lh, rh), path) in enumerate(zip(members, member_paths, strict=True))]

    def receipt(self, seq: int) -> Receipt:
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
        return self._receipts(members, received_at)[int(seq - row.batch_start)]

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

    def project_heads(self, size: int, conn: Connection | None = None) -> list[ProjectHead]:
        """Each project's number of records and last leaf among the first `size` leaves (counted from the
        leaves: any past size; a new checkpoint reads the heads the appends keep)."""
        if conn is None:
            with self.engine.connect() as own:
                return self.project_heads(size, own)
        leaves = store.leaves.c
        rows = conn.execute(select(leaves.project_id, func.max(leaves.project_seq), func.max(leaves.seq))
                            .where(leaves.seq < size).group_by(leaves.project_id)).all()
        return [ProjectHead(str(project), int(last_seq) + 1, int(last_leaf)) for project, last_seq, last_leaf in rows]

    def stored_heads(self) -> tuple[int, list[ProjectHead]]:
        """The tree size and the `project_heads` rows, read together under the sequencer lock (written
        by nothing: the transaction is rolled back)."""
        with self._append_lock.held(), self.engine.connect() as conn:
            store.lock_sequencer(conn)
            return _size(conn), _ProjectHeads.read_all(conn)

    def sign_checkpoint(self) -> tuple[int, bytes, str]:
        """Sign and store a checkpoint of the current tree (or return the stored one of that size), committing
        to every project's head at that size (`verifier.heads`)."""
        with self._append_lock.held(), self.engine.begin() as conn:
            store.lock_sequencer(conn)  # size, root and heads of one moment: no append runs meanwhile
            size = _size(conn)
            root = self._edge(conn, size).root()
            note = conn.execute(select(store.checkpoints.c.note).where(store.checkpoints.c.size == size)).scalar()
            if note is None:
                heads = heads_line(_ProjectHeads.read_all(conn))
                note = self.key.sign_checkpoint(Checkpoint(self.key.name, size, root, (heads,)))
                conn.execute(
                    insert(store.checkpoints).values(size=size, root=root, note=note, signed_at=now_utc())
                )
        return size, root, note

    def latest_checkpoint(self) -> tuple[int, bytes, str] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(store.checkpoints).order_by(store.checkpoints.c.size.desc()).limit(1)
            ).first()
        return None if row is None else (row.size, bytes(row.root), row.note)
