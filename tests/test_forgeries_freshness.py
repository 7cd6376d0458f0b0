"""Forgeries that lean on which ledger, which time and which checkpoint an extract names: a ledger trusted for
one log vouching for another, times in forms the formats do not write, an extract cut at an older anchored
checkpoint or replayed. Each is built from genuine evidence and must not be VERIFIED."""

import json
from pathlib import Path
from typing import Any

import pytest

from notary.extract import latest_anchor
from tests.forgery_kit import Project, files_of, messages, resign, rezip, verify
from verifier.extract import Verdict
from verifier.manifest import MANIFEST
from verifier.trust import TrustRoots

# Ledger roots bound to the logs they anchor --------------------------------------------------------------

def test_an_anchor_on_a_ledger_trusted_for_another_log_does_not_count(tmp_path: Path) -> None:
    # Two cities, each with its notary and its own ledger; the court trusts both. Jinan's notary gets its
    # log registered on the province's ledger as well and anchors there a checkpoint the Jinan ledger never
    # saw, then presents that anchor for its log. The province ledger is trusted, but only for the province.
    province = Project(tmp_path / "province")
    jinan = Project(tmp_path / "jinan", log_id="jinan")
    jinan.notary.sealer.seal()
    jinan_anchor = latest_anchor(jinan.notary.log)
    ledger = province.notary.ledger
    ledger.register_log("jinan", jinan.notary.key.vkey)
    anchor = ledger.anchor_checkpoint("jinan", jinan_anchor.checkpoint, [])
    evidence = ledger.anchor_evidence(anchor)
    genuine_province = province.finish()
    genuine_jinan = jinan.finish()
    trust = genuine_province.roots.merged(genuine_jinan.roots)
    assert [r.logs for r in trust.ledgers] == [("province",), ("jinan",)]
    assert verify(tmp_path, genuine_jinan.data, trust).verdict is Verdict.VERIFIED

    files = files_of(genuine_jinan.data)
    manifest = json.loads(files[MANIFEST])
    assert manifest["checkpoint"]["note"] == jinan_anchor.checkpoint
    manifest["anchor"] = {"ledger": "embedded", "size": anchor.size, "root": anchor.root.hex(),
                          "tx_id": anchor.tx_id, "anchored_at": anchor.anchored_at, "evidence": evidence}
    resign(files, genuine_jinan.key, manifest)
    report = verify(tmp_path, rezip(files), trust)
    assert report.verdict is Verdict.FAILED
    assert "anchor evidence does not hold" in messages(report), messages(report)

    # The same ledger bound to both logs by the user's choice would vouch for it: the binding is what refuses.
    both = TrustRoots(trust.notaries, (trust.ledgers[0].bound_to(["province", "jinan"]),))
    assert verify(tmp_path, rezip(files), both).verdict is Verdict.VERIFIED


def test_a_trust_file_without_log_bindings_is_refused_by_name(tmp_path: Path) -> None:
    from verifier.errors import MalformedInput

    old = {"format": "bidtrace-trust/1", "notaries": [], "ledgers": []}
    with pytest.raises(MalformedInput, match="bidtrace-trust/1, which does not bind ledger roots"):
        TrustRoots.parse(json.dumps(old).encode())
    ledger: dict[str, Any] = {"ledger": "embedded", "org": "ProvinceMSP", "public_key": "x"}
    unbound = {"format": "bidtrace-trust/2", "notaries": [], "ledgers": [ledger]}
    with pytest.raises(MalformedInput, match="names no logs"):
        TrustRoots.parse(json.dumps(unbound).encode())
    empty = {**unbound, "ledgers": [{**ledger, "logs": []}]}
    with pytest.raises(MalformedInput, match="at least one log id"):
        TrustRoots.parse(json.dumps(empty).encode())
