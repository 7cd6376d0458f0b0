"""The Gateway client against a stand-in Gateway service over TLS (no Fabric needed).

The stand-in checks every signature the client makes (low-S ECDSA by the client's certificate) and
answers as a Fabric gateway does: a prepared envelope, commit statuses, and ABORTED with per-endorser
details when the contract refuses.
"""

import datetime
import ipaddress
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
from fabric_helpers import self_signed_identity
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    proposal_pb2,
    proposal_response_pb2,
    transaction_pb2,
)

from anchors.fabric import Gateway, Identity, Signer, Timeouts
from anchors.fabric.gateway import _RPC_STATUS
from anchors.fabric.identity import P256_ORDER
from anchors.ledger import LedgerRefused, LedgerUnavailable


def _check_signature(creator: bytes, message: bytes, signature: bytes) -> None:
    identity = identities_pb2.SerializedIdentity.FromString(creator)
    key = x509.load_pem_x509_certificate(identity.id_bytes).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    assert decode_dss_signature(signature)[1] <= P256_ORDER // 2, "signature is not low-S"


def _function_of(proposal: proposal_pb2.Proposal) -> tuple[str, list[bytes]]:
    payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
    args = list(spec.chaincode_spec.input.args)
    return args[0].decode(), args[1:]


def _prepared(proposal: proposal_pb2.Proposal, result: bytes) -> common_pb2.Envelope:
    action = proposal_pb2.ChaincodeAction(response=proposal_response_pb2.Response(status=200, payload=result))
    prp = proposal_response_pb2.ProposalResponsePayload(extension=action.SerializeToString())
    cap = transaction_pb2.ChaincodeActionPayload(
        action=transaction_pb2.ChaincodeEndorsedAction(proposal_response_payload=prp.SerializeToString())
    )
    tx = transaction_pb2.Transaction(actions=[transaction_pb2.TransactionAction(payload=cap.SerializeToString())])
    header = common_pb2.Header.FromString(proposal.header)
    payload = common_pb2.Payload(header=header, data=tx.SerializeToString())
    return common_pb2.Envelope(payload=payload.SerializeToString())


def _abort_with_details(context: grpc.ServicerContext, code: grpc.StatusCode, message: str, detail: str) -> None:
    status = _RPC_STATUS(code=code.value[0], message=message)
    item = status.details.add()
    item.type_url = "type.googleapis.com/gateway.ErrorDetail"
    detail_msg = gateway_pb2.ErrorDetail(address="127.0.0.1:7051", msp_id="JinanMSP", message=detail)
    item.value = detail_msg.SerializeToString()
    context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),))
    context.abort(code, message)


@dataclass
class StandInGateway(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]
    conflicts_left: int = 0
    unavailable_left: int = 0
    lagging_left: int = 0
    endorsed: int = 0
    submitted: list[str] = field(default_factory=list)
    envelopes: list[bytes] = field(default_factory=list)
    commit_calls: int = 0

    def Endorse(self, request, context):
        signed = request.proposed_transaction
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        creator = common_pb2.SignatureHeader.FromString(header.signature_header).creator
        _check_signature(creator, signed.proposal_bytes, signed.signature)
        function, args = _function_of(proposal)
        self.endorsed += 1
        if self.lagging_left:  # another organisation's peer has not committed the log's registration yet
            self.lagging_left -= 1
            _abort_with_details(context, grpc.StatusCode.ABORTED,
                                "failed to collect enough transaction endorsements, see attached details",
                                "chaincode response 500, log x is not registered")
        if function == "evidence:refuse":
            _abort_with_details(context, grpc.StatusCode.ABORTED, "failed to endorse transaction, see attached details",
                                "chaincode response 500, log x belongs to ProvinceMSP identity 1234…")
        result = b"|".join([function.encode(), *args])
        return gateway_pb2.EndorseResponse(prepared_transaction=_prepared(proposal, result))

    def Submit(self, request, context):
        env = request.prepared_transaction
        payload = common_pb2.Payload.FromString(env.payload)
        creator = common_pb2.SignatureHeader.FromString(payload.header.signature_header).creator
        _check_signature(creator, env.payload, env.signature)
        self.envelopes.append(env.SerializeToString())
        if self.unavailable_left:  # as while Raft elects a leader
            self.unavailable_left -= 1
            _abort_with_details(context, grpc.StatusCode.UNAVAILABLE, "failed to send transaction to orderer",
                                "rpc error: code = Unavailable desc = no Raft leader")
        self.submitted.append(request.transaction_id)
        return gateway_pb2.SubmitResponse()

    def CommitStatus(self, request, context):
        inner = gateway_pb2.CommitStatusRequest.FromString(request.request)
        _check_signature(inner.identity, request.request, request.signature)
        self.commit_calls += 1
        if self.conflicts_left:
            self.conflicts_left -= 1
            return gateway_pb2.CommitStatusResponse(result=transaction_pb2.MVCC_READ_CONFLICT, block_number=4)
        return gateway_pb2.CommitStatusResponse(result=transaction_pb2.VALID, block_number=5)

    def Evaluate(self, request, context):
        proposal = proposal_pb2.Proposal.FromString(request.proposed_transaction.proposal_bytes)
        function, args = _function_of(proposal)
        if function == "evidence:slow":
            context.abort(grpc.StatusCode.UNAVAILABLE, "no peers available")
        return gateway_pb2.EvaluateResponse(result=proposal_response_pb2.Response(status=200, payload=args[0]))


def _tls_pair() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer0.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


_SERVER_CERTS: dict[str, bytes] = {}


def gw_cert(gw: Gateway) -> bytes:
    return _SERVER_CERTS[gw.endpoint]


@pytest.fixture()
def gateway() -> Iterator[tuple[Gateway, StandInGateway]]:
    cert, key = _tls_pair()
    service = StandInGateway()
    server = grpc.server(futures.ThreadPoolExecutor(4))
    gateway_pb2_grpc.add_GatewayServicer_to_server(service, server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key, cert)]))
    server.start()
    client_cert, client_key = self_signed_identity()
    gw = Gateway(f"127.0.0.1:{port}", cert, Identity("ProvinceMSP", client_cert), Signer(client_key))
    _SERVER_CERTS[gw.endpoint] = cert
    try:
        yield gw, service
    finally:
        gw.close()
        server.stop(0)


def test_submit_signs_endorses_submits_and_waits_for_commit(gateway: tuple[Gateway, StandInGateway]) -> None:
    gw, service = gateway
    contract = gw.get_network("evidence").get_contract("evidence", "evidence")
    done = contract.submit("anchor_checkpoint", "log-a", b"\x00raw")
    assert done.result == b"evidence:anchor_checkpoint|log-a|\x00raw"
    assert done.block_number == 5 and service.submitted == [done.tx_id]


def test_mvcc_conflict_is_retried_with_a_new_transaction(gateway: tuple[Gateway, StandInGateway]) -> None:
    gw, service = gateway
    service.conflicts_left = 2
    contract = gw.get_network("evidence").get_contract("evidence", "evidence")
    contract.submit_transaction("register_log", "x")
    assert len(set(service.submitted)) == 3 and service.commit_calls == 3


def test_contract_refusal_is_ledger_refused_with_the_contracts_words(gateway: tuple[Gateway, StandInGateway]) -> None:
    gw, _ = gateway
    contract = gw.get_network("evidence").get_contract("evidence", "evidence")
    with pytest.raises(LedgerRefused, match="log x belongs to ProvinceMSP"):
        contract.submit_transaction("refuse")


def test_evaluate_returns_payload_and_unavailable_is_ledger_unavailable(
    gateway: tuple[Gateway, StandInGateway],
) -> None:
    gw, _ = gateway
    contract = gw.get_network("evidence").get_contract("evidence", "evidence")
    assert contract.evaluate_transaction("get_log", "abc") == b"abc"
    with pytest.raises(LedgerUnavailable, match="UNAVAILABLE"):
        contract.evaluate_transaction("slow", "x")


def test_unreachable_peer_is_ledger_unavailable() -> None:
    cert, _ = _tls_pair()
    client_cert, client_key = self_signed_identity()
    gw = Gateway("127.0.0.1:1", cert, Identity("ProvinceMSP", client_cert), Signer(client_key))
    try:
        with pytest.raises(LedgerUnavailable):
            gw.get_network("evidence").get_contract("evidence").evaluate_transaction("get_log", "x")
    finally:
        gw.close()


def test_unavailable_orderers_get_the_same_signed_envelope_again(gateway: tuple[Gateway, StandInGateway]) -> None:
    gw, service = gateway
    service.unavailable_left = 3
    contract = gw.get_network("evidence").get_contract("evidence", "evidence")
    done = contract.submit("anchor_checkpoint", "log-a")
    assert service.submitted == [done.tx_id]
    assert len(service.envelopes) == 4 and len(set(service.envelopes)) == 1  # one envelope, sent four times
    assert service.commit_calls == 1


def test_resubmission_is_bounded_in_time(gateway: tuple[Gateway, StandInGateway]) -> None:
    gw, service = gateway
    service.unavailable_left = 1000
    slow = Gateway(gw.endpoint, gw_cert(gw), gw.identity, gw.signer, timeouts=Timeouts(resubmit=1.5))
    try:
        started = time.monotonic()
        with pytest.raises(LedgerUnavailable, match=r"sent \d+ times over 2 s"):
            slow.get_network("evidence").get_contract("evidence").submit("anchor_checkpoint", "log-a")
        assert time.monotonic() - started < 4
        assert len(set(service.envelopes)) == 1 and service.commit_calls == 0
    finally:
        slow.close()


def test_a_lagging_peer_of_another_organisation_is_waited_for(gateway: tuple[Gateway, StandInGateway]) -> None:
    gw, service = gateway
    service.lagging_left = 2
    contract = gw.get_network("evidence").get_contract("evidence", "evidence")
    done = contract.submit("anchor_checkpoint", "log-x")
    assert service.endorsed == 3 and service.submitted == [done.tx_id]


def test_a_peer_that_stays_behind_is_unavailable_not_refused(gateway: tuple[Gateway, StandInGateway]) -> None:
    gw, service = gateway
    service.lagging_left = 1000
    slow = Gateway(gw.endpoint, gw_cert(gw), gw.identity, gw.signer, timeouts=Timeouts(resubmit=1.2))
    try:
        with pytest.raises(LedgerUnavailable, match=r"peers disagree, one lags behind.*is not registered"):
            slow.get_network("evidence").get_contract("evidence").submit("anchor_checkpoint", "log-x")
        assert 2 <= service.endorsed <= 4 and service.submitted == []
    finally:
        slow.close()
