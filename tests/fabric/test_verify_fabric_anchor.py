"""`verify_fabric_anchor` on blocks assembled as Fabric assembles them (no network needed)."""

import base64
import hashlib
import random
from typing import Any

import pytest
from fabric_helpers import OrgCA, anchor_block, config_block
from fabric_protos.common import common_pb2

from verifier.errors import AnchorError
from verifier.fabric import block_hash, verify_fabric_anchor, verify_fabric_head

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
        "endorsement": {"rule": "MAJORITY"},
        "genesis_block": block_hash(common_pb2.Block.FromString(GENESIS[0]).header).hex(),
    }


GENESIS: list[bytes] = []


@pytest.fixture(scope="module", autouse=True)
def _genesis(cas: dict[str, OrgCA]) -> None:
    GENESIS[:] = [config_block(0, [cas[m] for m in ORGS], [cas["ProvinceOrdererMSP"]])]


def _evidence(block: bytes, tx_id: str, number: int = 7, chain: list[bytes] | None = None) -> dict[str, Any]:
    return {"ledger": "fabric", "channel": "evidence", "chaincode": "evidence", "tx_id": tx_id,
            "block_number": number, "block": base64.b64encode(block).decode(),
            "config_blocks": [base64.b64encode(b).decode() for b in (GENESIS if chain is None else chain)]}


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
    with pytest.raises(AnchorError, match=r"endorsed by ProvinceMSP \(1 of 3 members at block 7\), the policy needs 2"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, ROOT)


def test_rejects_endorsement_by_client_certificate(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas, endorser_ou="client")
    with pytest.raises(AnchorError, match="not a peer"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, ROOT)


def test_rejects_other_checkpoint(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    with pytest.raises(AnchorError, match=r"records size 5 root .*, expected size 6"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 6, ROOT)
    with pytest.raises(AnchorError, match="expected size 5 root 0000"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, bytes(32))
    with pytest.raises(AnchorError, match="is for log 'log-a', expected 'log-b'"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-b", 5, ROOT)


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
    rogue = OrgCA.create("ProvinceOrdererMSP")
    block, tx_id = anchor_block(
        cas["ProvinceMSP"].issue("notary", "client"),
        [cas[m].issue(f"peer0.{m}", "peer") for m in ("ProvinceMSP", "JinanMSP")],
        rogue.issue("orderer0", "orderer"), "log-a", 5, ROOT,
    )
    with pytest.raises(AnchorError, match="not signed by a trusted orderer"):
        verify_fabric_anchor(_evidence(block, tx_id), _roots(cas), "log-a", 5, ROOT)


def test_rejects_roots_that_are_not_the_genesis_membership(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    for kind, msp in (("orderers", "ProvinceOrdererMSP"), ("organizations", "QingdaoMSP")):
        roots = _roots(cas)
        roots[kind] = {**roots[kind], msp: OrgCA.create(msp).pem()}
        with pytest.raises(AnchorError, match=f"genesis block's {kind} .* are not the pinned ones"):
            verify_fabric_anchor(_evidence(block, tx_id), roots, "log-a", 5, ROOT)


def test_rejects_every_flipped_byte_of_header_and_data(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    roots = _roots(cas)
    rng = random.Random(7)
    metadata_start = len(block) - 400  # the metadata at the end is checked by signature, not by the header
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


# --- membership over time ---------------------------------------------------------------------------------

CITIES = ("YantaiMSP", "WeifangMSP")


def _cities_added(cas: dict[str, OrgCA], everyone: dict[str, OrgCA], signers: list[tuple[Any, Any]],
                  written: tuple[str, ...] = CITIES, orderer_ca: OrgCA | None = None) -> bytes:
    """Configuration block 3: the three organisations and both cities, with the given update signers."""
    block: bytes = config_block(
        3, [everyone[m] for m in (*ORGS, *CITIES)], [cas["ProvinceOrdererMSP"]], signers=signers,
        orderer=(orderer_ca or cas["ProvinceOrdererMSP"]).issue("orderer0", "orderer"),
        written=[everyone[m] for m in written],
    )
    return block


def _admins(cas: dict[str, OrgCA], msps: tuple[str, ...], ou: str = "admin") -> list[tuple[Any, Any]]:
    return [cas[m].issue(f"Admin@{m}", ou) for m in msps]


def _with_cities(cas: dict[str, OrgCA]) -> dict[str, OrgCA]:
    return {**cas, **{m: OrgCA.create(m) for m in CITIES}}


@pytest.fixture(scope="module")
def grown(cas: dict[str, OrgCA]) -> tuple[dict[str, OrgCA], bytes]:
    """Two cities added at block 3 by an update signed by the admins of two of the three organisations."""
    everyone = _with_cities(cas)
    return everyone, _cities_added(cas, everyone, _admins(cas, ("ProvinceMSP", "JinanMSP")))


def _anchored(cas: dict[str, OrgCA], endorsers: tuple[str, ...], number: int, last_config: int) -> tuple[bytes, str]:
    block: tuple[bytes, str] = anchor_block(
        cas["ProvinceMSP"].issue("notary", "client"), [cas[m].issue(f"peer0.{m}", "peer") for m in endorsers],
        cas["ProvinceOrdererMSP"].issue("orderer0", "orderer"), "log-a", 5, ROOT, number=number,
        last_config=last_config,
    )
    return block


def _refused_after(cas: dict[str, OrgCA], everyone: dict[str, OrgCA], config: bytes, reason: str) -> None:
    """An anchor at block 7 under configuration block 3, endorsed by a majority of the five, must fail."""
    block, tx_id = _anchored(everyone, ("ProvinceMSP", "YantaiMSP", "WeifangMSP"), 7, 3)
    with pytest.raises(AnchorError, match=reason):
        verify_fabric_anchor(_evidence(block, tx_id, chain=[GENESIS[0], config]), _roots(cas), "log-a", 5, ROOT)


def test_anchors_before_and_after_an_add_org_verify_against_the_same_roots(
    cas: dict[str, OrgCA], grown: tuple[dict[str, OrgCA], bytes]
) -> None:
    everyone, added = grown
    before, before_id = _anchored(everyone, ("ProvinceMSP", "JinanMSP"), 2, 0)
    assert "(2 of 3)" in verify_fabric_anchor(_evidence(before, before_id, 2), _roots(cas), "log-a", 5, ROOT)
    after, after_id = _anchored(everyone, ("ProvinceMSP", "JinanMSP", "YantaiMSP"), 7, 3)
    summary = verify_fabric_anchor(_evidence(after, after_id, chain=[GENESIS[0], added]), _roots(cas), "log-a", 5,
                                   ROOT)
    assert "endorsed by JinanMSP, ProvinceMSP, YantaiMSP (3 of 5 members as of config block 3)" in summary


def test_after_an_add_org_two_endorsements_are_no_longer_a_majority(
    cas: dict[str, OrgCA], grown: tuple[dict[str, OrgCA], bytes]
) -> None:
    everyone, added = grown
    after, tx_id = _anchored(everyone, ("ProvinceMSP", "JinanMSP"), 7, 3)
    with pytest.raises(AnchorError, match=r"\(2 of 5 members at block 7\), the policy needs 3"):
        verify_fabric_anchor(_evidence(after, tx_id, chain=[GENESIS[0], added]), _roots(cas), "log-a", 5, ROOT)


def test_the_configuration_in_force_must_be_the_one_the_block_names(
    cas: dict[str, OrgCA], grown: tuple[dict[str, OrgCA], bytes]
) -> None:
    everyone, added = grown
    after, tx_id = _anchored(everyone, ("ProvinceMSP", "JinanMSP"), 7, 3)
    with pytest.raises(AnchorError, match=r"configuration in force is block 3, the evidence carries .* block 0"):
        verify_fabric_anchor(_evidence(after, tx_id), _roots(cas), "log-a", 5, ROOT)  # the update left out
    before, before_id = _anchored(everyone, ("ProvinceMSP", "JinanMSP"), 2, 0)
    with pytest.raises(AnchorError, match="configuration in force is block 0"):
        verify_fabric_anchor(_evidence(before, before_id, 2, chain=[GENESIS[0], added]), _roots(cas), "log-a", 5,
                             ROOT)


@pytest.mark.parametrize(
    ("signers", "reason"),
    [
        (("ProvinceMSP",), r"signed by admins of ProvinceMSP \(1 of 3\); a majority needs 2"),
        ((), r"signed by admins of no member \(0 of 3\)"),
        (("YantaiMSP", "WeifangMSP"), "not among the trusted organisations"),
    ],
)
def test_a_forged_config_update_fails(cas: dict[str, OrgCA], signers: tuple[str, ...], reason: str) -> None:
    """An orderer alone, or the new cities themselves, cannot grow the membership: a majority of admins must."""
    everyone = _with_cities(cas)
    _refused_after(cas, everyone, _cities_added(cas, everyone, _admins(everyone, signers)), reason)


def test_config_update_signed_by_peers_instead_of_admins_fails(cas: dict[str, OrgCA]) -> None:
    everyone = _with_cities(cas)
    peers = _admins(cas, ("ProvinceMSP", "JinanMSP"), ou="peer")
    _refused_after(cas, everyone, _cities_added(cas, everyone, peers), "signed by a peer, not an admin")


def test_a_config_block_that_adds_more_than_its_update_writes_fails(cas: dict[str, OrgCA]) -> None:
    everyone = _with_cities(cas)
    smuggled = _cities_added(cas, everyone, _admins(cas, ("ProvinceMSP", "JinanMSP")), written=("YantaiMSP",))
    _refused_after(cas, everyone, smuggled, "sets WeifangMSP's root certificates, which its signed update does not")


def test_a_config_block_not_signed_by_an_orderer_of_the_time_fails(cas: dict[str, OrgCA]) -> None:
    everyone = _with_cities(cas)
    unsigned = _cities_added(cas, everyone, _admins(cas, ("ProvinceMSP", "JinanMSP")),
                             orderer_ca=OrgCA.create("ProvinceOrdererMSP"))
    _refused_after(cas, everyone, unsigned, "block 3 is not signed by a trusted orderer")


def test_malformed_configuration_chains_are_anchor_errors(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    evidence = _evidence(block, tx_id)
    genesis = evidence["config_blocks"][0]
    raw = base64.b64decode(genesis)
    cut = base64.b64encode(raw[: len(raw) // 2]).decode()
    for chain in ([], [123], ["not base64!"], [base64.b64encode(b"\xff\xff\xff").decode()], [cut],
                  [genesis, genesis], [evidence["block"]], [genesis, evidence["block"]], None, "x", {"a": 1}):
        with pytest.raises(AnchorError):
            verify_fabric_anchor({**evidence, "config_blocks": chain}, _roots(cas), "log-a", 5, ROOT)
    # Header and data (all but the trailing, unused metadata) are bound by the pinned genesis hash.
    covered = len(raw) - len(common_pb2.Block.FromString(raw).metadata.SerializeToString()) - 3
    flipped = bytearray(raw)
    for pos in random.Random(3).sample(range(covered), 200):
        flipped[pos] ^= 0x10
        with pytest.raises(AnchorError):
            verify_fabric_anchor({**evidence, "config_blocks": [base64.b64encode(bytes(flipped)).decode()]},
                                 _roots(cas), "log-a", 5, ROOT)
        flipped[pos] ^= 0x10


def test_a_genesis_block_other_than_the_pinned_one_fails(cas: dict[str, OrgCA]) -> None:
    """Same members, another genesis (another channel, or other policies): the pinned hash tells them apart."""
    block, tx_id = _block(cas)
    other = config_block(0, [cas[m] for m in ORGS], [cas["ProvinceOrdererMSP"]], channel="evidence",
                         signers=[cas["ProvinceMSP"].issue("Admin@ProvinceMSP", "admin")])
    with pytest.raises(AnchorError, match="the trust roots pin"):
        verify_fabric_anchor(_evidence(block, tx_id, chain=[other]), _roots(cas), "log-a", 5, ROOT)
    with pytest.raises(AnchorError, match="must name the genesis_block"):
        verify_fabric_anchor(_evidence(block, tx_id), {**_roots(cas), "genesis_block": None}, "log-a", 5, ROOT)


# The ledger's attested head of a log -------------------------------------------------------------------------

AT = "2026-11-27T09:00:00.000000Z"


def _head_block(cas: dict[str, OrgCA], log_id: str = "log-a", head: str = AT) -> tuple[bytes, str]:
    block: tuple[bytes, str] = anchor_block(
        cas["ProvinceMSP"].issue("notary", "client"),
        [cas[m].issue(f"peer0.{m}", "peer") for m in ("ProvinceMSP", "JinanMSP")],
        cas["ProvinceOrdererMSP"].issue("orderer0", "orderer"), log_id, 5, ROOT, head=head)
    return block


def test_an_endorsed_head_attestation_is_read_with_its_block(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _head_block(cas)
    head, number, summary = verify_fabric_head(_evidence(block, tx_id), _roots(cas), "log-a")
    assert (head.log_id, head.size, head.root, head.tx_id, head.attested_at, number) == ("log-a", 5, ROOT, tx_id, AT, 7)
    assert "endorsed by JinanMSP, ProvinceMSP" in summary


def test_an_anchor_or_another_logs_head_is_not_the_head_of_this_log(cas: dict[str, OrgCA]) -> None:
    block, tx_id = _block(cas)
    with pytest.raises(AnchorError):
        verify_fabric_head(_evidence(block, tx_id), _roots(cas), "log-a")
    block, tx_id = _head_block(cas, log_id="log-b")
    with pytest.raises(AnchorError, match=r"does not attest the head of log 'log-a'|does not write the head"):
        verify_fabric_head(_evidence(block, tx_id), _roots(cas), "log-a")
    block, tx_id = _head_block(cas, head="2026-11-27 09:00:00Z")
    with pytest.raises(AnchorError, match="attested_at"):
        verify_fabric_head(_evidence(block, tx_id), _roots(cas), "log-a")
