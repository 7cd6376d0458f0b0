"""Durable store-and-forward queue of an agent's evidence, on the agent's own disk.

Every record is written to a SQLite outbox (WAL, synchronous=FULL) before anything else happens to it:
`enqueue` returns only after the transaction that holds it has committed, so a `kill -9` or a power cut
afterwards loses nothing. A single sender (a thread, or one `send_pending` call at a time, guarded by an
exclusive lock file so two processes never send from the same queue) submits the records in queue
order, in batches, and keeps the notary's receipts.

* Notary unreachable (connection errors, timeouts, 5xx, 408, 429): retry the same batch with
  exponential backoff; nothing after it is sent first.
* Notary refuses (any other 4xx): the refused record stays in the queue, marked ``refused`` with the
  notary's reason; the records before it in the batch are sent one by one, the records after it wait.
  The sender stops and says why until an operator fixes the cause (`retry_refused`, e.g. after the
  device is registered) or sets the record aside (`set_aside_refused`, kept, never sent, visible).
* A crash between the notary's answer and marking the record sent resends it after restart: the
  notary is idempotent on the record's canonical bytes and returns the original receipt, so no second
  leaf is made. Each receipt is checked against the record it answers (record_hash).

Disclosures (salt and value of a commitment) travel with their record and are erased from the device's
disk once the notary has acknowledged the record.

A receipt is a promise; the queue keeps each record and its receipt until the promise is seen kept: whenever
the sender talks to the notary (at most every `confirm_interval` seconds) it fetches the notary's newest
signed checkpoint once, checks it is consistent with the largest one seen before (kept in the queue across
restarts), and checks each unconfirmed receipt's inclusion in it, oldest first. A receipt whose leaf is not
in the checkpoint, or a checkpoint on another history than the one seen before (the notary lost the record
or equivocated), marks the record `broken` with the notary's failure: it stays on disk with its receipt (the
signed proof of what the notary promised), is never deleted nor sent again on its own, and the queue's status
names it until an operator decides. A record sent again would get a new leaf from the same notary; the
evidence that it broke its word is worth more.

The queue also keeps a small key/value state that a caller can update in the same transaction as an
enqueue (the recorder keeps its hash chain there, so chain state and queued segments never disagree).
"""

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from notary.client import BrokenPromise, NotaryClient, NotaryError, SubmitterKey
from verifier.canonical import canonical_bytes
from verifier.note import Checkpoint
from verifier.receipt import Receipt
from verifier.times import now_utc

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    record TEXT NOT NULL,
    record_hash TEXT NOT NULL,
    disclosures TEXT NOT NULL DEFAULT '[]',
    enqueued_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'refused', 'set_aside')),
    attempts INTEGER NOT NULL DEFAULT 0,
    sent_at TEXT,
    receipt TEXT,
    refusal TEXT
);
CREATE INDEX IF NOT EXISTS outbox_state ON outbox (state, seq);
CREATE TABLE IF NOT EXISTS inclusion (
    seq INTEGER PRIMARY KEY REFERENCES outbox (seq),
    state TEXT NOT NULL CHECK (state IN ('confirmed', 'broken')),
    checkpoint_size INTEGER NOT NULL,
    detail TEXT,
    checked_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

log = logging.getLogger("bidtrace.devices.queue")
TRANSIENT_STATUS = frozenset({408, 425, 429})
_SEEN = "inclusion:checkpoint"  # kv: the note of the largest checkpoint the queue has verified


class Submitter(Protocol):
    """What the queue needs from a notary client (NotaryClient satisfies it)."""

    def submit(
        self, submitter: SubmitterKey, records: list[dict[str, Any]], disclosures: list[dict[str, Any]] | None = None
    ) -> list[Receipt]: ...

    def newest_checkpoint(self) -> Checkpoint: ...

    def check_included(self, receipt: Receipt, checkpoint: Checkpoint | None = None) -> Checkpoint: ...

    def saw(self, note: str) -> Checkpoint: ...

    @property
    def seen_note(self) -> str | None: ...


class QueueError(Exception):
    """The queue cannot make progress without an operator: a record was refused, or the queue is in use."""


@dataclass(frozen=True)
class Refusal:
    seq: int
    status: int
    detail: str
    record: dict[str, Any]

    def __str__(self) -> str:
        return (f"notary refused queued record #{self.seq} ({self.record.get('type')}) with {self.status}: "
                f"{self.detail}")


@dataclass(frozen=True)
class BrokenReceipt:
    """A sent record whose receipt the notary did not honour: its leaf is not in the notary's signed checkpoint
    (or the checkpoint forks from the history seen before)."""

    seq: int
    receipt: Receipt
    detail: str

    def __str__(self) -> str:
        return (f"the notary broke its promise for queued record #{self.seq}: receipt of {self.receipt.received_at} "
                f"for leaf {self.receipt.leaf_index} (leaf hash {self.receipt.leaf_hash.hex()}): {self.detail}")


@dataclass(frozen=True)
class QueueStatus:
    pending: int
    sent: int
    refused: int
    set_aside: int
    last_receipt: Receipt | None
    refusal: Refusal | None
    last_error: str | None
    oldest_pending_at: str | None
    unconfirmed: int = 0  # sent, their receipts not yet seen in a signed checkpoint
    broken: int = 0
    first_broken: BrokenReceipt | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "pending": self.pending, "sent": self.sent, "refused": self.refused, "set_aside": self.set_aside,
            "last_receipt": self.last_receipt.encode() if self.last_receipt else None,
            "refusal": str(self.refusal) if self.refusal else None,
            "last_error": self.last_error, "oldest_pending_at": self.oldest_pending_at,
            "unconfirmed": self.unconfirmed, "broken": self.broken,
            "first_broken": str(self.first_broken) if self.first_broken else None,
        }


@dataclass(frozen=True)
class SendReport:
    sent: int
    refusal: Refusal | None = None
    error: str | None = None  # a transient failure: the notary could not be reached or failed (5xx)


def _now() -> str:
    return now_utc()


def record_hash(record: Mapping[str, Any]) -> str:
    """The hash the notary's receipt names for this record: SHA-256 of its RFC 8785 bytes."""
    return hashlib.sha256(canonical_bytes(dict(record))).hexdigest()


class EvidenceQueue:
    """The outbox of one agent (one submitter key). Thread-safe; one sender at a time across processes."""

    def __init__(
        self,
        path: Path,
        key: SubmitterKey,
        client: Submitter | None = None,
        batch_size: int = 50,
        backoff_initial: float = 0.2,
        backoff_max: float = 10.0,
        confirm_interval: float = 5.0,
    ) -> None:
        if not 1 <= batch_size <= 10_000:
            raise ValueError(f"batch_size must be 1..10000, got {batch_size}")
        self.path = Path(path)
        self.key = key
        self.client = client
        self.batch_size = batch_size
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.confirm_interval = confirm_interval
        self._confirmed_at = time.monotonic()  # of the last inclusion check (the first one confirm_interval on)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA secure_delete=ON")  # erased disclosures do not linger in free pages
        self._db.executescript(_SCHEMA)
        self._last_error: str | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._sender_lock_fd: int | None = None
        self.on_sent: Callable[[list[Receipt]], None] | None = None

    # ------------------------------------------------------------------ storage

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def enqueue(
        self,
        records: Sequence[Mapping[str, Any]],
        disclosures: Sequence[Sequence[Mapping[str, Any]]] | None = None,
        state: Mapping[str, str] | None = None,
    ) -> list[int]:
        """Store records (and, per record, its disclosures: {field, salt, value}) durably; return their
        queue numbers. `state` key/values are written in the same transaction."""
        if disclosures is not None and len(disclosures) != len(records):
            raise ValueError("give one list of disclosures per record")
        rows = []
        for i, record in enumerate(records):
            own = [dict(d) for d in (disclosures[i] if disclosures is not None else [])]
            for d in own:
                if set(d) != {"field", "salt", "value"}:
                    raise ValueError(f"a disclosure has exactly field, salt and value, got {sorted(d)}")
            rows.append((json.dumps(record, ensure_ascii=False), record_hash(record), json.dumps(own), _now()))
        with self._transaction() as db:
            seqs = []
            for row in rows:
                cur = db.execute(
                    "INSERT INTO outbox (record, record_hash, disclosures, enqueued_at) VALUES (?, ?, ?, ?)", row
                )
                seqs.append(int(cur.lastrowid or 0))
            for k, v in (state or {}).items():
                db.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                           (k, v, v))
        self._wake.set()
        return seqs

    def get_state(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_state(self, values: Mapping[str, str]) -> None:
        with self._transaction() as db:
            for k, v in values.items():
                db.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                           (k, v, v))

    def states(self, prefix: str) -> dict[str, str]:
        """Every key/value of the queue's state whose key starts with `prefix`."""
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
                                    (len(prefix), prefix)).fetchall()
        return {str(k): str(v) for k, v in rows}

    def records(self, state: str | None = None) -> list[tuple[int, str, dict[str, Any], Receipt | None]]:
        """(seq, state, record, receipt) of every queued record, in order (optionally of one state)."""
        query = "SELECT seq, state, record, receipt FROM outbox"
        args: tuple[str, ...] = ()
        if state is not None:
            query += " WHERE state = ?"
            args = (state,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [(int(s), str(st), json.loads(r), _receipt(rc)) for s, st, r, rc in rows]

    def status(self) -> QueueStatus:
        with self._lock:
            counts = dict(self._db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall())
            last = self._db.execute(
                "SELECT receipt FROM outbox WHERE state = 'sent' ORDER BY seq DESC LIMIT 1").fetchone()
            oldest = self._db.execute(
                "SELECT enqueued_at FROM outbox WHERE state = 'pending' ORDER BY seq LIMIT 1").fetchone()
            checked = dict(self._db.execute("SELECT state, count(*) FROM inclusion GROUP BY state").fetchall())
        sent = int(counts.get("sent", 0))
        broken = self.broken()
        return QueueStatus(
            pending=int(counts.get("pending", 0)), sent=sent,
            refused=int(counts.get("refused", 0)), set_aside=int(counts.get("set_aside", 0)),
            last_receipt=_receipt(last[0]) if last else None, refusal=self.refusal(),
            last_error=self._last_error, oldest_pending_at=oldest[0] if oldest else None,
            unconfirmed=sent - int(checked.get("confirmed", 0)) - int(checked.get("broken", 0)),
            broken=len(broken), first_broken=broken[0] if broken else None,
        )

    def broken(self) -> list[BrokenReceipt]:
        """Every sent record whose receipt the notary did not honour, in queue order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.seq, o.receipt, i.detail FROM outbox o JOIN inclusion i ON i.seq = o.seq "
                "WHERE i.state = 'broken' ORDER BY o.seq").fetchall()
        return [BrokenReceipt(int(seq), Receipt.parse(json.loads(rc)), str(detail)) for seq, rc, detail in rows]

    def refusal(self) -> Refusal | None:
        with self._lock:
            row = self._db.execute(
                "SELECT seq, record, refusal FROM outbox WHERE state = 'refused' ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        reason = json.loads(row[2])
        return Refusal(int(row[0]), int(reason["status"]), str(reason["detail"]), json.loads(row[1]))

    def retry_refused(self) -> int:
        """Put refused records back in line (after the cause was fixed); returns how many."""
        with self._transaction() as db:
            n = db.execute("UPDATE outbox SET state = 'pending' WHERE state = 'refused'").rowcount
        self._wake.set()
        return int(n)

    def set_aside_refused(self) -> int:
        """Give up sending refused records: they stay in the queue as `set_aside`, and the rest flows on."""
        with self._transaction() as db:
            n = db.execute("UPDATE outbox SET state = 'set_aside' WHERE state = 'refused'").rowcount
        self._wake.set()
        return int(n)

    def close(self) -> None:
        self.stop()
        with self._lock:
            self._release_sender()
            self._db.close()
        closer = getattr(self.client, "close", None)
        if callable(closer):
            closer()

    # ------------------------------------------------------------------ sending

    def _acquire_sender(self) -> None:
        if self._sender_lock_fd is not None:
            return
        fd = os.open(str(self.path) + ".sender.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise QueueError(f"another process is sending from {self.path}") from exc
        self._sender_lock_fd = fd

    def _release_sender(self) -> None:
        if self._sender_lock_fd is not None:
            os.close(self._sender_lock_fd)  # closing releases the flock
            self._sender_lock_fd = None

    def _next_batch(self, limit: int) -> list[tuple[int, dict[str, Any], str, list[dict[str, Any]]]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, record, record_hash, disclosures FROM outbox WHERE state = 'pending' "
                "ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(int(s), json.loads(r), str(h), json.loads(d)) for s, r, h, d in rows]

    def _submit(self, batch: list[tuple[int, dict[str, Any], str, list[dict[str, Any]]]]) -> list[Receipt]:
        assert self.client is not None
        disclosures = [{"index": i, **d} for i, (_, _, _, ds) in enumerate(batch) for d in ds]
        with self._transaction() as db:
            db.executemany("UPDATE outbox SET attempts = attempts + 1 WHERE seq = ?", [(s,) for s, *_ in batch])
        receipts = self.client.submit(self.key, [r for _, r, _, _ in batch], disclosures)
        if len(receipts) != len(batch):
            raise NotaryError(0, f"notary answered {len(receipts)} receipts for a batch of {len(batch)}")
        for (seq, _, rh, _), receipt in zip(batch, receipts, strict=True):
            if receipt.record_hash.hex() != rh:
                raise NotaryError(0, f"receipt for queued record #{seq} names record hash "
                                     f"{receipt.record_hash.hex()}, expected {rh}")
        return receipts

    def _mark_sent(self, batch: list[tuple[int, dict[str, Any], str, list[dict[str, Any]]]],
                   receipts: list[Receipt]) -> None:
        now = _now()
        with self._transaction() as db:
            db.executemany(
                "UPDATE outbox SET state = 'sent', sent_at = ?, receipt = ?, disclosures = '[]' WHERE seq = ?",
                [(now, json.dumps(rc.encode()), seq) for (seq, *_), rc in zip(batch, receipts, strict=True)],
            )
        if self.on_sent is not None:
            self.on_sent(receipts)

    def _mark_refused(self, seq: int, status: int, detail: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE outbox SET state = 'refused', refusal = ? WHERE seq = ?",
                       (json.dumps({"status": status, "detail": detail, "at": _now()}), seq))

    def send_pending(self, max_batches: int = 1_000_000) -> SendReport:
        """Send queued records in order until the queue is empty, a batch fails to reach the notary, a
        record is refused, or `max_batches` were sent. Does not sleep or retry."""
        if self.client is None:
            raise QueueError("this queue has no notary client")
        with self._lock:
            self._acquire_sender()
        sent = 0
        for _ in range(max_batches):
            refusal = self.refusal()
            if refusal is not None:
                self._last_error = str(refusal)
                return SendReport(sent, refusal=refusal)
            batch = self._next_batch(self.batch_size)
            if not batch:
                break
            try:
                receipts = self._submit(batch)
            except NotaryError as exc:
                if exc.status >= 500 or exc.status in TRANSIENT_STATUS:
                    self._last_error = f"notary failed ({exc}); will retry"
                    return SendReport(sent, error=self._last_error)
                sent += self._isolate_refusal(batch, exc)
                continue  # the loop reports the refusal
            except (httpx.HTTPError, OSError) as exc:
                self._last_error = f"notary unreachable ({type(exc).__name__}: {exc}); will retry"
                return SendReport(sent, error=self._last_error)
            self._mark_sent(batch, receipts)
            self._last_error = None
            sent += len(batch)
        if time.monotonic() - self._confirmed_at >= self.confirm_interval:
            try:
                self.confirm_sent()
            except NotaryError as exc:
                self._last_error = f"notary failed while checking receipts ({exc}); will retry"
                return SendReport(sent, error=self._last_error)
            except (httpx.HTTPError, OSError) as exc:
                self._last_error = f"notary unreachable ({type(exc).__name__}: {exc}); will retry"
                return SendReport(sent, error=self._last_error)
        return SendReport(sent)

    def confirm_sent(self, limit: int = 1000) -> int:
        """Check the unconfirmed receipts (oldest first, up to `limit`) against the notary's newest signed
        checkpoint; return how many were confirmed. A broken promise marks its record `broken` (see the module's
        note) and is logged in the status; a leaf not yet in a checkpoint waits for the next round."""
        if self.client is None:
            raise QueueError("this queue has no notary client")
        with self._lock:
            rows = self._db.execute(
                "SELECT o.seq, o.receipt FROM outbox o LEFT JOIN inclusion i ON i.seq = o.seq "
                "WHERE o.state = 'sent' AND i.seq IS NULL ORDER BY o.seq LIMIT ?", (limit,)).fetchall()
        self._confirmed_at = time.monotonic()
        if not rows:
            return 0
        kept = self.get_state(_SEEN)
        try:
            if kept is not None and self.client.seen_note is None:
                self.client.saw(kept)
            checkpoint = self.client.newest_checkpoint()
        except BrokenPromise as exc:  # no receipt can be confirmed against a forked history
            self._mark_checked([(int(seq), "broken", 0, exc.detail) for seq, _ in rows])
            return 0
        if self.client.seen_note is not None and self.client.seen_note != kept:
            self.set_state({_SEEN: self.client.seen_note})
        checked: list[tuple[int, str, int, str | None]] = []
        for seq, raw in rows:
            receipt = Receipt.parse(json.loads(raw), f"receipt of queued record #{seq}")
            if receipt.leaf_index >= checkpoint.size:
                break  # the rest are later still: the next round
            try:
                self.client.check_included(receipt, checkpoint)
            except BrokenPromise as exc:
                checked.append((int(seq), "broken", checkpoint.size, exc.detail))
                continue
            checked.append((int(seq), "confirmed", checkpoint.size, None))
        self._mark_checked(checked)
        return sum(1 for c in checked if c[1] == "confirmed")

    def _mark_checked(self, checked: list[tuple[int, str, int, str | None]]) -> None:
        now = _now()
        with self._transaction() as db:
            db.executemany("INSERT INTO inclusion (seq, state, checkpoint_size, detail, checked_at) "
                           "VALUES (?, ?, ?, ?, ?)", [(*c, now) for c in checked])
        for c in checked:
            if c[1] == "broken":
                log.error("%s", next(b for b in self.broken() if b.seq == c[0]))

    def _isolate_refusal(self, batch: list[tuple[int, dict[str, Any], str, list[dict[str, Any]]]],
                         exc: NotaryError) -> int:
        """A batch was refused: send its records one at a time, in order, up to the one refused."""
        if len(batch) == 1:
            self._mark_refused(batch[0][0], exc.status, exc.detail)
            return 0
        sent = 0
        for item in batch:
            try:
                receipts = self._submit([item])
            except NotaryError as single:
                if single.status >= 500 or single.status in TRANSIENT_STATUS:
                    return sent  # transient: the outer loop tries again later
                self._mark_refused(item[0], single.status, single.detail)
                return sent
            self._mark_sent([item], receipts)
            sent += 1
        return sent

    # ------------------------------------------------------------------ sender thread

    def start(self) -> None:
        """Start the background sender (it takes the queue's sender lock)."""
        if self._thread is not None:
            return
        with self._lock:
            self._acquire_sender()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"queue-sender:{self.path.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        thread = self._thread
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout)
            self._thread = None
        with self._lock:
            self._release_sender()

    def _run(self) -> None:
        delay = self.backoff_initial
        while not self._stop.is_set():
            try:
                report = self.send_pending(max_batches=100)
            except Exception as exc:  # keep the sender alive; the queue keeps the records
                report = SendReport(0, error=f"sender error: {type(exc).__name__}: {exc}")
                self._last_error = report.error
            if report.error is not None or report.refusal is not None:
                self._wake.wait(delay)
                self._wake.clear()
                delay = min(self.backoff_max, delay * 2)
                continue
            delay = self.backoff_initial
            if report.sent == 0:
                self._wake.wait(1.0)
                self._wake.clear()

    def wait_drained(self, timeout: float) -> bool:
        """Wait until nothing is pending (True) or a refusal blocks the queue or time runs out (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.status()
            if st.pending == 0:
                return True
            if st.refusal is not None:
                return False
            self._wake.set()
            time.sleep(0.05)
        return False

    def drain(self, timeout: float) -> SendReport:
        """Send in the foreground, retrying with backoff, until empty, refused, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        delay = self.backoff_initial
        total = 0
        while True:
            report = self.send_pending()
            total += report.sent
            if report.refusal is not None or report.error is None:
                return SendReport(total, report.refusal, report.error)
            if time.monotonic() + delay > deadline:
                return SendReport(total, None, report.error)
            time.sleep(delay)
            delay = min(self.backoff_max, delay * 2)


def _receipt(stored: str | None) -> Receipt | None:
    return Receipt.parse(json.loads(stored)) if stored else None


def open_queue(path: Path, key: SubmitterKey, notary_url: str | None, **kw: Any) -> EvidenceQueue:
    """A queue that sends to `notary_url` (or one that only stores, when it is None)."""
    client = NotaryClient(notary_url, timeout=kw.pop("timeout", 30.0)) if notary_url else None
    return EvidenceQueue(path, key, client, **kw)
