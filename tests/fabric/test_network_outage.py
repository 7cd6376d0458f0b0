"""Outages of the whole network, and one contract on two ledgers: what the notary and the contract promise."""

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fabric_helpers
import pytest

from anchors.embedded import EmbeddedLedger
from anchors.fabric import FabricLedger
from anchors.ledger import Ledger, LedgerRefused
from network.topology import FabricNetwork
from notary.audit import audit_log
from notary.client import NotaryClient, SubmitterKey
from notary.server import serving
from notary.service import Notary
from tests.conftest import ADMIN, incident, make_config, wait_until
from verifier.anchor import Anchor, RegisteredLog

pytestmark = pytest.mark.fabric


def _province(net: FabricNetwork) -> FabricLedger:
    return FabricLedger.from_profile(net.profile_file(net.org("ProvinceMSP")))


def _reduced(answer: Anchor | RegisteredLog) -> dict[str, Any]:
    varying = ("tx_id", "anchored_at", "owner_msp", "owner_id", "registered_at")
    return {k: v for k, v in answer.encode().items() if k not in varying}


def _outcomes(ledger: Ledger, log_id: str, log: fabric_helpers.Notary, forged: fabric_helpers.Notary) -> list[Any]:
    """One sequence of contract calls, each reduced to what must not depend on the ledger running it: no
    transaction id, time or caller."""
    calls: list[tuple[str, Callable[[], Anchor | RegisteredLog | list[Anchor] | None]]] = [
        ("register", lambda: ledger.register_log(log_id, log.vkey())),
        ("anchor 3", lambda: ledger.anchor_checkpoint(log_id, log.checkpoint(3), log.proof(0, 3))),
        ("rewrite", lambda: ledger.anchor_checkpoint(log_id, forged.checkpoint(5), forged.proof(3, 5))),
        ("anchor 5", lambda: ledger.anchor_checkpoint(log_id, log.checkpoint(5), log.proof(3, 5))),
        ("again 5", lambda: ledger.anchor_checkpoint(log_id, log.checkpoint(5), log.proof(5, 5))),
        ("shrink", lambda: ledger.anchor_checkpoint(log_id, log.checkpoint(4), log.proof(4, 4))),
        ("bad proof", lambda: ledger.anchor_checkpoint(log_id, log.checkpoint(5), [b"\x00" * 32])),
        ("head", lambda: ledger.get_log(log_id)),
        ("unknown", lambda: ledger.get_log(f"{log_id}-unknown")),
        ("list", lambda: ledger.anchors(log_id)),
    ]
    outcomes: list[Any] = []
    for name, call in calls:
        try:
            answer = call()
        except LedgerRefused as exc:
            outcomes.append((name, "refused", str(exc).split("refused by the contract: ")[-1]))
            continue
        if isinstance(answer, list):
            result: Any = [_reduced(a) for a in answer]
        else:
            result = None if answer is None else _reduced(answer)
        outcomes.append((name, "ok", result))
    return outcomes


def test_the_same_calls_give_the_same_results_on_fabric_and_embedded(
    fabric_network: FabricNetwork, tmp_path: Path
) -> None:
    log_id = f"parity-{uuid.uuid4().hex[:8]}"
    log = fabric_helpers.Notary(f"bidtrace.test/{log_id}")
    log.append(*[f"entry {i}".encode() for i in range(5)])
    forged = fabric_helpers.Notary(log.origin, key=log.key)
    forged.append(b"entry 0", b"entry 1", b"rewritten", b"entry 3", b"entry 4")
    fabric = _province(fabric_network)
    embedded = EmbeddedLedger(tmp_path / "ledger", "ProvinceMSP", "ProvinceMSP", b"notary identity")
    try:
        on_fabric, on_embedded = (_outcomes(x, log_id, log, forged) for x in (fabric, embedded))
    finally:
        fabric.close()
        embedded.close()
    assert on_fabric == on_embedded
    verdicts = [(name, verdict) for name, verdict, _ in on_fabric]
    assert verdicts == [("register", "ok"), ("anchor 3", "ok"), ("rewrite", "refused"), ("anchor 5", "ok"),
                        ("again 5", "ok"), ("shrink", "refused"), ("bad proof", "refused"), ("head", "ok"),
                        ("unknown", "ok"), ("list", "ok")]


def test_notary_keeps_accepting_while_the_network_is_down_and_anchors_the_backlog(
    fabric_network: FabricNetwork, tmp_path: Path
) -> None:
    notary = Notary(make_config(tmp_path / "notary", log_id=f"outage-{uuid.uuid4().hex[:8]}", seal_interval=0.2),
                    ledger=_province(fabric_network))
    hub = SubmitterKey.generate("hub-1")
    try:
        with serving(notary) as url:
            client = NotaryClient(url, as_principal=ADMIN)
            client.register(hub, "hub")
            # The log already holds the registry record of the hub's binding: count from the first incident.
            first = client.submit(hub, [incident(0)])[0].leaf_index
            wait_until(lambda: notary.sealer.state.anchored_size >= first + 1, 60, "the first anchor")
            anchored = notary.sealer.state.anchored_size
            stopped = fabric_network.down()
            assert any(name.startswith("orderer-") for name in stopped)
            try:
                for i in range(1, 31):
                    assert client.submit(hub, [incident(i)])[0].leaf_index == first + i
                wait_until(lambda: notary.sealer.state.failures >= 1, 60, "an anchoring failure")
                health = client.get("/healthz")
                assert health["status"] == "degraded" and health["anchored_size"] == anchored, health
            finally:
                started = time.monotonic()
                fabric_network.up()
                print(f"network back in {time.monotonic() - started:.1f} s")
            wait_until(lambda: notary.sealer.state.anchored_size >= first + 31, 120, "the backlog anchored")
            assert client.get("/healthz")["status"] == "ok"
            bundle = client.get(f"/v1/proof/bundle/{first + 17}")
            assert bundle["anchor"]["size"] >= first + 31 and bundle["anchor"]["evidence"]["ledger"] == "fabric"
            client.close()
        assert audit_log(notary.log, notary.ledger) == []
        assert json.loads(notary.log.entry(first + 30) or b"null")["leaf_index"] == first + 30
    finally:
        notary.close()
