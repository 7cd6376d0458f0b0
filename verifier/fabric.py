"""Offline check that a Fabric block holds a valid, majority-endorsed transaction anchoring a checkpoint.

Evidence is what `anchors.fabric.FabricLedger.anchor_evidence` returns: the serialized `common.Block`
(base64), the transaction id and the block number. Trust roots name each organisation's root CA
certificate (PEM) by MSP id and the endorsement rule (which organisations, how many must endorse).
The checks follow Fabric's own validation: block data hash (SHA-256 over the concatenated envelopes),
the transactions-filter metadata (validation code per transaction), the creator's signature over the
payload, each endorser's signature over proposal-response-payload || endorser, and the chaincode's
write set and response.
"""

import base64
import binascii
import datetime
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf.message import DecodeError, Message

from verifier.anchor import check_first_cover
from verifier.errors import AnchorError

M = TypeVar("M", bound=Message)
NODE_OU_ROLES = frozenset({"client", "peer", "admin", "orderer", "member"})


def verify_fabric_anchor(evidence: dict[str, Any], trust_roots: dict[str, Any], log_id: str, size: int,
                         root: bytes, first_cover: int | None = None) -> str:
    """Raise AnchorError unless the evidence shows (log_id, size, root) anchored; return a summary.
    With `first_cover`, also that it is the first anchor of the log covering that leaf index."""
    try:
        return _verify(evidence, trust_roots, log_id, size, root, first_cover)
    except AnchorError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise AnchorError(f"Fabric anchor evidence is malformed: {type(exc).__name__}: {exc}") from exc


def _verify(evidence: dict[str, Any], roots: dict[str, Any], log_id: str, size: int, root: bytes,
            first_cover: int | None) -> str:
    if not isinstance(evidence, dict) or evidence.get("ledger") != "fabric":
        raise AnchorError(f"expected Fabric anchor evidence (ledger 'fabric'), got {_kind(evidence)}")
    if not isinstance(roots, dict) or roots.get("ledger") != "fabric":
        raise AnchorError(f"expected Fabric trust roots (ledger 'fabric'), got {_kind(roots)}")
    if not isinstance(roots.get("organizations"), dict):
        raise AnchorError("Fabric trust roots must map organisation MSP ids to root certificates")
    tx_id = _field(evidence, "tx_id", str)
    # Channel and chaincode come from the trust roots only: the evidence must not name its own context.
    channel = _root_field(roots, "channel")
    chaincode = _root_field(roots, "chaincode")
    ca_certs = {msp: _load_cert(pem, f"root certificate of {msp}") for msp, pem in roots["organizations"].items()}

    try:
        raw_block = base64.b64decode(_field(evidence, "block", str), validate=True)
    except binascii.Error as exc:
        raise AnchorError("Fabric evidence 'block' is not base64") from exc
    block = _parse(common_pb2.Block, raw_block, "block")
    number = int(block.header.number)
    if "block_number" in evidence and evidence["block_number"] != number:
        raise AnchorError(f"evidence names block {evidence['block_number']}, the block's header says {number}")
    data_hash = hashlib.sha256(b"".join(block.data.data)).digest()
    if data_hash != block.header.data_hash:
        raise AnchorError(
            f"block {number} data hash is {data_hash.hex()}, its header says {bytes(block.header.data_hash).hex()}"
        )

    orderer_roots = roots.get("orderers")
    if not isinstance(orderer_roots, dict) or not orderer_roots:
        raise AnchorError("Fabric trust roots name no orderer organisation, so no block signature can be checked")
    orderer_cas = {m: _load_cert(pem, f"orderer root certificate of {m}") for m, pem in orderer_roots.items()}
    orderer = _check_block_signature(block, orderer_cas)

    index, envelope, payload, channel_header = _find_transaction(block, tx_id)
    if channel_header.channel_id != channel:
        raise AnchorError(f"transaction {tx_id} is on channel {channel_header.channel_id!r}, expected {channel!r}")
    if channel_header.type != common_pb2.ENDORSER_TRANSACTION:
        raise AnchorError(f"transaction {tx_id} is of type {channel_header.type}, not an endorser transaction")
    flags = _tx_filter(block)
    if index >= len(flags):
        raise AnchorError(f"block {number} has no validation flag for transaction {index}")
    if flags[index] != transaction_pb2.VALID:
        raise AnchorError(f"transaction {tx_id} is marked {_code_name(flags[index])} in block {number}, not VALID")
    when = channel_header.timestamp.ToDatetime(tzinfo=datetime.UTC)

    sig_header = _parse(common_pb2.SignatureHeader, payload.header.signature_header, "signature header")
    if hashlib.sha256(sig_header.nonce + sig_header.creator).hexdigest() != tx_id:
        raise AnchorError(f"transaction id {tx_id} is not SHA-256(nonce || creator) of its header")
    creator_msp = _check_signed(sig_header.creator, envelope.payload, envelope.signature, ca_certs, when,
                                "transaction creator", role=None)

    transaction = _parse(transaction_pb2.Transaction, payload.data, "transaction")
    if not transaction.actions:
        raise AnchorError(f"transaction {tx_id} has no actions")
    action_payload = _parse(transaction_pb2.ChaincodeActionPayload, transaction.actions[0].payload, "action")
    endorsed = action_payload.action
    response_payload = _parse(
        proposal_response_pb2.ProposalResponsePayload, endorsed.proposal_response_payload, "proposal response"
    )
    cc_action = _parse(proposal_pb2.ChaincodeAction, response_payload.extension, "chaincode action")
    if cc_action.chaincode_id.name != chaincode:
        raise AnchorError(f"transaction {tx_id} ran chaincode {cc_action.chaincode_id.name!r}, not {chaincode!r}")

    endorsers: set[str] = set()
    for i, endorsement in enumerate(endorsed.endorsements):
        msp = _check_signed(
            endorsement.endorser,
            endorsed.proposal_response_payload + endorsement.endorser,
            endorsement.signature,
            ca_certs,
            when,
            f"endorsement {i}",
            role="peer",
        )
        endorsers.add(msp)
    policy = roots.get("endorsement") or {}
    policy_orgs = set(policy.get("organizations") or ca_certs)
    required = int(policy.get("required") or len(policy_orgs) // 2 + 1)
    counted = sorted(endorsers & policy_orgs)
    if len(counted) < required:
        raise AnchorError(
            f"transaction {tx_id} is endorsed by {', '.join(counted) or 'no organisation'} "
            f"({len(counted)} of {len(policy_orgs)}), the policy needs {required}"
        )

    _check_anchor(cc_action, chaincode, tx_id, log_id, size, root, first_cover)
    return (
        f"Fabric block {number}, tx {tx_id[:8]}…, submitted by {creator_msp}, endorsed by "
        f"{', '.join(counted)} ({len(counted)} of {len(policy_orgs)}), block signed by orderer of {orderer}"
    )


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return f"ledger {value.get('ledger')!r}"
    return type(value).__name__


def _root_field(roots: dict[str, Any], name: str) -> str:
    value = roots.get(name)
    if not isinstance(value, str) or not value:
        raise AnchorError(f"Fabric trust roots must name the {name}, got {type(value).__name__}")
    return value


def _field(evidence: dict[str, Any], name: str, kind: type) -> Any:
    value = evidence.get(name)
    if not isinstance(value, kind):
        raise AnchorError(f"Fabric evidence field {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _parse(cls: Callable[[], M], data: bytes, what: str) -> M:
    message = cls()
    try:
        message.ParseFromString(bytes(data))
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise AnchorError(f"cannot decode the {what}: {exc}") from exc
    return message


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(body)) + body


def block_header_bytes(header: common_pb2.BlockHeader) -> bytes:
    """ASN.1 DER of (number, previous_hash, data_hash): what orderers sign (Fabric's BlockHeaderBytes)."""
    number = int(header.number)
    integer = number.to_bytes(number.bit_length() // 8 + 1, "big")
    return _der(
        0x30,
        _der(0x02, integer) + _der(0x04, bytes(header.previous_hash)) + _der(0x04, bytes(header.data_hash)),
    )


def _check_block_signature(block: common_pb2.Block, orderer_cas: dict[str, x509.Certificate]) -> str:
    """At least one orderer of a trusted orderer organisation signed the block header; return its MSP id."""
    entries = block.metadata.metadata
    if not entries:
        raise AnchorError(f"block {block.header.number} carries no orderer signatures")
    metadata = _parse(common_pb2.Metadata, entries[common_pb2.SIGNATURES], "block signatures")
    header_bytes = block_header_bytes(block.header)
    problems: list[str] = []
    for i, sig in enumerate(metadata.signatures):
        sig_header = _parse(common_pb2.SignatureHeader, sig.signature_header, f"orderer signature header {i}")
        try:
            return _check_signed(
                sig_header.creator,
                metadata.value + sig.signature_header + header_bytes,
                sig.signature,
                orderer_cas,
                None,
                f"block signature {i}",
                role="orderer",
            )
        except AnchorError as exc:
            problems.append(str(exc))
    raise AnchorError(
        f"block {block.header.number} is not signed by a trusted orderer: {'; '.join(problems) or 'no signatures'}"
    )


def _find_transaction(
    block: common_pb2.Block, tx_id: str
) -> tuple[int, common_pb2.Envelope, common_pb2.Payload, common_pb2.ChannelHeader]:
    for index, raw in enumerate(block.data.data):
        envelope = _parse(common_pb2.Envelope, raw, f"envelope {index}")
        payload = _parse(common_pb2.Payload, envelope.payload, f"payload of envelope {index}")
        header = _parse(common_pb2.ChannelHeader, payload.header.channel_header, f"channel header {index}")
        if header.tx_id == tx_id:
            return index, envelope, payload, header
    raise AnchorError(f"block {block.header.number} does not contain transaction {tx_id}")


def _tx_filter(block: common_pb2.Block) -> bytes:
    entries = block.metadata.metadata
    if len(entries) <= common_pb2.TRANSACTIONS_FILTER:
        raise AnchorError(f"block {block.header.number} has no transactions-filter metadata")
    return bytes(entries[common_pb2.TRANSACTIONS_FILTER])


def _code_name(code: int) -> str:
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return f"code {code}"


def _load_cert(pem: object, what: str) -> x509.Certificate:
    if not isinstance(pem, str | bytes):
        raise AnchorError(f"{what} must be PEM text, got {type(pem).__name__}")
    try:
        return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise AnchorError(f"{what} is not a PEM certificate: {exc}") from exc


def _check_signed(
    serialized_identity: bytes,
    message: bytes,
    signature: bytes,
    ca_certs: dict[str, x509.Certificate],
    when: datetime.datetime | None,
    who: str,
    role: str | None,
) -> str:
    """Verify `signature` by the identity, whose certificate must chain to its organisation's root."""
    identity = _parse(identities_pb2.SerializedIdentity, serialized_identity, f"identity of {who}")
    ca = ca_certs.get(identity.mspid)
    if ca is None:
        raise AnchorError(f"{who} is by {identity.mspid!r}, which is not among the trusted organisations")
    cert = _load_cert(identity.id_bytes, f"certificate of {who} ({identity.mspid})")
    if cert.issuer != ca.subject:
        raise AnchorError(f"certificate of {who} ({identity.mspid}) is not issued by that organisation's root CA")
    try:
        ca_key = ca.public_key()
        if not isinstance(ca_key, ec.EllipticCurvePublicKey) or cert.signature_hash_algorithm is None:
            raise AnchorError(f"root CA of {identity.mspid} is not an ECDSA key")
        ca_key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature as exc:
        raise AnchorError(f"certificate of {who} ({identity.mspid}) is not signed by its root CA") from exc
    if when is not None and not cert.not_valid_before_utc <= when <= cert.not_valid_after_utc:
        raise AnchorError(f"certificate of {who} ({identity.mspid}) was not valid at {when.isoformat()}")
    if role is not None:
        ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
        roles = {str(a.value).lower() for a in ous} & NODE_OU_ROLES
        if roles and role not in roles:
            raise AnchorError(f"{who} ({identity.mspid}) is signed by a {'/'.join(sorted(roles))}, not a {role}")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AnchorError(f"{who} ({identity.mspid}) does not have an ECDSA key")
    try:
        key.verify(bytes(signature), bytes(message), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise AnchorError(f"signature of {who} ({identity.mspid}) does not verify") from exc
    return str(identity.mspid)


def _check_anchor(
    action: proposal_pb2.ChaincodeAction, chaincode: str, tx_id: str, log_id: str, size: int, root: bytes,
    first_cover: int | None,
) -> None:
    if action.response.status != 200:
        raise AnchorError(f"transaction {tx_id} returned status {action.response.status}, not 200")
    try:
        result = json.loads(action.response.payload)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnchorError(f"transaction {tx_id} did not return an anchor record") from exc
    _match_anchor(result, f"transaction {tx_id} result", log_id, size, root)
    key = f"anchor/{log_id}/{size:020d}"
    rwset = _parse(rwset_pb2.TxReadWriteSet, action.results, "read-write set")
    for ns in rwset.ns_rwset:
        if ns.namespace != chaincode:
            continue
        kv = _parse(kv_rwset_pb2.KVRWSet, ns.rwset, "key-value write set")
        for write in kv.writes:
            if write.key == key and not write.is_delete:
                try:
                    written = json.loads(write.value)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise AnchorError(f"transaction {tx_id} wrote a malformed anchor under {key}") from exc
                _match_anchor(written, f"anchor written under {key}", log_id, size, root)
                check_first_cover(written, first_cover)
                return
    raise AnchorError(f"transaction {tx_id} does not write the anchor of {log_id} at size {size}")


def _match_anchor(anchor: object, what: str, log_id: str, size: int, root: bytes) -> None:
    if not isinstance(anchor, dict):
        raise AnchorError(f"{what} is not an anchor record")
    found = (anchor.get("log_id"), anchor.get("size"), anchor.get("root"))
    expected = (log_id, size, root.hex())
    if found != expected:
        raise AnchorError(
            f"{what} is log {found[0]!r} size {found[1]!r} root {found[2]!r}, "
            f"expected log {log_id!r} size {size} root {root.hex()}"
        )
