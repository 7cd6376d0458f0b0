"""The embedded ledger: the evidence contract executed in process over a SQLite block store.

Each transaction becomes one block, hash-linked to the previous one and signed with the local
organisation's ECDSA P-256 key. It is honest about what it is: one machine and one key, no
consensus. Its evidence says so, and `verifier.anchor` reports it as such.
"""

import asyncio
import base64
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.timestamp_pb2 import Timestamp

from anchors.ledger import LedgerRefused, LedgerUnavailable, parse_anchors, parse_answer
from chaincode.contract import ContractChaincode, EvidenceContract
from verifier.anchor import Anchor, AnchorEvidence, EmbeddedBlock, LedgerTransaction, LogHead, RegisteredLog
from verifier.canonical import canonical_bytes
from verifier.times import format_time
from verifier.trust import LedgerRoot

GENESIS = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    number INTEGER PRIMARY KEY, hash TEXT NOT NULL, tx_id TEXT NOT NULL UNIQUE,
    body BLOB NOT NULL, signature BLOB NOT NULL);
"""


@dataclass
class _KV:
    key: str
    value: bytes


class _RangeIterator:
    def __init__(self, rows: list[tuple[str, bytes]]) -> None:
        self._rows = iter(rows)

    def __aiter__(self) -> AsyncIterator[_KV]:
        return self

    async def __anext__(self) -> _KV:
        try:
            key, value = next(self._rows)
        except StopIteration:
            raise StopAsyncIteration from None
        return _KV(key, value)


class _Stub:
    """The subset of the Fabric chaincode stub that the contract uses, over one SQLite transaction."""

    def __init__(self, db: sqlite3.Connection, args: list[str], creator: dict[str, Any], tx_id: str) -> None:
        self._db = db
        self._args = args
        self.creator = creator
        self.tx_id = tx_id
        self.timestamp = Timestamp()
        self.timestamp.FromNanoseconds(time.time_ns())
        self.writes: dict[str, bytes] = {}
        self.events: list[tuple[str, str]] = []

    def get_function_and_parameters(self) -> tuple[str, list[str]]:
        return self._args[0], self._args[1:]

    def get_creator(self) -> dict[str, Any]:
        return self.creator

    def get_txid(self) -> str:
        return self.tx_id

    def get_tx_timestamp(self) -> Timestamp:
        return self.timestamp

    def get_channel_id(self) -> str:
        return "embedded"

    async def get_state(self, key: str) -> bytes:
        if key in self.writes:
            return self.writes[key]
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return bytes(row[0]) if row else b""

    async def put_state(self, key: str, value: bytes | str) -> None:
        self.writes[key] = value.encode() if isinstance(value, str) else bytes(value)

    async def get_state_by_range(self, start: str, end: str) -> _RangeIterator:
        rows = self._db.execute(
            "SELECT key, value FROM state WHERE key >= ? AND key < ? ORDER BY key", (start, end)
        ).fetchall()
        merged = {k: bytes(v) for k, v in rows}
        merged.update({k: v for k, v in self.writes.items() if start <= k < end})
        return _RangeIterator(sorted(merged.items()))

    def set_event(self, name: str, payload: bytes | str) -> None:
        text = payload.decode() if isinstance(payload, bytes) else payload
        self.events.append((name, text))


def load_org_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"organisation key {path} is not an ECDSA key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)
    return key


class EmbeddedLedger:
    kind = "embedded"

    def __init__(self, directory: Path, org: str, client_msp: str, client_id: bytes) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.org = org
        self._key = load_org_key(directory / "org.key")
        self._path = directory / "ledger.db"
        self._client_msp = client_msp
        self._client_id = client_id
        self._creator: dict[str, Any] = {"mspid": client_msp, "idBytes": client_id}
        self._lock = threading.Lock()
        self._chaincode = ContractChaincode.new_chaincode(EvidenceContract())
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, timeout=2.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        return db

    def public_key_pem(self) -> str:
        return (
            self._key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def _call(self, args: list[str], write: bool) -> str:
        with self._lock:
            try:
                return self._run(args, write)
            except sqlite3.OperationalError as exc:
                raise LedgerUnavailable(f"embedded ledger {self._path.name}: {exc}") from exc

    def _run(self, args: list[str], write: bool) -> str:
        db = self._db
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            tx_id = hashlib.sha256(json.dumps(args).encode() + time.time_ns().to_bytes(8, "big")).hexdigest()
            stub = _Stub(db, args, self._creator, tx_id)
            response = asyncio.run(self._chaincode.invoke(stub))
            if response.status >= 400:
                raise LedgerRefused(response.message)
            payload = bytes(response.payload).decode()
            if write and stub.writes:
                self._commit_block(db, stub, args, payload)
            db.execute("COMMIT")
            return payload
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _commit_block(self, db: sqlite3.Connection, stub: _Stub, args: list[str], payload: str) -> None:
        last = db.execute("SELECT number, hash FROM blocks ORDER BY number DESC LIMIT 1").fetchone()
        number, prev = (last[0] + 1, last[1]) if last else (0, GENESIS)
        transaction = LedgerTransaction(
            stub.tx_id, self._client_msp, hashlib.sha256(self._client_id).hexdigest(), args[0], tuple(args[1:]),
            payload, tuple((k, hashlib.sha256(v).hexdigest()) for k, v in sorted(stub.writes.items())),
            tuple(stub.events))
        block = EmbeddedBlock(self.org, number, bytes.fromhex(prev), format_time(stub.timestamp.ToDatetime(tzinfo=UTC)),
                              transaction)
        body = canonical_bytes(block.encode())
        signature = self._key.sign(body, ec.ECDSA(hashes.SHA256()))
        db.execute(
            "INSERT INTO blocks (number, hash, tx_id, body, signature) VALUES (?, ?, ?, ?, ?)",
            (number, hashlib.sha256(body).hexdigest(), stub.tx_id, body, signature),
        )
        db.executemany("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", list(stub.writes.items()))

    # ----- the Ledger interface -----

    def register_log(self, log_id: str, note_key: str) -> RegisteredLog:
        raw = self._call(["register_log", log_id, note_key], write=True)
        return parse_answer(raw, RegisteredLog.parse, "registered log")

    def anchor_checkpoint(self, log_id: str, checkpoint: str, consistency_proof: list[bytes]) -> Anchor:
        proof = json.dumps([h.hex() for h in consistency_proof])
        raw = self._call(["anchor_checkpoint", log_id, checkpoint, proof], write=True)
        return parse_answer(raw, Anchor.parse, "anchor")

    def get_log(self, log_id: str) -> RegisteredLog | None:
        try:
            raw = self._call(["get_log", log_id], write=False)
        except LedgerRefused as exc:
            if "is not registered" in str(exc):
                return None
            raise
        return parse_answer(raw, RegisteredLog.parse, "registered log")

    def anchors(self, log_id: str, from_size: int = 0, limit: int = 1000) -> list[Anchor]:
        raw = self._call(["list_anchors", log_id, str(from_size), str(limit)], write=False)
        return parse_answer(raw, parse_anchors, "anchors")

    def attest_head(self, log_id: str) -> LogHead:
        return parse_answer(self._call(["attest_log_head", log_id], write=True), LogHead.parse, "attested head")

    def transaction_evidence(self, tx_id: str) -> AnchorEvidence:
        with self._lock:
            row = self._db.execute("SELECT body, signature FROM blocks WHERE tx_id = ?", (tx_id,)).fetchone()
        if row is None:
            raise LedgerRefused(f"no block holds transaction {tx_id}")
        return AnchorEvidence.parse({
            "ledger": self.kind,
            "block": base64.b64encode(bytes(row[0])).decode(),
            "signature": base64.b64encode(bytes(row[1])).decode(),
        }, "embedded block evidence")

    def trust_roots(self) -> LedgerRoot:
        return LedgerRoot.of_ledger({"ledger": self.kind, "org": self.org, "public_key": self.public_key_pem()},
                                    "embedded ledger root")

    def blocks(self) -> list[tuple[int, bytes, bytes]]:
        with self._lock:
            rows = self._db.execute("SELECT number, body, signature FROM blocks ORDER BY number").fetchall()
        return [(n, bytes(b), bytes(s)) for n, b, s in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
