"""Sealing and anchoring: sign a checkpoint of the log and anchor it on the ledger, on a schedule.

A round runs every `interval` seconds on the sealer's own thread (and at once when `batch_records` records
wait), each after the previous one ends. Ledger failures
are retried with exponential backoff while submissions keep being accepted; the next success anchors
the whole backlog with one consistency proof. Before anchoring, the log is checked against what the
ledger already holds: a log shorter than its anchored size, or with another root at that size, was
truncated or rewritten, and sealing stops with that alarm rather than hide it.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, insert, select

from anchors.ledger import Ledger, LedgerError, LedgerRefused, LedgerUnavailable
from notary import store
from notary.log import EvidenceLog
from verifier.anchor import Anchor

log = logging.getLogger("bidtrace.notary.sealing")
STATUS = "sealer_status"


@dataclass
class SealerState:
    anchored_size: int = 0
    last_error: str | None = None
    failures: int = 0
    retry_at: float = 0.0
    alarm: str | None = None  # set when the log disagrees with the ledger; never cleared automatically
    registered: bool = False


def read_status(engine: Engine) -> SealerState:
    """The sealer's last published state, as seen from any process of the notary."""
    with engine.connect() as conn:
        raw = conn.execute(select(store.settings.c.value).where(store.settings.c.name == STATUS)).scalar()
        anchored = conn.execute(select(func.max(store.anchors.c.size))).scalar() or 0
    if raw is None:
        return SealerState(anchored_size=int(anchored))
    status = json.loads(raw)
    return SealerState(anchored_size=int(status["anchored_size"]), failures=int(status["failures"]),
                       last_error=status["last_error"], alarm=status["alarm"])


class Sealer:
    def __init__(
        self, evidence: EvidenceLog, ledger: Ledger, interval: float = 1.0, batch_records: int = 10_000,
        max_backoff: float = 30.0,
    ) -> None:
        self.evidence = evidence
        self.ledger = ledger
        self.interval = interval
        self.batch_records = batch_records
        self.max_backoff = max_backoff
        self.state = SealerState(anchored_size=self._stored_anchor_size())
        self._run_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._published: dict[str, int | str | None] = {}

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _stored_anchor_size(self) -> int:
        with self.evidence.engine.connect() as conn:
            size = conn.execute(
                select(store.anchors.c.size).order_by(store.anchors.c.size.desc()).limit(1)
            ).scalar()
        return int(size or 0)

    # ----- scheduling -----

    def start(self) -> None:
        # One thread runs the rounds, so a round that outlasts the interval (one Fabric anchor takes about
        # 0.5 s) delays the next instead of colliding with it. A scheduler's one-shot jobs re-planned from
        # inside the job race with the scheduler's own removal of the job that just ran, and can lose the
        # next round; a loop cannot.
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._rounds, name="sealer", daemon=True)
        self._thread.start()

    def _rounds(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.seal()
            except Exception:  # a round that fails unexpectedly must not end sealing: log it, try again
                log.exception("sealing round failed")

    def stop(self) -> None:
        # Taken first, so a second caller (the HTTP server's shutdown and the notary's close both stop the
        # sealer, from two threads) joins nothing twice.
        thread, self._thread = self._thread, None
        self._stopping.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def nudge(self, size: int) -> None:
        """Called after an append that left the log at `size` leaves: seal now if enough records wait."""
        if self._thread is not None and size - self.state.anchored_size >= self.batch_records:
            self._wake.set()  # a round running now is followed by the next at once

    # ----- one round -----

    def seal(self) -> Anchor | None:
        """Sign and anchor a checkpoint of the current log if it grew; return the new anchor, if any."""
        if not self._run_lock.acquire(blocking=False):
            return None
        try:
            if self.state.alarm or time.monotonic() < self.state.retry_at:
                return None
            return self._seal_once()
        except LedgerUnavailable as exc:
            self._failed(str(exc))
            return None
        except LedgerRefused as exc:
            self._failed(f"ledger refused the checkpoint: {exc}")
            return None
        except LedgerError as exc:
            self._failed(str(exc))
            return None
        finally:
            self._publish()
            self._run_lock.release()

    def _publish(self) -> None:
        """Share this round's outcome with the notary's other processes (they serve /healthz too)."""
        state = self.state
        status: dict[str, int | str | None] = {"anchored_size": state.anchored_size, "failures": state.failures,
                  "last_error": state.last_error, "alarm": state.alarm}
        if status == self._published:
            return
        with self.evidence.engine.begin() as conn:
            conn.execute(delete(store.settings).where(store.settings.c.name == STATUS))
            conn.execute(insert(store.settings).values(name=STATUS, value=json.dumps(status)))
        self._published = status

    def _failed(self, message: str) -> None:
        state = self.state
        state.failures += 1
        state.last_error = message
        delay = min(self.max_backoff, self.interval * 2 ** min(state.failures, 10))
        state.retry_at = time.monotonic() + delay
        log.warning("anchoring failed (%d in a row), retry in %.1fs: %s", state.failures, delay, message)

    def _seal_once(self) -> Anchor | None:
        evidence = self.evidence
        if not self.state.registered:
            self.ledger.register_log(evidence.log_id, evidence.key.vkey)
            self.state.registered = True
        head = self.ledger.get_log(evidence.log_id)
        anchored = head.size if head else 0
        if anchored > evidence.size:
            self._alarm(f"log has {evidence.size} records but the ledger anchored size {anchored}: truncated")
            return None
        if head and anchored and evidence.root(anchored) != head.root:
            self._alarm(f"log's root at anchored size {anchored} differs from the ledger's: rewritten")
            return None
        if evidence.size == anchored:
            self._record_missing_anchors(anchored)
            self._succeeded(anchored)
            return None
        size, _, note = evidence.sign_checkpoint()
        proof = evidence.consistency_proof(anchored, size)
        anchor = self.ledger.anchor_checkpoint(evidence.log_id, note, proof)
        self._store(anchor)
        self._succeeded(anchor.size)
        return anchor

    def _succeeded(self, size: int) -> None:
        self.state.anchored_size = size
        self.state.failures = 0
        self.state.last_error = None
        self.state.retry_at = 0.0

    def _alarm(self, message: str) -> None:
        self.state.alarm = message
        log.error("sealing stopped: %s", message)

    def _record_missing_anchors(self, anchored: int) -> None:
        # An anchor made just before a crash may be on the ledger but not in our table.
        if anchored and self._stored_anchor_size() < anchored:
            for anchor in self.ledger.anchors(self.evidence.log_id, from_size=self._stored_anchor_size() + 1):
                self._store(anchor)

    def _store(self, anchor: Anchor) -> None:
        evidence = self.ledger.transaction_evidence(anchor.tx_id)
        with self.evidence.engine.begin() as conn:
            exists = conn.execute(select(store.anchors.c.size).where(store.anchors.c.size == anchor.size)).scalar()
            if exists is None:
                conn.execute(
                    insert(store.anchors).values(
                        size=anchor.size, root=anchor.root, ledger=evidence.ledger, tx_id=anchor.tx_id,
                        anchored_at=anchor.anchored_at, checkpoint=anchor.checkpoint,
                        evidence=json.dumps(evidence.encode()),
                    )
                )
