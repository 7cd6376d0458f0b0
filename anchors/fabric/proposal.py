"""Signed proposals and transactions in Fabric's wire format (fabric-protos), as the Gateway expects them."""

import hashlib
import os
import time

from fabric_protos.common import common_pb2
from fabric_protos.peer import chaincode_pb2, proposal_pb2

from anchors.fabric.identity import Identity, Signer

NONCE_SIZE = 24


def new_proposal(
    identity: Identity, channel: str, chaincode: str, function: str, args: list[bytes]
) -> tuple[str, proposal_pb2.Proposal]:
    """A chaincode invocation proposal and its transaction id (SHA-256 of nonce || creator)."""
    creator = identity.serialize()
    nonce = os.urandom(NONCE_SIZE)
    tx_id = hashlib.sha256(nonce + creator).hexdigest()
    now = time.time_ns()
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        channel_id=channel,
        tx_id=tx_id,
        extension=proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode)
        ).SerializeToString(),
    )
    channel_header.timestamp.seconds, channel_header.timestamp.nanos = divmod(now, 1_000_000_000)
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(creator=creator, nonce=nonce).SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            type=chaincode_pb2.ChaincodeSpec.UNDEFINED,
            chaincode_id=chaincode_pb2.ChaincodeID(name=chaincode),
            input=chaincode_pb2.ChaincodeInput(args=[function.encode(), *args]),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString())
    proposal = proposal_pb2.Proposal(header=header.SerializeToString(), payload=payload.SerializeToString())
    return tx_id, proposal


def sign_proposal(proposal: proposal_pb2.Proposal, signer: Signer) -> proposal_pb2.SignedProposal:
    raw = proposal.SerializeToString()
    return proposal_pb2.SignedProposal(proposal_bytes=raw, signature=signer.sign(raw))
