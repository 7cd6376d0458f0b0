"""`verify_fabric_anchor` on blocks assembled as Fabric assembles them (no network needed)."""

import base64
import hashlib
import random
from typing import Any

import pytest
from fabric_helpers import OrgCA, anchor_block

from verifier.errors import AnchorError
from verifier.fabric import verify_fabric_anchor

ORGS = ("ProvinceMSP", "JinanMSP", "QingdaoMSP")
ROOT = hashlib.sha256(b"root").digest()


@pytest.fixture(scope="module")
def cas() -> dict[str, OrgCA]:
    return {msp: OrgCA.create(msp) for msp in (*ORGS, "ProvinceOrdererMSP")}


def _roots(cas: dict[str, OrgCA]) -> dict[str, Any]:
    return {
        "ledger": "fabric",
        "channel": "evidence",
        "chaincode": "evidence",
        "organizations": {msp: cas[msp].pem() for msp in ORGS},
        "orderers": {"ProvinceOrdererMSP": cas["ProvinceOrdererMSP"].pem()},
        "endorsement": {"rule": "MAJORITY", "organizations": list(ORGS), "required": 2},
    }


def _evidence(block: bytes, tx_id: str, number: int = 7) -> dict[str, Any]:
    return {"ledger": "fabric", "channel": "evidence", "chaincode": "evidence", "tx_id": tx_id,
            "block_number": number, "block": base64.b64encode(block).decode()}


def _block(cas: dict[str, OrgCA], endorsers: tuple[str, ...] = ("ProvinceMSP", "JinanMSP"),
           endorser_ou: str = "peer", **kw: Any) -> tuple[bytes, str]:
    block: tuple[bytes, str] = anchor_block(
        cas["ProvinceMSP"].issue("notary", "client"),
        [cas[m].issue(f"peer0.{m}", endorser_ou) for m in endorsers],
        cas["ProvinceOrdererMSP"].issue("orderer0", "orderer"),
        "log-a", 5, ROOT, **kw,
    )
    return block


def test_accepts_majority_endorsed_anchor(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    summary = verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, ROOT)
    assert summary.startswith("Fabric block 7, tx ")
    assert "endorsed by JinanMSP, ProvinceMSP (2 of 3)" in summary


def test_rejects_single_organisation_endorsement(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas, endorsers=("ProvinceMSP",))
    with pytest.raises(AnchorError, match=r"endorsed by ProvinceMSP \(1 of 3\), the policy needs 2"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, ROOT)


def test_rejects_endorsement_by_client_certificate(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas, endorser_ou="client")
    with pytest.raises(AnchorError, match="not a peer"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, ROOT)


def test_rejects_other_checkpoint(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    with pytest.raises(AnchorError, match="expected log 'log-a' size 6"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 6, ROOT)
    with pytest.raises(AnchorError, match="root"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, bytes(32))


def test_rejects_transaction_marked_invalid(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas, valid=False)
    with pytest.raises(AnchorError, match="MVCC_READ_CONFLICT"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, ROOT)


def test_rejects_untrusted_organisation(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    roots = _roots(cas)
    other = OrgCA.create("JinanMSP")
    roots["organizations"]["JinanMSP"] = other.pem()
    with pytest.raises(AnchorError, match="JinanMSP"):
        verify_fabric_anchor(_evidence(block, tx_id), roots, "log-a", 5, ROOT)


def test_rejects_block_not_signed_by_trusted_orderer(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    roots = _roots(cas)
    roots["orderers"] = {"ProvinceOrdererMSP": OrgCA.create("ProvinceOrdererMSP").pem()}
    with pytest.raises(AnchorError, match="not signed by a trusted orderer"):
        verify_fabric_anchor(_evidence(block, tx_id), roots, "log-a", 5, ROOT)


def test_rejects_every_flipped_byte_of_header_and_data(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    roots = _roots(cas)
    rng = random.Random(7)
    metadata_start = block.rfind(b"orderer-block-metadata") - 8  # flags after it are not covered by hashes
    positions = sorted(rng.sample(range(metadata_start), 300))
    for pos in positions:
        tampered = bytearray(block)
        tampered[pos] ^= 1 << rng.randrange(8)
        with pytest.raises(AnchorError):
            verify_fabric_anchor(_evidence(bytes(tampered), tx_id), roots, "log-a", 5, ROOT)


@pytest.mark.parametrize(
    "evidence",
    [
        None,
        "block",
        {},
        {"ledger": "embedded"},
        {"ledger": "fabric", "tx_id": "ab", "block": "not base64!"},
        {"ledger": "fabric", "tx_id": 5, "block": ""},
        {"ledger": "fabric", "tx_id": "ab", "block": base64.b64encode(b"\xff\xff\xff").decode()},
        {"ledger": "fabric", "tx_id": "ab", "block": ""},
    ],
)
def test_malformed_evidence_is_an_anchor_error(cas: dict[str, OrgCA], evidence: Any) -> None:
    with pytest.raises(AnchorError):
        verify_fabric_anchor(evidence, _roots(cas), "log-a", 5, ROOT)


def test_malformed_trust_roots_are_an_anchor_error(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    for roots in ({}, {"ledger": "fabric", "organizations": {"ProvinceMSP": "not pem"}},
                  {"ledger": "fabric", "organizations": {"ProvinceMSP": 3}}, {**_roots(cas), "ledger": "embedded"},
                  {**_roots(cas), "ledger": None}):
        with pytest.raises(AnchorError):
            verify_fabric_anchor(_evidence(block, tx_id), roots, "log-a", 5, ROOT)
