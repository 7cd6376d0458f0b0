"""The proof bundle of one record: one typed value, served by the notary, checked against chosen roots."""

import json
from collections.abc import Callable
from typing import Any

import pytest

from notary.extract import proof_bundle, published_roots
from tests.forgery_kit import Project
from verifier.bundle import ProofBundle, check_bundle
from verifier.errors import MalformedInput, VerificationError
from verifier.trust import TrustRoots

Served = tuple[dict[str, Any], TrustRoots]
Change = Callable[[dict[str, Any]], object]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    project = Project(tmp_path_factory.mktemp("bundle"))
    project.session()
    project.notary.sealer.seal()
    bundle = proof_bundle(project.notary.log, 2).encode()
    roots = published_roots(project.notary.log, project.notary.ledger)
    project.notary.close()
    return json.loads(json.dumps(bundle)), roots


def test_a_served_bundle_parses_and_checks_against_the_published_roots(served: Served) -> None:
    value, roots = served
    bundle = ProofBundle.parse(value)
    assert bundle.encode() == value
    checked = check_bundle(bundle, roots)
    assert checked.entry.leaf_index == 2 and "embedded ledger" in checked.anchor


def test_a_bundle_with_another_entry_or_unbound_ledger_fails(served: Served) -> None:
    value, roots = served
    edited = json.loads(json.dumps(value))
    edited["entry"]["received_at"] = "2020-01-01T00:00:00.000000Z"
    with pytest.raises(VerificationError, match=r"inclusion proof|root"):
        check_bundle(ProofBundle.parse(edited), roots)
    unbound = TrustRoots(roots.notaries, tuple(r.bound_to(["another-log"]) for r in roots.ledgers))
    with pytest.raises(VerificationError, match="no chosen embedded ledger root is bound to log 'province'"):
        check_bundle(ProofBundle.parse(value), unbound)
    with pytest.raises(VerificationError, match="no chosen notary key"):
        check_bundle(ProofBundle.parse(value), TrustRoots((), roots.ledgers))


@pytest.mark.parametrize("change", [lambda v: v.update(extra=1), lambda v: v.pop("anchor"),
                                    lambda v: v.update(inclusion_proof=["AB" * 32]),
                                    lambda v: v["anchor"].update(anchored_at="2026-11-26 01:30:00Z")])
def test_a_malformed_bundle_is_refused_by_name(served: Served, change: Change) -> None:
    value, _ = served
    edited = json.loads(json.dumps(value))
    change(edited)
    with pytest.raises(MalformedInput):
        ProofBundle.parse(edited)
