"""The `evidence` contract: log registration, append-only checkpoint anchoring, queries, events.

A log is bound to the identity (MSP id and certificate hash) that registered it. A checkpoint is
accepted only from that identity, only if the log's own notary key signed it, and only with a valid
RFC 9162 consistency proof from the last anchored checkpoint, so the ledger refuses a rewritten
history. `attest_log_head` records the log's newest anchored checkpoint at a point of the ledger, which is
what an extract's freshness rests on. The contract does no I/O beyond the stub, so the same class runs on
Fabric and embedded.
"""

import hashlib
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

_root = logging.getLogger()
_before = (_root.level, list(_root.handlers))
from fabric_chaincode_python.fabric_contract_api import Contract, ContractChaincode, TransactionContext  # noqa: E402

# Importing the shim configures the root logger at DEBUG and logs every state access on "asyncio";
# undo that so the host process keeps its own logging.
_root.setLevel(_before[0])
for _handler in [h for h in _root.handlers if h not in _before[1]]:
    _root.removeHandler(_handler)
logging.getLogger("asyncio").setLevel(logging.WARNING)

from verifier.anchor import Anchor, LogHead, RegisteredLog, anchor_key, head_key  # noqa: E402
from verifier.canonical import canonical_bytes  # noqa: E402
from verifier.errors import VerificationError  # noqa: E402
from verifier.merkle import hex_hashes, verify_consistency  # noqa: E402
from verifier.note import parse_vkey, verify_checkpoint  # noqa: E402
from verifier.strict import parse_json  # noqa: E402
from verifier.times import format_time  # noqa: E402

__all__ = ["ContractChaincode", "ContractError", "EvidenceContract"]

ANCHOR_EVENT = "CheckpointAnchored"
MAX_PAGE = 1000


class ContractError(Exception):
    """A transaction refused by the contract; the message says why."""


def _log_key(log_id: str) -> str:
    return f"log/{log_id}"


def _dumps(value: Any) -> str:
    """Every answer and every state value is RFC 8785 JSON: the notary and the verifier parse it strictly."""
    return canonical_bytes(value).decode()


def _check_log_id(log_id: str) -> None:
    if not log_id or len(log_id) > 200 or "/" in log_id or not log_id.isprintable():
        raise ContractError(f"log id must be 1-200 printable characters without '/', got {log_id!r:.60}")


def _caller(ctx: TransactionContext) -> tuple[str, str]:
    identity = ctx.get_client_identity()
    cert = identity.get_x509()
    return identity.get_mspid(), hashlib.sha256(cert).hexdigest()


def _timestamp(ctx: TransactionContext) -> str:
    """The transaction's time (its proposer's clock, which endorsers accept), as every format writes times."""
    ts = ctx.get_stub().get_tx_timestamp()
    if ts is None:
        raise ContractError("the transaction carries no timestamp")
    return format_time(datetime.fromtimestamp(ts.seconds, UTC).replace(microsecond=ts.nanos // 1000))


class EvidenceContract(Contract):  # type: ignore[misc]
    Name = "evidence"

    async def register_log(self, ctx: TransactionContext, log_id: str, note_key: str) -> str:
        """Bind `log_id` to the caller's identity and the notary's checkpoint key (idempotent)."""
        _check_log_id(log_id)
        try:
            key = parse_vkey(note_key)
        except VerificationError as exc:
            raise ContractError(f"log {log_id}: {exc}") from exc
        msp_id, id_hash = _caller(ctx)
        stub = ctx.get_stub()
        if await stub.get_state(_log_key(log_id)):
            log = await self._log(ctx, log_id)
            if (log.owner_msp, log.owner_id, log.note_key) != (msp_id, id_hash, key.vkey()):
                raise ContractError(f"log {log_id} is already registered to {log.owner_msp} with key {log.note_key}")
            return _dumps(log.encode())
        log = RegisteredLog(log_id, key.name, key.vkey(), msp_id, id_hash, _timestamp(ctx), 0,
                            hashlib.sha256(b"").digest())
        await stub.put_state(_log_key(log_id), _dumps(log.encode()).encode())
        return _dumps(log.encode())

    async def anchor_checkpoint(
        self, ctx: TransactionContext, log_id: str, checkpoint: str, consistency_proof: str
    ) -> str:
        """Anchor a signed checkpoint that extends the last anchored one."""
        stub = ctx.get_stub()
        log = await self._log(ctx, log_id)
        msp_id, id_hash = _caller(ctx)
        if (msp_id, id_hash) != (log.owner_msp, log.owner_id):
            raise ContractError(
                f"log {log_id} belongs to {log.owner_msp} identity {log.owner_id[:16]}…, "
                f"not to caller {msp_id} identity {id_hash[:16]}…"
            )
        try:
            cp = verify_checkpoint(checkpoint, parse_vkey(log.note_key))
            proof = hex_hashes("consistency proof", json.loads(consistency_proof))
        except (VerificationError, ValueError) as exc:
            raise ContractError(f"log {log_id}: {exc}") from exc
        if cp.origin != log.origin:
            raise ContractError(f"checkpoint origin {cp.origin!r} is not log {log_id}'s {log.origin!r}")
        prev_size, prev_root = log.size, log.root
        if cp.size < prev_size:
            raise ContractError(f"log {log_id}: checkpoint size {cp.size} is below anchored size {prev_size}")
        try:
            verify_consistency(prev_size, cp.size, proof, prev_root, cp.root)
        except VerificationError as exc:
            raise ContractError(
                f"log {log_id}: checkpoint of size {cp.size} does not extend anchored size {prev_size}: {exc}"
            ) from exc
        if cp.size == prev_size and prev_size > 0:
            existing = await stub.get_state(anchor_key(log_id, cp.size))
            return str(existing.decode())
        anchor = Anchor(log_id, cp.size, cp.root, checkpoint, prev_size, stub.get_txid(), _timestamp(ctx))
        await stub.put_state(anchor_key(log_id, cp.size), _dumps(anchor.encode()).encode())
        await stub.put_state(_log_key(log_id), _dumps(replace(log, size=cp.size, root=cp.root).encode()).encode())
        stub.set_event(ANCHOR_EVENT, _dumps({"log_id": log_id, "size": cp.size, "root": cp.root.hex(),
                                             "tx_id": anchor.tx_id}))
        return _dumps(anchor.encode())

    async def attest_log_head(self, ctx: TransactionContext, log_id: str) -> str:
        """Record, as a transaction of its own, the log's newest anchored checkpoint at this point of the
        ledger. An extract carries it so a verifier knows how fresh the extract's checkpoint is: nothing newer
        was anchored for the log before this transaction. Anyone may ask; it changes nothing but its record."""
        log = await self._log(ctx, log_id)
        stub = ctx.get_stub()
        head = LogHead(log_id, log.size, log.root, stub.get_txid(), _timestamp(ctx))
        await stub.put_state(head_key(log_id), _dumps(head.encode()).encode())
        return _dumps(head.encode())

    async def get_log(self, ctx: TransactionContext, log_id: str) -> str:
        return _dumps((await self._log(ctx, log_id)).encode())

    async def get_anchor(self, ctx: TransactionContext, log_id: str, size: str) -> str:
        _check_log_id(log_id)
        if not size.isdigit():
            raise ContractError(f"size must be a non-negative integer, got {size!r:.40}")
        raw = await ctx.get_stub().get_state(anchor_key(log_id, int(size)))
        if not raw:
            raise ContractError(f"log {log_id} has no anchored checkpoint of size {size}")
        return str(raw.decode())

    async def list_anchors(self, ctx: TransactionContext, log_id: str, from_size: str, limit: str) -> str:
        """Anchors of a log with size >= from_size, in order, at most `limit` (<= 1000)."""
        _check_log_id(log_id)
        if not from_size.isdigit() or not limit.isdigit() or not 0 < int(limit) <= MAX_PAGE:
            raise ContractError(f"from_size must be >= 0 and limit in 1..{MAX_PAGE}, got {from_size}, {limit}")
        start, end = anchor_key(log_id, int(from_size)), f"anchor/{log_id}/~"
        iterator = await ctx.get_stub().get_state_by_range(start, end)
        anchors: list[Any] = []
        async for kv in iterator:
            anchors.append(json.loads(kv.value))
            if len(anchors) >= int(limit):
                break
        return _dumps(anchors)

    async def _log(self, ctx: TransactionContext, log_id: str) -> RegisteredLog:
        _check_log_id(log_id)
        raw = await ctx.get_stub().get_state(_log_key(log_id))
        if not raw:
            raise ContractError(f"log {log_id} is not registered")
        try:
            return RegisteredLog.parse(parse_json(bytes(raw), f"log {log_id}"), f"log {log_id}")
        except VerificationError as exc:
            raise ContractError(f"the ledger's state of log {log_id} is malformed: {exc}") from exc
