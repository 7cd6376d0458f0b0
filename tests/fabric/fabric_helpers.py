"""Checkpoints, consistency proofs and identities for Fabric tests, made with verifier/ and cryptography."""

import datetime
import hashlib
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from fabric_protos.common import common_pb2, configtx_pb2
from fabric_protos.ledger.rwset import rwset_pb2
from fabric_protos.ledger.rwset.kvrwset import kv_rwset_pb2
from fabric_protos.msp import identities_pb2, msp_config_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2

from anchors.fabric.identity import Identity, Signer
from anchors.fabric.proposal import new_proposal
from verifier.anchor import Anchor, LogHead, anchor_key, head_key
from verifier.canonical import canonical_bytes
from verifier.fabric import block_header_bytes
from verifier.merkle import leaf_hash, node_hash, root_of_hashes
from verifier.note import Checkpoint, NoteKey, signature_line


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def consistency_proof(leaves: list[bytes], m: int) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 PROOF(m, D[n]) over raw entries."""
    hashes_ = [leaf_hash(e) for e in leaves]

    def subproof(m: int, d: list[bytes], complete: bool) -> list[bytes]:
        n = len(d)
        if m == n:
            return [] if complete else [root_of_hashes(d)]
        k = _split(n)
        if m <= k:
            return [*subproof(m, d[:k], complete), root_of_hashes(d[k:])]
        return [*subproof(m - k, d[k:], False), root_of_hashes(d[:k])]

    if m == 0 or m == len(leaves):
        return []
    return subproof(m, hashes_, True)


@dataclass
class Notary:
    """A log with an Ed25519 checkpoint key, growing one entry at a time."""

    origin: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    entries: list[bytes] = field(default_factory=list)

    @property
    def public_key(self) -> bytes:
        return self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def vkey(self) -> str:
        return NoteKey(self.origin, self.public_key).vkey()

    def append(self, *entries: bytes) -> None:
        self.entries.extend(entries)

    def root(self, size: int | None = None) -> bytes:
        n = len(self.entries) if size is None else size
        return root_of_hashes([leaf_hash(e) for e in self.entries[:n]])

    def checkpoint(self, size: int | None = None, root: bytes | None = None) -> str:
        n = len(self.entries) if size is None else size
        body = Checkpoint(self.origin, n, root if root is not None else self.root(n)).body()
        sig = signature_line(self.origin, self.public_key, self.key.sign(body.encode()))
        return body + "\n" + sig

    def proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        n = len(self.entries) if new_size is None else new_size
        return consistency_proof(self.entries[:n], old_size)


def self_signed_identity(common_name: str = "user1", ou: str = "client") -> tuple[bytes, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), key


__all__ = ["Notary", "consistency_proof", "node_hash", "self_signed_identity"]


# --- A synthetic Fabric block, assembled the way peers and orderers assemble one ------------------------


@dataclass
class OrgCA:
    msp_id: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, msp_id: str) -> "OrgCA":
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ca.{msp_id.lower()}")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(msp_id, key, cert)

    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, name: str, ou: str) -> tuple[Identity, Signer]:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou), x509.NameAttribute(NameOID.COMMON_NAME, name)]
        )
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        return Identity(self.msp_id, cert.public_bytes(serialization.Encoding.PEM)), Signer(key)


def anchor_block(
    creator: tuple[Identity, Signer],
    endorsers: list[tuple[Identity, Signer]],
    orderer: tuple[Identity, Signer] | None,
    log_id: str,
    size: int,
    root: bytes,
    number: int = 7,
    channel: str = "evidence",
    valid: bool = True,
    last_config: int = 0,
    head: str | None = None,
) -> tuple[bytes, str]:
    """A serialized block whose second transaction anchors (log_id, size, root), or with `head` (a time) attests
    that as the log's head; returns it and the tx id."""
    identity, signer = creator
    function = "attest_log_head" if head is not None else "anchor_checkpoint"
    tx_id, proposal = new_proposal(identity, channel, "evidence", f"evidence:{function}", [b"x"])
    if head is not None:
        key, value = head_key(log_id), canonical_bytes(LogHead(log_id, size, root, tx_id, head).encode())
    else:
        anchor = Anchor(log_id, size, root, f"checkpoint of {log_id}", 0, tx_id, "2026-11-27T09:00:00.000000Z")
        key, value = anchor_key(log_id, size), canonical_bytes(anchor.encode())
    kv = kv_rwset_pb2.KVRWSet(writes=[kv_rwset_pb2.KVWrite(key=key, value=value)])
    rwset = rwset_pb2.TxReadWriteSet(
        data_model=rwset_pb2.TxReadWriteSet.KV,
        ns_rwset=[rwset_pb2.NsReadWriteSet(namespace="evidence", rwset=kv.SerializeToString())],
    )
    action = proposal_pb2.ChaincodeAction(
        results=rwset.SerializeToString(),
        response=proposal_response_pb2.Response(status=200, payload=value),
        chaincode_id=chaincode_pb2.ChaincodeID(name="evidence", version="1"),
    )
    prp = proposal_response_pb2.ProposalResponsePayload(
        proposal_hash=hashlib.sha256(proposal.header + proposal.payload).digest(),
        extension=action.SerializeToString(),
    ).SerializeToString()
    endorsements = []
    for e_identity, e_signer in endorsers:
        endorser = e_identity.serialize()
        signature = e_signer.sign(prp + endorser)
        endorsements.append(proposal_response_pb2.Endorsement(endorser=endorser, signature=signature))
    cap = transaction_pb2.ChaincodeActionPayload(
        chaincode_proposal_payload=proposal.payload,
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=prp, endorsements=endorsements),
    )
    header = common_pb2.Header.FromString(proposal.header)
    tx = transaction_pb2.Transaction(
        actions=[transaction_pb2.TransactionAction(header=header.signature_header, payload=cap.SerializeToString())]
    )
    payload = common_pb2.Payload(header=header, data=tx.SerializeToString()).SerializeToString()
    envelope = common_pb2.Envelope(payload=payload, signature=signer.sign(payload)).SerializeToString()
    _other_id, other = new_proposal(identity, channel, "evidence", "evidence:get_log", [b"y"])
    other_payload = common_pb2.Payload(header=common_pb2.Header.FromString(other.header)).SerializeToString()
    other_env = common_pb2.Envelope(payload=other_payload, signature=signer.sign(other_payload)).SerializeToString()
    data = [other_env, envelope]
    block = common_pb2.Block()
    block.header.number = number
    block.header.previous_hash = hashlib.sha256(b"previous").digest()
    block.header.data_hash = hashlib.sha256(b"".join(data)).digest()
    block.data.data.extend(data)
    flags = bytes([transaction_pb2.VALID, transaction_pb2.VALID if valid else transaction_pb2.MVCC_READ_CONFLICT])
    _seal(block, orderer, last_config, flags)
    return block.SerializeToString(), tx_id


def _seal(block: common_pb2.Block, orderer: tuple[Identity, Signer] | None, last_config: int, flags: bytes) -> None:
    """The orderer's metadata: the configuration in force, signed with the header as Fabric's orderers sign it."""
    value = common_pb2.OrdererBlockMetadata(last_config=common_pb2.LastConfig(index=last_config))
    signatures = common_pb2.Metadata(value=value.SerializeToString())
    if orderer is not None:
        o_identity, o_signer = orderer
        sig_header = common_pb2.SignatureHeader(creator=o_identity.serialize(), nonce=b"n" * 24).SerializeToString()
        signed = signatures.value + sig_header + block_header_bytes(block.header)
        signatures.signatures.add(signature_header=sig_header, signature=o_signer.sign(signed))
    block.metadata.metadata.extend([signatures.SerializeToString(), b"", flags, b"", b""])


def msp_group(ca: "OrgCA") -> configtx_pb2.ConfigGroup:
    fabric = msp_config_pb2.FabricMSPConfig(name=ca.msp_id, root_certs=[ca.pem().encode()])
    group = configtx_pb2.ConfigGroup(mod_policy="Admins")
    group.values["MSP"].value = msp_config_pb2.MSPConfig(type=0, config=fabric.SerializeToString()).SerializeToString()
    return group


def config_block(
    number: int,
    orgs: list["OrgCA"],
    orderer_orgs: list["OrgCA"],
    signers: list[tuple[Identity, Signer]] = (),  # type: ignore[assignment]
    orderer: tuple[Identity, Signer] | None = None,
    written: list["OrgCA"] | None = None,
    channel: str = "evidence",
) -> bytes:
    """A configuration block of `orgs` and `orderer_orgs`; its update writes `written` (default: every
    organisation, with its MSP) and carries a signature of each of `signers` over the update."""
    config = configtx_pb2.Config(sequence=number)
    for section, members in (("Application", orgs), ("Orderer", orderer_orgs)):
        for ca in members:
            config.channel_group.groups[section].groups[ca.msp_id].CopyFrom(msp_group(ca))
    update = configtx_pb2.ConfigUpdate(channel_id=channel)
    for ca in orgs:
        target = update.write_set.groups["Application"].groups[ca.msp_id]
        if written is None or ca in written:
            target.CopyFrom(msp_group(ca))
    raw_update = update.SerializeToString()
    envelope = configtx_pb2.ConfigUpdateEnvelope(config_update=raw_update)
    for identity, signer in signers:
        header = common_pb2.SignatureHeader(creator=identity.serialize(), nonce=b"s" * 24).SerializeToString()
        envelope.signatures.add(signature_header=header, signature=signer.sign(header + raw_update))
    last_update = common_pb2.Envelope(payload=common_pb2.Payload(
        header=common_pb2.Header(channel_header=common_pb2.ChannelHeader(
            type=common_pb2.CONFIG_UPDATE, channel_id=channel).SerializeToString()),
        data=envelope.SerializeToString()).SerializeToString())
    payload = common_pb2.Payload(
        header=common_pb2.Header(channel_header=common_pb2.ChannelHeader(
            type=common_pb2.CONFIG, channel_id=channel).SerializeToString()),
        data=configtx_pb2.ConfigEnvelope(config=config, last_update=last_update).SerializeToString())
    data = [common_pb2.Envelope(payload=payload.SerializeToString()).SerializeToString()]
    block = common_pb2.Block()
    block.header.number = number
    block.header.data_hash = hashlib.sha256(b"".join(data)).digest()
    block.data.data.extend(data)
    _seal(block, orderer, number, bytes([transaction_pb2.VALID]))
    serialized: bytes = block.SerializeToString()
    return serialized


def serialized_identity(identity: Identity) -> identities_pb2.SerializedIdentity:
    return identities_pb2.SerializedIdentity.FromString(identity.serialize())
