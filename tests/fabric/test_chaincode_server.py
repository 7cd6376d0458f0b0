"""The chaincode server against a stand-in peer speaking the chaincode shim protocol (no Fabric needed).

The stand-in does what a peer does on the stream: answers REGISTER, sends READY, sends TRANSACTION
messages with signed proposals, answers GET_STATE/PUT_STATE, and collects COMPLETED messages.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc
import pytest
from fabric_helpers import Notary, self_signed_identity
from fabric_protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_response_pb2,
)
from fabric_protos.peer.chaincode_shim_pb2 import ChaincodeMessage as Msg

from anchors.fabric.identity import Identity, Signer
from anchors.fabric.proposal import new_proposal, sign_proposal
from chaincode.server import new_server

CHANNEL = "evidence"


class StandInPeer:
    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call
        self.state: dict[str, bytes] = {}
        self.writes: dict[str, dict[str, bytes]] = {}
        self.done: dict[str, asyncio.Future[Msg]] = {}
        self.lock = asyncio.Lock()

    async def send(self, msg: Msg) -> None:
        async with self.lock:
            await self.call.write(msg)

    async def handshake(self) -> None:
        first = await self.call.read()
        assert first.type == Msg.REGISTER
        await self.send(Msg(type=Msg.REGISTERED))
        await self.send(Msg(type=Msg.READY))

    async def serve(self) -> None:
        while True:
            msg = await self.call.read()
            if msg is grpc.aio.EOF:
                return
            if msg.type == Msg.GET_STATE:
                key = chaincode_shim_pb2.GetState.FromString(msg.payload).key
                value = self.writes.get(msg.txid, {}).get(key, self.state.get(key, b""))
                await self.send(Msg(type=Msg.RESPONSE, payload=value, txid=msg.txid, channel_id=msg.channel_id))
            elif msg.type == Msg.PUT_STATE:
                put = chaincode_shim_pb2.PutState.FromString(msg.payload)
                self.writes.setdefault(msg.txid, {})[put.key] = put.value
                await self.send(Msg(type=Msg.RESPONSE, txid=msg.txid, channel_id=msg.channel_id))
            elif msg.type in (Msg.COMPLETED, Msg.ERROR):
                self.state.update(self.writes.pop(msg.txid, {}))
                self.done[msg.txid].set_result(msg)

    async def invoke(self, identity: Identity, signer: Signer, function: str, *args: str) -> Msg:
        tx_id, proposal = new_proposal(identity, CHANNEL, "evidence", function, [a.encode() for a in args])
        self.done[tx_id] = asyncio.get_running_loop().create_future()
        cc_input = chaincode_pb2.ChaincodeInput(args=[function.encode(), *[a.encode() for a in args]])
        await self.send(
            Msg(
                type=Msg.TRANSACTION,
                payload=cc_input.SerializeToString(),
                txid=tx_id,
                channel_id=CHANNEL,
                proposal=sign_proposal(proposal, signer),
            )
        )
        return await asyncio.wait_for(self.done[tx_id], 30)


def response_of(msg: Msg) -> proposal_response_pb2.Response:
    assert msg.type == Msg.COMPLETED
    return proposal_response_pb2.Response.FromString(msg.payload)


T = TypeVar("T")


async def _with_peer(scenario: Callable[["StandInPeer"], Awaitable[T]]) -> T:
    server, port = new_server("evidence:test", "127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = chaincode_shim_pb2_grpc.ChaincodeStub(channel).Connect()
            peer = StandInPeer(call)
            await peer.handshake()
            reader = asyncio.create_task(peer.serve())
            try:
                return await scenario(peer)
            finally:
                await call.done_writing()
                reader.cancel()
    finally:
        await server.stop(0)


def _identity(msp: str = "ProvinceMSP") -> tuple[Identity, Signer]:
    cert, key = self_signed_identity()
    return Identity(msp, cert), Signer(key)


def test_anchor_through_chaincode_server_carries_event() -> None:
    identity, signer = _identity()
    notary = Notary("bidtrace.test/log-a")

    async def scenario(peer: StandInPeer) -> None:
        reg = response_of(await peer.invoke(identity, signer, "evidence:register_log", "log-a", notary.vkey()))
        assert reg.status == 200, reg.message
        notary.append(b"one", b"two", b"three")
        proof = json.dumps([h.hex() for h in notary.proof(0)])
        done = await peer.invoke(identity, signer, "evidence:anchor_checkpoint", "log-a", notary.checkpoint(), proof)
        anchor = json.loads(response_of(done).payload)
        assert anchor["size"] == 3 and anchor["root"] == notary.root().hex()
        assert done.chaincode_event.event_name == "CheckpointAnchored"
        assert json.loads(done.chaincode_event.payload)["size"] == 3

    asyncio.run(_with_peer(scenario))


def test_contract_refusal_comes_back_as_error_response() -> None:
    owner, owner_signer = _identity("ProvinceMSP")
    other, other_signer = _identity("JinanMSP")
    notary = Notary("bidtrace.test/log-b")

    async def scenario(peer: StandInPeer) -> None:
        await peer.invoke(owner, owner_signer, "evidence:register_log", "log-b", notary.vkey())
        notary.append(b"x")
        msg = await peer.invoke(
            other, other_signer, "evidence:anchor_checkpoint", "log-b", notary.checkpoint(), "[]"
        )
        response = response_of(msg)
        assert response.status == 500
        assert "belongs to ProvinceMSP" in response.message
        assert not msg.HasField("chaincode_event")

    asyncio.run(_with_peer(scenario))


@pytest.mark.parametrize("concurrency", [200])
def test_many_concurrent_transactions_all_complete(concurrency: int) -> None:
    identity, signer = _identity()
    notary = Notary("bidtrace.test/many")

    async def scenario(peer: StandInPeer) -> list[int]:
        calls = [
            peer.invoke(identity, signer, "evidence:register_log", f"log-{i}", notary.vkey())
            for i in range(concurrency)
        ]
        return [response_of(m).status for m in await asyncio.gather(*calls)]

    statuses = asyncio.run(_with_peer(scenario))
    assert statuses == [200] * concurrency
