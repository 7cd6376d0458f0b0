"""A client of the Fabric Gateway gRPC service, in fabric-gateway's words: Gateway -> Network -> Contract.

Submitting is Endorse (the gateway gathers endorsements for the chaincode's policy), sign the prepared
envelope, Submit (to the orderers), then CommitStatus (wait until the transaction is in a block).
Errors become `anchors.ledger` exceptions: the contract's refusal is `LedgerRefused` with its message;
an unreachable or slow network is `LedgerUnavailable`; an MVCC read conflict is retried.
"""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.gateway import gateway_pb2, gateway_pb2_grpc
from fabric_protos.peer import chaincode_event_pb2, proposal_pb2, proposal_response_pb2, transaction_pb2
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

from anchors.fabric.identity import Identity, Signer
from anchors.fabric.proposal import new_proposal, sign_proposal
from anchors.ledger import LedgerError, LedgerRefused, LedgerUnavailable

RETRYABLE_CODES = frozenset(
    {transaction_pb2.MVCC_READ_CONFLICT, transaction_pb2.PHANTOM_READ_CONFLICT}
)
_UNAVAILABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)


class EndorsementsDiffer(LedgerUnavailable):
    """This organisation's peer endorsed but another's refused: the contract is deterministic, so that peer
    has not yet committed the blocks ours has (it lags after a restart or an orderer change). Retry."""


class CommitError(LedgerError):
    """The transaction was ordered but the peers marked it invalid."""

    def __init__(self, tx_id: str, code: int) -> None:
        self.tx_id, self.code = tx_id, code
        super().__init__(f"transaction {tx_id} committed as {transaction_pb2.TxValidationCode.Name(code)}")


@dataclass(frozen=True)
class ChaincodeEvent:
    block_number: int
    tx_id: str
    chaincode: str
    name: str
    payload: bytes


@dataclass(frozen=True)
class Timeouts:
    endorse: float = 30.0
    submit: float = 10.0
    commit: float = 60.0
    evaluate: float = 10.0
    # How long the same signed envelope is resent while the orderers answer UNAVAILABLE (a Raft election
    # takes about 5 s; an orderer that is down makes the gateway report it until another is tried).
    resubmit: float = 30.0


def _status_class() -> Any:
    """google.rpc.Status, built here so that googleapis-common-protos is not needed."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(any_pb2.DESCRIPTOR.serialized_pb)
    fdp = descriptor_pb2.FileDescriptorProto(
        name="bidtrace/google_rpc_status.proto",
        package="google.rpc",
        dependency=["google/protobuf/any.proto"],
        syntax="proto3",
    )
    msg = fdp.message_type.add(name="Status")
    fd = descriptor_pb2.FieldDescriptorProto
    msg.field.add(name="code", number=1, type=fd.TYPE_INT32, label=fd.LABEL_OPTIONAL)
    msg.field.add(name="message", number=2, type=fd.TYPE_STRING, label=fd.LABEL_OPTIONAL)
    msg.field.add(
        name="details", number=3, type=fd.TYPE_MESSAGE, label=fd.LABEL_REPEATED, type_name=".google.protobuf.Any"
    )
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


_RPC_STATUS = _status_class()


def error_details(error: grpc.RpcError) -> list[tuple[str, str, str]]:
    """(address, MSP id, message) of each endorser or orderer the gateway reported on."""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    details: list[tuple[str, str, str]] = []
    for key, value in trailers or ():
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = _RPC_STATUS.FromString(value)
        for item in status.details:
            if item.type_url.endswith("gateway.ErrorDetail"):
                detail = gateway_pb2.ErrorDetail.FromString(item.value)
                details.append((detail.address, detail.msp_id, detail.message))
    return details


def _translate(error: grpc.RpcError, what: str) -> LedgerError:
    code = error.code() if hasattr(error, "code") else None
    message = error.details() if hasattr(error, "details") else str(error)
    details = error_details(error)
    reasons = "; ".join(f"{msp or addr}: {msg}" for addr, msp, msg in details) or str(message)
    if code in _UNAVAILABLE:
        return LedgerUnavailable(f"{what}: {code.name if code else 'error'}: {reasons}")
    # The gateway says "failed to endorse" when its own organisation's peer refuses (the contract's
    # verdict), and "failed to collect enough" when only peers asked after it do.
    if code == grpc.StatusCode.ABORTED and "collect enough" in str(message):
        return EndorsementsDiffer(f"{what}: peers disagree, one lags behind: {reasons}")
    refused = [msg for _, _, msg in details if "chaincode response" in msg] or (
        [str(message)] if "chaincode response" in str(message) else []
    )
    if refused:
        return LedgerRefused(f"{what} refused by the contract: {_contract_message(refused[0])}")
    if code == grpc.StatusCode.ABORTED:  # endorsers unreachable or disagreeing: worth another try
        return LedgerUnavailable(f"{what}: {message}: {reasons}")
    return LedgerRefused(f"{what} failed ({code.name if code else 'error'}): {reasons}")


def _contract_message(endorser_message: str) -> str:
    """The contract's own words from 'chaincode response 500, <message>'."""
    marker = "chaincode response"
    text = endorser_message[endorser_message.find(marker):]
    _, _, rest = text.partition(", ")
    return rest or endorser_message


class Gateway:
    """A connection to one peer's Gateway service, acting as one client identity."""

    def __init__(
        self,
        endpoint: str,
        tls_root_cert: bytes,
        identity: Identity,
        signer: Signer,
        server_name: str | None = None,
        timeouts: Timeouts = Timeouts(),
        max_retries: int = 5,
    ) -> None:
        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 100 * 1024 * 1024)]
        if server_name:
            options.append(("grpc.ssl_target_name_override", server_name))
        self._channel = grpc.secure_channel(endpoint, grpc.ssl_channel_credentials(tls_root_cert), options)
        self._stub = gateway_pb2_grpc.GatewayStub(self._channel)
        self.endpoint = endpoint
        self.identity = identity
        self.signer = signer
        self.timeouts = timeouts
        self.max_retries = max_retries

    def get_network(self, channel: str) -> "Network":
        return Network(self, channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stub(self) -> gateway_pb2_grpc.GatewayStub:
        return self._stub


class Network:
    """One channel seen through the gateway."""

    def __init__(self, gateway: Gateway, channel: str) -> None:
        self.gateway = gateway
        self.name = channel

    def get_contract(self, chaincode: str, contract_name: str = "") -> "Contract":
        return Contract(self, chaincode, contract_name)

    def get_block_by_tx_id(self, tx_id: str) -> bytes:
        """The serialized common.Block holding a transaction, from the peer's query system chaincode."""
        qscc = Contract(self, "qscc")
        return qscc.evaluate_transaction("GetBlockByTxID", self.name, tx_id)

    def get_block_by_number(self, number: int) -> bytes:
        """The serialized common.Block at `number`, from the peer's query system chaincode."""
        return Contract(self, "qscc").evaluate_transaction("GetBlockByNumber", self.name, str(number))

    def chaincode_events(
        self, chaincode: str, start_block: int | None = None, timeout: float | None = None
    ) -> "EventStream":
        gw = self.gateway
        request = gateway_pb2.ChaincodeEventsRequest(
            channel_id=self.name, chaincode_id=chaincode, identity=gw.identity.serialize()
        )
        if start_block is None:
            request.start_position.next_commit.SetInParent()
        else:
            request.start_position.specified.number = start_block
        raw = request.SerializeToString()
        signed = gateway_pb2.SignedChaincodeEventsRequest(request=raw, signature=gw.signer.sign(raw))
        return EventStream(gw.stub.ChaincodeEvents(signed, timeout=timeout), chaincode)


class EventStream:
    """Chaincode events in block order; iterate, and close() to stop listening."""

    def __init__(self, call: Any, chaincode: str) -> None:
        self._call = call
        self._chaincode = chaincode

    def __iter__(self) -> Iterator[ChaincodeEvent]:
        try:
            for response in self._call:
                for event in response.events:
                    yield _event(response.block_number, event, self._chaincode)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise _translate(exc, "chaincode events") from exc

    def close(self) -> None:
        self._call.cancel()


def _event(block: int, event: chaincode_event_pb2.ChaincodeEvent, chaincode: str) -> ChaincodeEvent:
    return ChaincodeEvent(block, event.tx_id, event.chaincode_id or chaincode, event.event_name, event.payload)


@dataclass(frozen=True)
class SubmittedTransaction:
    tx_id: str
    result: bytes
    block_number: int


class Contract:
    """A chaincode (and optionally one named contract inside it) on a channel."""

    def __init__(self, network: Network, chaincode: str, contract_name: str = "") -> None:
        self.network = network
        self.chaincode = chaincode
        self.contract_name = contract_name

    def _function(self, name: str) -> str:
        return f"{self.contract_name}:{name}" if self.contract_name else name

    def evaluate_transaction(
        self, name: str, *args: str | bytes, target_organizations: list[str] | None = None
    ) -> bytes:
        """Run a query on one peer (of `target_organizations`, if given) without ordering it."""
        gw = self.network.gateway
        tx_id, proposal = new_proposal(
            gw.identity, self.network.name, self.chaincode, self._function(name), _encode(args)
        )
        request = gateway_pb2.EvaluateRequest(
            transaction_id=tx_id,
            channel_id=self.network.name,
            proposed_transaction=sign_proposal(proposal, gw.signer),
            target_organizations=target_organizations or [],
        )
        try:
            response = gw.stub.Evaluate(request, timeout=gw.timeouts.evaluate)
        except grpc.RpcError as exc:
            raise _translate(exc, f"evaluate {name}") from exc
        return bytes(response.result.payload)

    def submit_transaction(self, name: str, *args: str | bytes) -> bytes:
        return self.submit(name, *args).result

    def submit(self, name: str, *args: str | bytes) -> SubmittedTransaction:
        """Endorse, order and wait for commit; retry from endorsement on an MVCC conflict, and while another
        organisation's peer lags (bounded by the resubmission time; nothing was ordered, so no duplicate)."""
        gw = self.network.gateway
        lag_deadline = time.monotonic() + gw.timeouts.resubmit
        attempt = 0
        while True:
            try:
                return self._submit_once(name, _encode(args))
            except EndorsementsDiffer:
                if time.monotonic() + 0.5 > lag_deadline:
                    raise
                time.sleep(0.5)
                continue
            except CommitError as exc:
                if exc.code not in RETRYABLE_CODES or attempt == gw.max_retries:
                    if exc.code in RETRYABLE_CODES:
                        raise LedgerUnavailable(f"{exc} after {attempt + 1} attempts") from exc
                    raise LedgerRefused(str(exc)) from exc
                time.sleep(min(0.05 * 2**attempt, 1.0))
                attempt += 1

    def _submit_once(self, name: str, args: list[bytes]) -> SubmittedTransaction:
        gw = self.network.gateway
        channel = self.network.name
        tx_id, proposal = new_proposal(gw.identity, channel, self.chaincode, self._function(name), args)
        try:
            endorsed = gw.stub.Endorse(
                gateway_pb2.EndorseRequest(
                    transaction_id=tx_id, channel_id=channel, proposed_transaction=sign_proposal(proposal, gw.signer)
                ),
                timeout=gw.timeouts.endorse,
            )
        except grpc.RpcError as exc:
            raise _translate(exc, f"endorse {name}") from exc
        envelope = endorsed.prepared_transaction
        envelope.signature = gw.signer.sign(envelope.payload)
        result = _result_of(envelope)
        self._submit_envelope(name, gateway_pb2.SubmitRequest(
            transaction_id=tx_id, channel_id=channel, prepared_transaction=envelope))
        code, block = self._commit_status(tx_id)
        if code != transaction_pb2.VALID:
            raise CommitError(tx_id, code)
        return SubmittedTransaction(tx_id, result, block)

    def _submit_envelope(self, name: str, request: gateway_pb2.SubmitRequest) -> None:
        """Send the signed envelope to the orderers; resend the very same one while they are unavailable.

        The same envelope carries the same transaction id, so however many copies reach the orderers the
        peers commit it at most once (later copies are marked DUPLICATE_TXID, and CommitStatus reports the
        first). A fresh endorsement could instead commit the anchor twice under two ids.
        """
        gw = self.network.gateway
        deadline = time.monotonic() + gw.timeouts.resubmit
        delay = 0.25
        attempts = 0
        while True:
            attempts += 1
            try:
                gw.stub.Submit(request, timeout=gw.timeouts.submit)
                return
            except grpc.RpcError as exc:
                error = _translate(exc, f"submit {name}")
            if not isinstance(error, LedgerUnavailable) or time.monotonic() + delay > deadline:
                if isinstance(error, LedgerUnavailable):
                    raise LedgerUnavailable(f"{error} (sent {attempts} times over {gw.timeouts.resubmit:.0f} s)")
                raise error
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _commit_status(self, tx_id: str) -> tuple[int, int]:
        gw = self.network.gateway
        raw = gateway_pb2.CommitStatusRequest(
            transaction_id=tx_id, channel_id=self.network.name, identity=gw.identity.serialize()
        ).SerializeToString()
        signed = gateway_pb2.SignedCommitStatusRequest(request=raw, signature=gw.signer.sign(raw))
        try:
            status = gw.stub.CommitStatus(signed, timeout=gw.timeouts.commit)
        except grpc.RpcError as exc:
            raise _translate(exc, f"commit status of {tx_id}") from exc
        return int(status.result), int(status.block_number)


def _encode(args: tuple[str | bytes, ...]) -> list[bytes]:
    return [a.encode() if isinstance(a, str) else bytes(a) for a in args]


def _result_of(envelope: common_pb2.Envelope) -> bytes:
    """The chaincode's return value inside a prepared transaction envelope."""
    payload = common_pb2.Payload.FromString(envelope.payload)
    transaction = transaction_pb2.Transaction.FromString(payload.data)
    action = transaction_pb2.ChaincodeActionPayload.FromString(transaction.actions[0].payload)
    response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
        action.action.proposal_response_payload
    )
    chaincode_action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
    return bytes(chaincode_action.response.payload)


__all__ = [
    "ChaincodeEvent",
    "CommitError",
    "Contract",
    "EndorsementsDiffer",
    "EventStream",
    "Gateway",
    "Network",
    "SubmittedTransaction",
    "Timeouts",
]
