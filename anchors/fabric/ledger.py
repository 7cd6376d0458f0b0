"""`FabricLedger`: the `Ledger` interface on a Fabric network, through one organisation's Gateway peer.

It reads a connection profile (JSON) that `network up` writes per organisation, so it needs nothing from
`network/` itself: peer endpoint and TLS root, the client identity's MSP folder, and every organisation's
root certificate for `trust_roots()`.
"""

import base64
import json
import os
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from fabric_protos.common import common_pb2
from google.protobuf.message import DecodeError

from anchors.fabric.gateway import Contract, Gateway, Network
from anchors.fabric.identity import load_msp
from anchors.ledger import LedgerError, LedgerRefused, parse_anchors, parse_answer
from verifier.anchor import Anchor, AnchorEvidence, LogHead, RegisteredLog
from verifier.errors import VerificationError
from verifier.fabric import block_hash, genesis_membership, last_config_index
from verifier.trust import LedgerRoot

CONTRACT = "evidence"


class FabricLedger:
    kind = "fabric"

    def __init__(self, profile: dict[str, Any], base_dir: Path | None = None) -> None:
        self.profile = profile
        base = base_dir or Path(".")

        def path(value: str) -> Path:
            p = Path(value)
            return p if p.is_absolute() else base / p

        self._path = path
        identity, signer = load_msp(path(profile["identity"]["msp_dir"]), profile["msp_id"])
        self.gateway = Gateway(
            profile["peer"]["endpoint"],
            path(profile["peer"]["tls_root_cert"]).read_bytes(),
            identity,
            signer,
            server_name=profile["peer"].get("host_name"),
        )
        self.network: Network = self.gateway.get_network(profile["channel"])
        self.contract: Contract = self.network.get_contract(profile["chaincode"], CONTRACT)
        self._chains: dict[int, list[bytes]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_profile(cls, profile_file: Path | str) -> "FabricLedger":
        profile_path = Path(profile_file)
        return cls(json.loads(profile_path.read_text()), profile_path.parent)

    def register_log(self, log_id: str, note_key: str) -> RegisteredLog:
        raw = self.contract.submit_transaction("register_log", log_id, note_key)
        return parse_answer(raw, RegisteredLog.parse, "registered log")

    def anchor_checkpoint(self, log_id: str, checkpoint: str, consistency_proof: list[bytes]) -> Anchor:
        proof = json.dumps([h.hex() for h in consistency_proof])
        raw = self.contract.submit_transaction("anchor_checkpoint", log_id, checkpoint, proof)
        return parse_answer(raw, Anchor.parse, "anchor")

    def get_log(self, log_id: str) -> RegisteredLog | None:
        try:
            raw = self.contract.evaluate_transaction("get_log", log_id)
        except LedgerRefused as exc:
            if "is not registered" in str(exc):
                return None
            raise
        return parse_answer(raw, RegisteredLog.parse, "registered log")

    def anchors(self, log_id: str, from_size: int = 0, limit: int = 1000) -> list[Anchor]:
        raw = self.contract.evaluate_transaction("list_anchors", log_id, str(from_size), str(limit))
        return parse_answer(raw, parse_anchors, "anchors")

    def get_anchor(self, log_id: str, size: int) -> Anchor:
        return parse_answer(self.contract.evaluate_transaction("get_anchor", log_id, str(size)), Anchor.parse,
                            "anchor")

    def attest_head(self, log_id: str) -> LogHead:
        raw = self.contract.submit_transaction("attest_log_head", log_id)
        return parse_answer(raw, LogHead.parse, "attested head")

    def transaction_evidence(self, tx_id: str) -> AnchorEvidence:
        """The transaction's block, and the channel's configuration blocks up to the one in force at it, so that
        a verifier judges the endorsements against the membership of that time (from the pinned genesis)."""
        raw = self.network.get_block_by_tx_id(tx_id)
        try:
            block = common_pb2.Block.FromString(raw)
        except DecodeError as exc:
            raise LedgerError(f"the peer's block holding transaction {tx_id} does not decode: {exc}") from exc
        return AnchorEvidence.parse({
            "ledger": self.kind,
            "channel": self.profile["channel"],
            "chaincode": self.profile["chaincode"],
            "tx_id": tx_id,
            "block_number": int(block.header.number),
            "block": base64.b64encode(raw).decode(),
            "config_blocks": [base64.b64encode(b).decode() for b in self.config_chain(last_config_index(block))],
        }, f"Fabric evidence of transaction {tx_id}")

    def config_chain(self, last: int) -> list[bytes]:
        """Configuration blocks from the genesis block to block `last`, oldest first.

        The block before a configuration block names the configuration before it, so the chain is walked
        back two reads per update; chains already seen are remembered (they never change)."""
        with self._lock:
            if last in self._chains:
                return self._chains[last]
        chain: list[bytes] = []
        number = last
        while True:
            cached = self._chains.get(number)
            if cached is not None:
                chain = cached + chain
                break
            chain.insert(0, self.network.get_block_by_number(number))
            if number == 0:
                break
            before = common_pb2.Block.FromString(self.network.get_block_by_number(number - 1))
            number = last_config_index(before)
        with self._lock:
            self._chains[last] = chain
        return chain

    def trust_roots(self) -> LedgerRoot:
        """What to publish: the channel and the genesis membership (every later change is proven from it)."""
        channel = self.profile["channel"]
        try:
            block = common_pb2.Block.FromString(self.network.get_block_by_number(0))
            genesis = genesis_membership(block, channel)
            return LedgerRoot.of_ledger({
                "ledger": self.kind,
                "channel": channel,
                "chaincode": self.profile["chaincode"],
                "genesis_block": block_hash(block.header).hex(),
                "organizations": {msp: _pem(certs) for msp, certs in sorted(genesis.organizations.items())},
                "orderers": {msp: _pem(certs) for msp, certs in sorted(genesis.orderers.items())},
                "endorsement": {"rule": "MAJORITY"},
            }, f"Fabric channel {channel} roots")
        except (DecodeError, VerificationError) as exc:
            raise LedgerError(f"the channel's genesis block does not give its roots: {exc}") from exc

    def close(self) -> None:
        self.gateway.close()


def _pem(certs: list[x509.Certificate]) -> str:
    if len(certs) != 1:
        raise LedgerError(f"an organisation of the genesis block has {len(certs)} root certificates, expected one")
    return certs[0].public_bytes(serialization.Encoding.PEM).decode()


def profile_path(msp_id: str) -> Path:
    """Where `network up` wrote `msp_id`'s profile: $BIDTRACE_FABRIC_PROFILE, or under the network's home."""
    explicit = os.environ.get("BIDTRACE_FABRIC_PROFILE")
    if explicit:
        return Path(explicit)
    home = Path(os.environ.get("BIDTRACE_FABRIC_HOME", "data/fabric"))
    return home / "profiles" / f"{msp_id.removesuffix('MSP').lower()}.json"


def open_fabric_ledger(msp_id: str) -> FabricLedger:
    """The Fabric ledger as organisation `msp_id` (its user identity, through its own peer)."""
    path = profile_path(msp_id)
    if not path.exists():
        raise FileNotFoundError(
            f"no Fabric connection profile for {msp_id} at {path}; run `bidtrace network up` "
            "or set BIDTRACE_FABRIC_HOME / BIDTRACE_FABRIC_PROFILE"
        )
    return FabricLedger.from_profile(path)
