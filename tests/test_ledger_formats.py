"""What the ledgers say, in one typed vocabulary: the registered log, the anchor, the attested head, anchor
evidence and a ledger's root each have one encoder and one strict parser in `verifier/`. The contract writes
with the encoder, the notary reads every answer once with the parser, and a malformed answer is a clear
error, never a crash."""

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from anchors.embedded import EmbeddedLedger
from anchors.ledger import LedgerError, parse_anchors, parse_answer
from notary.client import NotaryClient
from notary.extract import published_roots
from notary.log import Submission
from notary.sealing import Sealer
from notary.server import serving
from notary.service import Notary
from tests.conftest import Participants, incident, make_config
from tests.fabric.fabric_helpers import Notary as LogKeeper
from tests.fabric.fabric_helpers import self_signed_identity
from verifier.anchor import Anchor, AnchorEvidence, EmbeddedBlock, LogHead, RegisteredLog
from verifier.canonical import canonical_bytes
from verifier.errors import VerificationError
from verifier.manifest import ManifestAnchor
from verifier.trust import LedgerRoot, TrustRoots


@pytest.fixture
def ledger(tmp_path: Path) -> EmbeddedLedger:
    return EmbeddedLedger(tmp_path / "ledger", "ProvinceMSP", "ProvinceMSP", b"notary identity")


def _anchored(ledger: EmbeddedLedger) -> tuple[RegisteredLog, Anchor, LogHead]:
    keeper = LogKeeper("bidtrace.test/province")
    registered = ledger.register_log("province", keeper.vkey())
    keeper.append(b"entry 0", b"entry 1", b"entry 2")
    anchor = ledger.anchor_checkpoint("province", keeper.checkpoint(), keeper.proof(0))
    return registered, anchor, ledger.attest_head("province")


def _results(ledger: EmbeddedLedger) -> dict[str, str]:
    """Each function's answer as the contract wrote it into its block (its last call of that function); each
    block is the RFC 8785 encoding of what it parses to."""
    found = {}
    for number, body, _ in ledger.blocks():
        block = EmbeddedBlock.parse(json.loads(body), "block")
        assert block.number == number and canonical_bytes(block.encode()) == body
        found[block.transaction.function] = block.transaction.result
    return found


def test_the_contracts_answers_are_the_encoders_bytes_and_parse_back(ledger: EmbeddedLedger) -> None:
    registered, anchor, head = _anchored(ledger)
    results = _results(ledger)
    assert results["register_log"] == canonical_bytes(registered.encode()).decode()
    assert results["anchor_checkpoint"] == canonical_bytes(anchor.encode()).decode()
    assert results["attest_log_head"] == canonical_bytes(head.encode()).decode()
    assert RegisteredLog.parse(json.loads(results["register_log"]), "log") == registered
    assert Anchor.parse(json.loads(results["anchor_checkpoint"]), "anchor") == anchor
    assert (registered.size, anchor.size, anchor.previous_size, head.size) == (0, 3, 0, 3)
    state = ledger.get_log("province")
    assert state is not None and (state.size, state.root) == (3, anchor.root)
    assert state.registered_at == registered.registered_at
    assert ledger.anchors("province") == [anchor]
    assert ledger.get_log("unknown") is None


def test_evidence_and_roots_come_back_typed_and_round_trip(ledger: EmbeddedLedger) -> None:
    _, anchor, _ = _anchored(ledger)
    evidence = ledger.transaction_evidence(anchor.tx_id)
    assert evidence.ledger == "embedded"
    assert AnchorEvidence.parse(evidence.encode(), "evidence") == evidence
    root = ledger.trust_roots()
    assert root.ledger == "embedded" and root.name == "ProvinceMSP" and root.logs == ()
    assert LedgerRoot.of_ledger(root.body, "root") == root


def _anchor_fields() -> dict[str, Any]:
    return {"log_id": "province", "size": 3, "root": "ab" * 32, "checkpoint": "note", "previous_size": 1,
            "tx_id": "t" * 64, "anchored_at": "2026-11-26T01:30:00.123456Z"}


def _log_fields() -> dict[str, Any]:
    return {"log_id": "province", "origin": "bidtrace.test/province", "note_key": "bidtrace.test/province+1+AA",
            "owner_msp": "ProvinceMSP", "owner_id": "cd" * 32, "registered_at": "2026-11-26T01:30:00.123456Z",
            "size": 0, "root": "ef" * 32}


WRONG_ANCHORS = [
    ({"size": None}, "size must be a non-negative integer"),
    ({"size": "3"}, "size must be a non-negative integer"),
    ({"size": 3.0}, "size must be a non-negative integer"),
    ({"size": True}, "size must be a non-negative integer"),
    ({"size": -1}, "size must be a non-negative integer"),
    ({"previous_size": 4}, "previous_size 4 exceeds its size 3"),
    ({"root": "AB" * 32}, "root must be 64 lower-case hex"),
    ({"root": "ab" * 31}, "root must be 64 lower-case hex"),
    ({"tx_id": ""}, "tx_id must be non-empty text"),
    ({"anchored_at": "2026-11-26 01:30:00Z"}, "anchored_at"),
    ({"ledger": "embedded"}, "unexpected 'ledger'"),
]


@pytest.mark.parametrize(("change", "named"), WRONG_ANCHORS)
def test_an_anchor_of_the_wrong_shape_is_refused_by_name(change: dict[str, Any], named: str) -> None:
    assert Anchor.parse(_anchor_fields(), "anchor").encode() == _anchor_fields()
    with pytest.raises(VerificationError, match=named):
        Anchor.parse({**_anchor_fields(), **change}, "anchor")


@pytest.mark.parametrize("missing", sorted(_anchor_fields()))
def test_an_anchor_missing_a_field_is_refused_by_name(missing: str) -> None:
    fields = {k: v for k, v in _anchor_fields().items() if k != missing}
    with pytest.raises(VerificationError, match=f"missing {missing}"):
        Anchor.parse(fields, "anchor")


@pytest.mark.parametrize(("change", "named"), [
    ({"size": 2**53 * 1.0}, "size must be a non-negative integer"),
    ({"owner_id": "cd" * 31}, "owner_id must be 64 lower-case hex"),
    ({"origin": 7}, "origin must be non-empty text"),
    ({"registered_at": "2026-11-26T01:30:00"}, "registered_at"),
    ({"kind": "embedded"}, "unexpected 'kind'"),
])
def test_a_registered_log_of_the_wrong_shape_is_refused_by_name(change: dict[str, Any], named: str) -> None:
    assert RegisteredLog.parse(_log_fields(), "log").encode() == _log_fields()
    with pytest.raises(VerificationError, match=named):
        RegisteredLog.parse({**_log_fields(), **change}, "log")


@pytest.mark.parametrize(("raw", "named"), [
    (b'{"log_id":"province","size":3.0}', "not in RFC 8785 canonical form"),
    (b'{"size": 3}', "not in RFC 8785 canonical form"),
    (b'{"size":3,"size":4}', "repeats a key"),
    (b'{"size":NaN}', "not a JSON number"),
    (b"not json", "not JSON"),
    (b"\xff", "not UTF-8"),
])
def test_a_contract_answer_that_is_not_canonical_json_is_a_ledger_error(raw: bytes, named: str) -> None:
    with pytest.raises(LedgerError, match=named):
        parse_answer(raw, RegisteredLog.parse, "registered log")


def test_an_answer_of_the_wrong_shape_is_a_ledger_error_naming_the_field() -> None:
    page = [_anchor_fields(), {**_anchor_fields(), "size": 3.5}]
    with pytest.raises(LedgerError, match=r"anchors\[1\] size must be a non-negative integer"):
        parse_answer(canonical_bytes(page), parse_anchors, "anchors")
    with pytest.raises(LedgerError, match="anchors must be a JSON list"):
        parse_answer(canonical_bytes(_anchor_fields()), parse_anchors, "anchors")
    assert parse_answer(canonical_bytes(page[:1]), parse_anchors, "anchors") == [Anchor.parse(page[0], "a")]


def _embedded_evidence() -> dict[str, Any]:
    return {"ledger": "embedded", "block": base64.b64encode(b"{}").decode(),
            "signature": base64.b64encode(b"sig").decode()}


def _fabric_evidence() -> dict[str, Any]:
    return {"ledger": "fabric", "channel": "evidence", "chaincode": "evidence", "tx_id": "t" * 64,
            "block_number": 7, "block": base64.b64encode(b"block").decode(),
            "config_blocks": [base64.b64encode(b"genesis").decode()]}


@pytest.mark.parametrize(("evidence", "named"), [
    ({k: v for k, v in _embedded_evidence().items() if k != "ledger"} | {"kind": "embedded"},
     'must be tagged "ledger"'),
    ({**_embedded_evidence(), "ledger": "Embedded"}, 'must be tagged "ledger"'),
    ({**_embedded_evidence(), "court_summary": "fine"}, "unexpected 'court_summary'"),
    ({k: v for k, v in _embedded_evidence().items() if k != "signature"}, "missing signature"),
    ({**_embedded_evidence(), "block": "not base64!"}, "block is not base64"),
    ({**_embedded_evidence(), "signature": "c2lnPQ="}, "signature is not base64"),
    ({**_embedded_evidence(), "signature": "c2l="}, "signature is not in canonical base64"),
    ({**_fabric_evidence(), "block_number": "7"}, "block_number must be a non-negative integer"),
    ({**_fabric_evidence(), "block_number": 7.0}, "block_number must be a non-negative integer"),
    ({**_fabric_evidence(), "config_blocks": "genesis"}, "config_blocks must be a list"),
    ({**_fabric_evidence(), "config_blocks": [3]}, r"config_blocks\[0\] must be non-empty base64"),
    ({k: v for k, v in _fabric_evidence().items() if k != "tx_id"}, "missing tx_id"),
    ([_embedded_evidence()], "must be a JSON object"),
])
def test_anchor_evidence_of_the_wrong_shape_is_refused_by_name(evidence: Any, named: str) -> None:
    for genuine in (_embedded_evidence(), _fabric_evidence()):
        assert AnchorEvidence.parse(genuine, "evidence").encode() == genuine
    with pytest.raises(VerificationError, match=named):
        AnchorEvidence.parse(evidence, "evidence")


def _fabric_root() -> dict[str, Any]:
    cert = self_signed_identity("ca")[0].decode()
    return {"ledger": "fabric", "channel": "evidence", "chaincode": "evidence", "genesis_block": "01" * 32,
            "organizations": {"ProvinceMSP": cert}, "orderers": {"OrdererMSP": cert},
            "endorsement": {"rule": "MAJORITY"}}


@pytest.mark.parametrize(("change", "named"), [
    ({"endorsement": {"rule": "ANY"}}, 'endorsement rule must be "MAJORITY"'),
    ({"endorsement": {"rule": "MAJORITY", "quorum": 1}}, "unexpected 'quorum'"),
    ({"genesis_block": "01" * 31}, "genesis_block must be 64 lower-case hex"),
    ({"channel": ""}, "channel must be non-empty text"),
    ({"organizations": {"ProvinceMSP": 7}}, "must be a PEM certificate as text"),
    ({"organizations": {"ProvinceMSP": "-----BEGIN CERTIFICATE-----"}}, "is not a PEM certificate"),
    ({"logs": ["province"]}, "unexpected 'logs'"),
])
def test_a_fabric_root_of_the_wrong_shape_is_refused_by_name(change: dict[str, Any], named: str) -> None:
    genuine = _fabric_root()
    root = LedgerRoot.of_ledger(genuine, "root")
    assert (root.ledger, root.name, root.body) == ("fabric", "evidence", genuine)
    with pytest.raises(VerificationError, match=named):
        LedgerRoot.of_ledger({**genuine, **change}, "root")
    missing = {k: v for k, v in genuine.items() if k != "endorsement"}
    with pytest.raises(VerificationError, match="missing endorsement"):
        LedgerRoot.of_ledger(missing, "root")


def test_an_embedded_root_of_the_wrong_shape_is_refused_by_name() -> None:
    pem = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    LedgerRoot.of_ledger({"ledger": "embedded", "org": "ProvinceMSP", "public_key": pem}, "root")
    with pytest.raises(VerificationError, match='must be tagged "ledger"'):
        LedgerRoot.of_ledger({"kind": "embedded", "org": "ProvinceMSP", "public_key": pem}, "root")
    with pytest.raises(VerificationError, match="unexpected 'channel'"):
        LedgerRoot.of_ledger({"ledger": "embedded", "org": "ProvinceMSP", "public_key": pem, "channel": "x"}, "root")


class GarbledLedger(EmbeddedLedger):
    """The embedded ledger, its contract's answer to `get_log` garbled on the way."""

    garbled_size = '"size":0.0'

    def _call(self, args: list[str], write: bool) -> str:
        answer = super()._call(args, write)
        if args[0] == "get_log":
            return answer.replace('"size":0', self.garbled_size)
        return answer


@pytest.mark.parametrize(("garbled_size", "named"), [
    ('"size":0.0', "registered log is not in RFC 8785 canonical form"),
    ('"size":"0"', "registered log size must be a non-negative integer, got '0'"),
    ('"size":0,"size":0', "registered log repeats a key: 'size' twice"),
])
def test_a_malformed_ledger_answer_stops_the_round_with_a_clear_error_not_a_crash(
    tmp_path: Path, garbled_size: str, named: str,
) -> None:
    notary = Notary(make_config(tmp_path / "n"))
    try:
        people = Participants(notary)
        batch = [incident(i) for i in range(3)]
        notary.log.submit(Submission("hub-1", batch, people.hub.sign_batch(batch)))
        garbled = GarbledLedger(tmp_path / "garbled", "ProvinceMSP", "ProvinceMSP", b"notary identity")
        garbled.garbled_size = garbled_size
        sealer = Sealer(notary.log, garbled)
        assert sealer.seal() is None
        assert sealer.state.failures == 1
        assert sealer.state.last_error is not None
        assert "the ledger's answer is malformed" in sealer.state.last_error
        assert named in sealer.state.last_error
        assert garbled.anchors(notary.log.log_id) == []
    finally:
        notary.close()


def test_the_manifests_anchor_names_the_ledger_kind_once_in_its_evidence() -> None:
    fields = {"size": 3, "root": "ab" * 32, "tx_id": "t" * 64, "anchored_at": "2026-11-26T01:30:00.123456Z",
              "evidence": _embedded_evidence()}
    anchor = ManifestAnchor.parse(fields, "anchor")
    assert anchor.ledger == "embedded" and anchor.encode() == fields
    with pytest.raises(VerificationError, match="unexpected 'ledger'"):
        ManifestAnchor.parse({**fields, "ledger": "embedded"}, "anchor")


def test_a_root_certificate_of_an_unknown_x509_version_is_refused_by_name() -> None:
    der = x509.load_pem_x509_certificate(self_signed_identity("ca")[0]).public_bytes(serialization.Encoding.DER)
    version = b"\xa0\x03\x02\x01\x02"  # [0] EXPLICIT INTEGER 2: X.509 v3
    assert der.count(version) == 1
    body = base64.encodebytes(der.replace(version, b"\xa0\x03\x02\x01\x06")).decode()
    pem = f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"
    with pytest.raises(VerificationError, match="organizations 'ProvinceMSP' is not a PEM certificate"):
        LedgerRoot.of_ledger({**_fabric_root(), "organizations": {"ProvinceMSP": pem}}, "root")


def _block_fields(ledger: EmbeddedLedger) -> dict[str, Any]:
    _anchored(ledger)
    fields: dict[str, Any] = json.loads(ledger.blocks()[-1][1])
    return fields


@pytest.mark.parametrize(("change", "named"), [
    (lambda b: b.update(ledger="fabric"), 'must be tagged "ledger": "embedded"'),
    (lambda b: b.update(court_summary="fine"), "unexpected 'court_summary'"),
    (lambda b: b.update(number=-1), "number must be a non-negative integer"),
    (lambda b: b.update(previous_hash="0" * 63), "previous_hash must be 64 lower-case hex"),
    (lambda b: b.update(timestamp="yesterday"), "timestamp"),
    (lambda b: b["transaction"].update(writes=["head/province"]), "writes must map keys to SHA-256 values"),
    (lambda b: b["transaction"].update(writes={"head/province": "x"}), r"writes\['head/province'\] must be 64"),
    (lambda b: b["transaction"].update(args=[7]), r"args\[0\] must be text"),
    (lambda b: b["transaction"].update(events=[{"name": "e"}]), r"events\[0\] must have exactly"),
    (lambda b: b["transaction"].pop("creator_id"), "missing creator_id"),
])
def test_an_embedded_block_of_the_wrong_shape_is_refused_by_name(
    ledger: EmbeddedLedger, change: Any, named: str,
) -> None:
    fields = _block_fields(ledger)
    assert EmbeddedBlock.parse(fields, "block").encode() == fields
    change(fields)
    with pytest.raises(VerificationError, match=named):
        EmbeddedBlock.parse(fields, "block")


def test_get_log_serves_the_published_roots_in_the_trust_file_format(tmp_path: Path) -> None:
    notary = Notary(make_config(tmp_path / "n"))
    try:
        with serving(notary) as url:
            client = NotaryClient(url)
            served = client.get("/v1/log")["trust_roots"]
            client.close()
        roots = TrustRoots.parse(canonical_bytes(served), "served roots")
        assert roots.encode() == published_roots(notary.log, notary.ledger).encode()
        assert [r.ledger for r in roots.ledgers] == ["embedded"] and roots.ledgers[0].logs == (notary.log.log_id,)
    finally:
        notary.close()
