"""The evidence contract served to a Fabric peer as chaincode-as-a-service (one server per organisation).

fabric-chaincode-python 2.5.4 handles every peer message in its own task, and those tasks write to the
gRPC stream concurrently; grpc.aio does not allow that, and under a few dozen concurrent transactions the
stream stalls ("error sending: timeout expired" on the peer). `SerialisedStream` puts one asyncio.Lock
around the stream writes. The shim also keeps `stub.set_event` events to itself; `EvidenceChaincode`
hands the last one of each successful transaction to the stream, which attaches it to the COMPLETED
message as the Go shim does. Everything else is the shim's own handler.
"""

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterable
from pathlib import Path
from typing import Any

import grpc
from fabric_chaincode_python.fabric_contract_api import ContractChaincode
from fabric_chaincode_python.fabric_shim.handler import Handler
from fabric_chaincode_python.fabric_shim.response import ResponseCode
from fabric_chaincode_python.fabric_shim.server import ChaincodeService
from fabric_protos.peer import chaincode_event_pb2
from fabric_protos.peer import chaincode_shim_pb2 as shim_pb2
from fabric_protos.peer import chaincode_shim_pb2_grpc as shim_grpc

from chaincode.contract import EvidenceContract

LOG = logging.getLogger("bidtrace.chaincode")
# The shim logs every message at INFO/WARNING on the "asyncio" logger; keep only its errors.
logging.getLogger("asyncio").setLevel(logging.ERROR)


class EvidenceChaincode(ContractChaincode):  # type: ignore[misc]
    """The contract chaincode, remembering each successful transaction's event until it is sent."""

    def __init__(self) -> None:
        super().__init__()
        self.pending_events: dict[tuple[str, str], chaincode_event_pb2.ChaincodeEvent] = {}

    async def invoke(self, stub: Any) -> Any:
        response = await super().invoke(stub)
        events = stub.get_events()
        if events and response.status < ResponseCode.ERRORTHRESHOLD:
            last = events[-1]
            self.pending_events[(stub.channel_id, stub.tx_id)] = chaincode_event_pb2.ChaincodeEvent(
                event_name=last.event_name, payload=last.payload
            )
        return response


class SerialisedStream:
    """The servicer context of one peer stream, with writes taken one at a time."""

    def __init__(self, context: Any, chaincode: EvidenceChaincode) -> None:
        self._context = context
        self._chaincode = chaincode
        self._lock = asyncio.Lock()

    async def write(self, message: shim_pb2.ChaincodeMessage) -> None:
        if message.type == shim_pb2.ChaincodeMessage.COMPLETED:
            event = self._chaincode.pending_events.pop((message.channel_id, message.txid), None)
            if event is not None:
                message.chaincode_event.CopyFrom(event)
        async with self._lock:
            await self._context.write(message)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


class EvidenceChaincodeService(ChaincodeService):  # type: ignore[misc]
    """The shim's chaincode service, handing its handler a stream whose writes are serialised."""

    async def Connect(
        self, request_iterator: AsyncIterable[shim_pb2.ChaincodeMessage], context: grpc.aio.ServicerContext
    ) -> None:
        handler = Handler(self._ccid, self._cc)
        try:
            await handler.chat_with_peer(request_iterator, SerialisedStream(context, self._cc))
        except asyncio.CancelledError:
            LOG.info("peer stream of %s cancelled", self._ccid)


def new_chaincode() -> EvidenceChaincode:
    chaincode: EvidenceChaincode = EvidenceChaincode.new_chaincode(EvidenceContract())
    return chaincode


def new_server(cc_id: str, address: str, tls: "TLSFiles | None" = None) -> tuple[grpc.aio.Server, int]:
    """A gRPC server serving the evidence chaincode at `address`; returns it with its bound port."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 100 * 1024 * 1024)])
    if tls is None:
        port = server.add_insecure_port(address)
    else:
        creds = grpc.ssl_server_credentials(
            [(tls.key.read_bytes(), tls.cert.read_bytes())],
            root_certificates=tls.client_ca.read_bytes() if tls.client_ca else None,
            require_client_auth=tls.client_ca is not None,
        )
        port = server.add_secure_port(address, creds)
    if port == 0:
        raise OSError(f"chaincode server cannot listen on {address}")
    shim_grpc.add_ChaincodeServicer_to_server(EvidenceChaincodeService(cc_id, new_chaincode()), server)
    return server, port


class TLSFiles:
    def __init__(self, key: Path, cert: Path, client_ca: Path | None = None) -> None:
        self.key, self.cert, self.client_ca = key, cert, client_ca


async def serve(cc_id: str, address: str, tls: TLSFiles | None = None) -> None:
    server, port = new_server(cc_id, address, tls)
    await server.start()
    LOG.info("evidence chaincode %s listening on %s (port %d)", cc_id, address, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(3)


def start(cc_id: str | None = None, address: str | None = None, tls: TLSFiles | None = None) -> None:
    """Serve until SIGTERM/SIGINT. `cc_id` and `address` default to CHAINCODE_ID / CHAINCODE_SERVER_ADDRESS."""
    cc_id = cc_id or os.environ.get("CHAINCODE_ID")
    address = address or os.environ.get("CHAINCODE_SERVER_ADDRESS")
    if not cc_id or not address:
        raise SystemExit("chaincode server needs CHAINCODE_ID and CHAINCODE_SERVER_ADDRESS")
    if tls is None and os.environ.get("CHAINCODE_TLS_KEY_FILE"):
        ca = os.environ.get("CHAINCODE_TLS_CLIENT_CA_FILE")
        tls = TLSFiles(
            Path(os.environ["CHAINCODE_TLS_KEY_FILE"]),
            Path(os.environ["CHAINCODE_TLS_CERT_FILE"]),
            Path(ca) if ca else None,
        )
    asyncio.run(serve(cc_id, address, tls))


if __name__ == "__main__":
    # force: the shim configures the root logger at DEBUG when it is imported.
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    args = sys.argv[1:]
    start(args[0] if args else None, args[1] if len(args) > 1 else None)
