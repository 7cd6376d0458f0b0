"""Offline check that a Fabric block holds a valid, majority-endorsed transaction anchoring a checkpoint.

Evidence is what `anchors.fabric.FabricLedger.anchor_evidence` returns: the serialized `common.Block`
(base64), the transaction id, the block number, and the channel's configuration blocks from the genesis
block to the one in force at the anchor's block. Trust roots pin the genesis block (its hash) and, readably,
its membership: each organisation's and each orderer organisation's root CA certificate (PEM) by MSP id,
and the rule (a majority of organisations must endorse).

Membership changes over time, so endorsements are judged against the configuration in force at the
anchor's block, never against today's: the genesis block must list exactly the pinned organisations; each
later configuration block must be signed by an orderer of the membership before it, and its update signed
by the admins of a majority of the organisations (or orderer organisations) whose set it changes; the
anchor block's orderer-signed metadata must name the last of those blocks as its configuration.
The transaction checks follow Fabric's own validation: block data hash (SHA-256 over the concatenated
envelopes), the transactions-filter metadata (validation code per transaction), the creator's signature
over the payload, each endorser's signature over proposal-response-payload || endorser, and the
chaincode's write set and response.
"""

import base64
import binascii
import datetime
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2
from fabric_protos.peer import proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf.message import DecodeError, Message

from verifier.anchor import (
    Anchor,
    LogHead,
    anchor_key,
    check_anchored_note,
    check_anchors,
    check_first_cover,
    head_key,
)
from verifier.errors import AnchorError

M = TypeVar("M", bound=Message)
NODE_OU_ROLES = frozenset({"client", "peer", "admin", "orderer", "member"})


def verify_fabric_anchor(evidence: dict[str, Any], trust_roots: dict[str, Any], log_id: str, size: int,
                         root: bytes, first_cover: int | None = None, note: str | None = None) -> str:
    """Raise AnchorError unless the evidence shows (log_id, size, root) anchored; return a summary.
    With `first_cover`, also that it is the first anchor of the log covering that leaf index."""
    def check(action: proposal_pb2.ChaincodeAction, chaincode: str, tx_id: str) -> None:
        _check_anchor(action, chaincode, tx_id, log_id, size, root, first_cover, note)

    return _guarded(lambda: _verify(evidence, trust_roots, check))[1]


def verify_fabric_head(evidence: dict[str, Any], trust_roots: dict[str, Any], log_id: str,
                       ) -> tuple[LogHead, int, str]:
    """Raise AnchorError unless the evidence shows the channel's endorsed, valid transaction attesting the head
    of `log_id`; return the head, the block number and a summary."""
    heads: list[LogHead] = []

    def check(action: proposal_pb2.ChaincodeAction, chaincode: str, tx_id: str) -> None:
        heads.append(_check_head(action, chaincode, tx_id, log_id))

    number, summary = _guarded(lambda: _verify(evidence, trust_roots, check))
    return heads[0], number, summary


def _guarded(run: Callable[[], tuple[int, str]]) -> tuple[int, str]:
    try:
        return run()
    except AnchorError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        raise AnchorError(f"Fabric anchor evidence is malformed: {type(exc).__name__}: {exc}") from exc


ActionCheck = Callable[[proposal_pb2.ChaincodeAction, str, str], None]


def _verify(evidence: dict[str, Any], roots: dict[str, Any], check: ActionCheck) -> tuple[int, str]:
    """Check the transaction the evidence names is in a block the channel's orderers signed, valid, and
    endorsed by a majority of the members of its time; then run `check` on its chaincode action."""
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
    rule = (roots.get("endorsement") or {}).get("rule", "MAJORITY")
    if rule != "MAJORITY":
        raise AnchorError(f"Fabric trust roots name endorsement rule {rule!r}; this verifier knows MAJORITY")

    block = _decode_block(_field(evidence, "block", str), "block")
    number = int(block.header.number)
    if "block_number" in evidence and evidence["block_number"] != number:
        raise AnchorError(f"evidence names block {evidence['block_number']}, the block's header says {number}")

    config_blocks = _field(evidence, "config_blocks", list)
    membership = membership_at(config_blocks, roots, channel)
    orderer = _check_block_signature(block, membership.orderers)
    last_config = last_config_index(block)
    if last_config != membership.block:
        raise AnchorError(
            f"block {number} says the configuration in force is block {last_config}, the evidence carries the "
            f"configuration up to block {membership.block}"
        )
    ca_certs = membership.organizations

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
    policy_orgs = set(ca_certs)
    required = len(policy_orgs) // 2 + 1
    counted = sorted(endorsers & policy_orgs)
    if len(counted) < required:
        raise AnchorError(
            f"transaction {tx_id} is endorsed by {', '.join(counted) or 'no organisation'} "
            f"({len(counted)} of {len(policy_orgs)} members at block {number}), the policy needs {required}"
        )

    check(cc_action, chaincode, tx_id)
    since = f" members as of config block {membership.block}" if membership.block else ""
    return number, (
        f"Fabric block {number}, tx {tx_id[:8]}…, submitted by {creator_msp}, endorsed by "
        f"{', '.join(counted)} ({len(counted)} of {len(policy_orgs)}{since}), block signed by orderer of {orderer}"
    )


# --- membership over time: the channel configuration in force at a block ------------------------------------

Roots = dict[str, list[x509.Certificate]]


@dataclass(frozen=True)
class Membership:
    """Who was a member from configuration block `block` on: root CAs by MSP id."""

    block: int
    organizations: Roots
    orderers: Roots


def _decode_block(value: object, what: str) -> common_pb2.Block:
    if not isinstance(value, str):
        raise AnchorError(f"{what} must be base64 text, got {type(value).__name__}")
    try:
        raw = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise AnchorError(f"{what} is not base64") from exc
    block = _parse(common_pb2.Block, raw, what)
    data_hash = hashlib.sha256(b"".join(block.data.data)).digest()
    if data_hash != block.header.data_hash:
        raise AnchorError(f"{what} (block {block.header.number}) data hash is {data_hash.hex()}, its header says "
                          f"{bytes(block.header.data_hash).hex()}")
    return block


def _pinned(roots: dict[str, Any], name: str) -> dict[str, bytes]:
    """The pinned root certificates of one kind, as DER, by MSP id."""
    pinned = roots.get(name)
    if not isinstance(pinned, dict) or not pinned:
        raise AnchorError(f"Fabric trust roots name no {name}")
    return {msp: _load_cert(pem, f"pinned root certificate of {msp}").public_bytes(serialization.Encoding.DER)
            for msp, pem in pinned.items()}


def _der_set(roots: Roots) -> dict[str, frozenset[bytes]]:
    return {msp: frozenset(c.public_bytes(serialization.Encoding.DER) for c in certs) for msp, certs in roots.items()}


def membership_at(config_blocks: list[Any], roots: dict[str, Any], channel: str) -> Membership:
    """Walk the configuration blocks from the pinned genesis membership; return the membership after the last."""
    if not config_blocks:
        raise AnchorError("Fabric evidence carries no configuration blocks (the genesis block at least)")
    if len(config_blocks) > 10_000:
        raise AnchorError(f"Fabric evidence carries {len(config_blocks)} configuration blocks, more than 10000")
    genesis = _decode_block(config_blocks[0], "configuration block 0")
    pinned_hash = _root_field(roots, "genesis_block")
    if block_hash(genesis.header).hex() != pinned_hash:
        raise AnchorError(f"the genesis block's hash is {block_hash(genesis.header).hex()}, the trust roots pin "
                          f"{pinned_hash}: another channel, or a rewritten genesis")
    current = genesis_membership(genesis, channel)
    for kind, found in (("organizations", current.organizations), ("orderers", current.orderers)):
        expected = {msp: frozenset([der]) for msp, der in _pinned(roots, kind).items()}
        if _der_set(found) != expected:
            raise AnchorError(
                f"the genesis block's {kind} ({', '.join(sorted(found))}) are not the pinned ones "
                f"({', '.join(sorted(expected))}) with their root certificates"
            )
    for i, value in enumerate(config_blocks[1:], start=1):
        block = _decode_block(value, f"configuration block {i}")
        number = int(block.header.number)
        what = f"configuration block {number}"
        if number <= current.block:
            raise AnchorError(f"{what} does not come after configuration block {current.block}")
        _check_block_signature(block, current.orderers)
        if last_config_index(block) != number:
            raise AnchorError(f"{what} does not name itself as the channel's configuration")
        config, update = _config_of(block, channel, what)
        changed = Membership(number, *_members(config, what))
        _check_update(update, current, changed, channel, what)
        current = changed
    return current


def genesis_membership(genesis: common_pb2.Block, channel: str) -> Membership:
    """The organisations and orderer organisations that the channel's genesis block lists."""
    if genesis.header.number != 0:
        raise AnchorError(f"the first configuration block is block {genesis.header.number}, not the genesis block")
    config, _ = _config_of(genesis, channel, "genesis block")
    return Membership(0, *_members(config, "genesis block"))


def _config_of(block: common_pb2.Block, channel: str, what: str) -> tuple[configtx_pb2.Config, common_pb2.Envelope]:
    if len(block.data.data) != 1:
        raise AnchorError(f"{what} holds {len(block.data.data)} transactions, a configuration block holds one")
    envelope = _parse(common_pb2.Envelope, block.data.data[0], f"{what} envelope")
    payload = _parse(common_pb2.Payload, envelope.payload, f"{what} payload")
    header = _parse(common_pb2.ChannelHeader, payload.header.channel_header, f"{what} channel header")
    if header.type != common_pb2.CONFIG:
        raise AnchorError(f"{what} is not a configuration transaction (type {header.type})")
    if header.channel_id != channel:
        raise AnchorError(f"{what} is for channel {header.channel_id!r}, expected {channel!r}")
    config_envelope = _parse(configtx_pb2.ConfigEnvelope, payload.data, f"{what} configuration")
    return config_envelope.config, config_envelope.last_update


def _members(config: configtx_pb2.Config, what: str) -> tuple[Roots, Roots]:
    groups = config.channel_group.groups
    if "Application" not in groups or "Orderer" not in groups:
        raise AnchorError(f"{what} lacks the Application or Orderer section")
    return (_msp_roots(groups["Application"], f"{what} Application"),
            _msp_roots(groups["Orderer"], f"{what} Orderer"))


def _msp_roots(section: configtx_pb2.ConfigGroup, what: str) -> Roots:
    return {name: _org_roots(org, name, what) for name, org in section.groups.items()}


def _org_roots(org: configtx_pb2.ConfigGroup, name: str, what: str) -> list[x509.Certificate]:
    if "MSP" not in org.values:
        raise AnchorError(f"{what} organisation {name} has no MSP definition")
    msp = _parse(msp_config_pb2.MSPConfig, org.values["MSP"].value, f"{what} MSP of {name}")
    fabric = _parse(msp_config_pb2.FabricMSPConfig, msp.config, f"{what} MSP of {name}")
    if fabric.name != name or not fabric.root_certs:
        raise AnchorError(f"{what} organisation {name} defines MSP {fabric.name!r} without root certificates")
    return [_load_cert(pem, f"root certificate of {name} in {what}") for pem in fabric.root_certs]


def _check_update(update: common_pb2.Envelope, before: Membership, after: Membership, channel: str,
                  what: str) -> None:
    """The update that made `after` from `before` is signed by a majority of the admins of each set it changes."""
    payload = _parse(common_pb2.Payload, update.payload, f"{what} update")
    update_envelope = _parse(configtx_pb2.ConfigUpdateEnvelope, payload.data, f"{what} update envelope")
    config_update = _parse(configtx_pb2.ConfigUpdate, update_envelope.config_update, f"{what} update")
    if config_update.channel_id != channel:
        raise AnchorError(f"{what} updates channel {config_update.channel_id!r}, expected {channel!r}")
    for section, old, new in (("organizations", before.organizations, after.organizations),
                              ("orderers", before.orderers, after.orderers)):
        if _der_set(old) == _der_set(new):
            continue
        signers: set[str] = set()
        problems: list[str] = []
        for i, sig in enumerate(update_envelope.signatures):
            header = _parse(common_pb2.SignatureHeader, sig.signature_header, f"{what} update signature {i}")
            try:
                signers.add(_check_signed(header.creator, sig.signature_header + update_envelope.config_update,
                                          sig.signature, old, None, f"{what} update signature {i}", role="admin"))
            except AnchorError as exc:
                problems.append(str(exc))
        needed = len(old) // 2 + 1
        if len(signers) < needed:
            detail = f" ({'; '.join(problems)})" if problems else ""
            raise AnchorError(
                f"{what} changes the {section} from {', '.join(sorted(old))} to {', '.join(sorted(new))} but its "
                f"update is signed by admins of {', '.join(sorted(signers)) or 'no member'} ({len(signers)} of "
                f"{len(old)}); a majority needs {needed}{detail}"
            )
        _check_update_writes(config_update, section, old, new, what)


def _check_update_writes(update: configtx_pb2.ConfigUpdate, section: str, old: Roots, new: Roots,
                         what: str) -> None:
    """Every organisation the block adds, removes or re-keys is written so by the signed update."""
    group = "Application" if section == "organizations" else "Orderer"
    written = update.write_set.groups.get(group)
    if written is None:
        raise AnchorError(f"{what} changes the {section}, but its signed update does not write them")
    for msp in sorted(set(old) | set(new)):
        if msp in new and msp in old and _der_set({msp: old[msp]}) == _der_set({msp: new[msp]}):
            continue
        if msp not in new:
            if msp in written.groups:
                raise AnchorError(f"{what} removes {msp}, which its signed update keeps")
            continue
        org = written.groups.get(msp)
        if org is None or "MSP" not in org.values:
            raise AnchorError(f"{what} sets {msp}'s root certificates, which its signed update does not write")
        if _der_set({msp: _org_roots(org, msp, f"{what} update")}) != _der_set({msp: new[msp]}):
            raise AnchorError(f"{what} gives {msp} other root certificates than its signed update")


def last_config_index(block: common_pb2.Block) -> int:
    """The configuration block in force, from the orderer-signed metadata (OrdererBlockMetadata)."""
    entries = block.metadata.metadata
    if not entries:
        raise AnchorError(f"block {block.header.number} carries no orderer metadata")
    signatures = _parse(common_pb2.Metadata, entries[common_pb2.SIGNATURES], "block signatures")
    value = _parse(common_pb2.OrdererBlockMetadata, signatures.value, "orderer block metadata")
    if not value.HasField("last_config"):
        raise AnchorError(f"block {block.header.number} does not name the configuration in force")
    return int(value.last_config.index)


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


def block_hash(header: common_pb2.BlockHeader) -> bytes:
    """Fabric's block hash: SHA-256 of the header's DER encoding (it covers the data hash, so all the data)."""
    return hashlib.sha256(block_header_bytes(header)).digest()


def _check_block_signature(block: common_pb2.Block, orderer_cas: Roots) -> str:
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
    except (ValueError, x509.InvalidVersion) as exc:  # InvalidVersion is no ValueError: a flipped version byte
        raise AnchorError(f"{what} is not a PEM certificate: {exc}") from exc


def _check_signed(
    serialized_identity: bytes,
    message: bytes,
    signature: bytes,
    ca_certs: Roots,
    when: datetime.datetime | None,
    who: str,
    role: str | None,
) -> str:
    """Verify `signature` by the identity, whose certificate must chain to its organisation's root."""
    identity = _parse(identities_pb2.SerializedIdentity, serialized_identity, f"identity of {who}")
    cas = ca_certs.get(identity.mspid)
    if not cas:
        raise AnchorError(f"{who} is by {identity.mspid!r}, which is not among the trusted organisations")
    cert = _load_cert(identity.id_bytes, f"certificate of {who} ({identity.mspid})")
    ca = next((c for c in cas if c.subject == cert.issuer), None)
    if ca is None:
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
        if role not in roles:
            held = "/".join(sorted(roles)) or "certificate without a node role"
            article = "an" if role[0] in "aeiou" else "a"
            raise AnchorError(f"{who} ({identity.mspid}) is signed by a {held}, not {article} {role}")
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise AnchorError(f"{who} ({identity.mspid}) does not have an ECDSA key")
    try:
        key.verify(bytes(signature), bytes(message), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise AnchorError(f"signature of {who} ({identity.mspid}) does not verify") from exc
    return str(identity.mspid)


def _result(action: proposal_pb2.ChaincodeAction, tx_id: str, what: str) -> Any:
    if action.response.status != 200:
        raise AnchorError(f"transaction {tx_id} returned status {action.response.status}, not 200")
    try:
        return json.loads(action.response.payload)
    except ValueError as exc:  # bad JSON, bad UTF-8, or an integer too long to convert
        raise AnchorError(f"transaction {tx_id} did not return {what}") from exc


def _written(action: proposal_pb2.ChaincodeAction, chaincode: str, tx_id: str, key: str, what: str) -> Any:
    """The value the transaction writes under `key` in the chaincode's namespace, as JSON."""
    rwset = _parse(rwset_pb2.TxReadWriteSet, action.results, "read-write set")
    for ns in rwset.ns_rwset:
        if ns.namespace != chaincode:
            continue
        kv = _parse(kv_rwset_pb2.KVRWSet, ns.rwset, "key-value write set")
        for write in kv.writes:
            if write.key == key and not write.is_delete:
                try:
                    return json.loads(write.value)
                except ValueError as exc:  # bad JSON, bad UTF-8, or an integer too long to convert
                    raise AnchorError(f"transaction {tx_id} wrote a malformed value under {key}") from exc
    raise AnchorError(f"transaction {tx_id} does not write {what}")


def _check_anchor(
    action: proposal_pb2.ChaincodeAction, chaincode: str, tx_id: str, log_id: str, size: int, root: bytes,
    first_cover: int | None, note: str | None,
) -> None:
    what = f"transaction {tx_id} result"
    check_anchors(Anchor.parse(_result(action, tx_id, "an anchor record"), what), what, log_id, size, root)
    key = anchor_key(log_id, size)
    what = f"anchor written under {key}"
    written = Anchor.parse(_written(action, chaincode, tx_id, key, f"the anchor of {log_id} at size {size}"), what)
    check_anchors(written, what, log_id, size, root)
    check_first_cover(written, first_cover)
    check_anchored_note(written, note, what)


def _check_head(action: proposal_pb2.ChaincodeAction, chaincode: str, tx_id: str, log_id: str) -> LogHead:
    head = LogHead.parse(_result(action, tx_id, "an attested head"), f"transaction {tx_id} result")
    written = _written(action, chaincode, tx_id, head_key(log_id), f"the head of log {log_id}")
    if head.log_id != log_id or written != head.encode() or head.tx_id != tx_id:
        raise AnchorError(f"transaction {tx_id} does not attest the head of log {log_id!r:.60} as it returns")
    return head
