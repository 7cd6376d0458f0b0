"""An audit extract anchored on the real Fabric network, from submission over HTTP to `bidtrace verify`."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fabric_helpers import OrgCA

from anchors.fabric import FabricLedger
from network.topology import FabricNetwork
from notary.client import NotaryClient, SubmitterKey
from notary.extract import build_extract, published_roots
from notary.server import serving
from notary.service import Notary
from tests.conftest import ADMIN, incident, make_config, recording, wait_until
from verifier.extract import verify_extract
from verifier.trust import LedgerRoot, TrustRoots

pytestmark = pytest.mark.fabric


def extract_on_fabric(net: FabricNetwork, folder: Path) -> tuple[Path, TrustRoots]:
    """A notary anchoring on Fabric as ProvinceMSP; a camera and the hub submit over HTTP; one extract and
    the roots its operator publishes."""
    ledger = FabricLedger.from_profile(net.profile_file(net.org("ProvinceMSP")))
    config = make_config(folder / "notary", log_id=f"province-{uuid.uuid4().hex[:8]}", seal_interval=0.2)
    notary = Notary(config, ledger=ledger)
    try:
        with serving(notary) as url:
            admin = NotaryClient(url, as_principal=ADMIN)
            camera, hub = SubmitterKey.generate("V-1.cam1"), SubmitterKey.generate("hub-1")
            admin.register(camera, "device", "V-1", "recorder")
            admin.register(hub, "hub")
            previous = None
            for start in range(0, 20, 10):
                cams = recording(start, 10, previous)
                previous = cams[-1]["payload"]["sha256"]
                admin.submit(camera, cams)
                admin.submit(hub, [incident(start), incident(start + 1, project="P-OTHER")])
            size = notary.log.size
            wait_until(lambda: notary.sealer.state.anchored_size >= size, 60, "the anchor on Fabric")
            admin.close()
        path = folder / "extract-P-1.zip"
        path.write_bytes(build_extract(notary.log, notary.ledger, "P-1"))
        trust = published_roots(notary.log, notary.ledger)
    finally:
        notary.close()
    return path, trust


@pytest.fixture(scope="module")
def fabric_extract(fabric_network: FabricNetwork, tmp_path_factory: pytest.TempPathFactory) -> tuple[
        Path, TrustRoots]:
    return extract_on_fabric(fabric_network, tmp_path_factory.mktemp("fabric-extract"))


def test_fabric_extract_verifies_against_the_published_roots(fabric_extract: tuple[Path, TrustRoots]) -> None:
    path, trust = fabric_extract
    report = verify_extract(path, trust)
    problems = report.errors + [f.detail for f in report.findings if not f.ok] + [
        e for r in report.records for e in r.errors]
    assert report.ok, problems
    assert len(report.records) == 22
    assert report.anchor.startswith("Fabric block ") and "submitted by ProvinceMSP" in report.anchor
    endorsers = report.anchor.split("endorsed by ")[1].split(" (")[0].split(", ")
    assert len(endorsers) >= 2, report.anchor  # a majority of the three organisations, named
    assert "block signed by orderer of" in report.anchor


def test_bidtrace_verify_command_accepts_the_fabric_extract(
    fabric_extract: tuple[Path, TrustRoots], tmp_path: Path
) -> None:
    path, trust = fabric_extract
    roots = tmp_path / "published-roots.json"
    roots.write_bytes(trust.encode())
    run = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(path), "--trust", str(roots)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED: all 22 records" in run.stdout and "anchor ✓ Fabric block" in run.stdout


def test_fabric_extract_fails_against_another_networks_roots(fabric_extract: tuple[Path, TrustRoots]) -> None:
    path, trust = fabric_extract
    ledger = dict(trust.ledgers[0].body)
    ledger["organizations"] = {msp: OrgCA.create(msp).pem() for msp in ledger["organizations"]}
    other = LedgerRoot.of_ledger(ledger, "other roots").bound_to(trust.ledgers[0].logs)
    report = verify_extract(path, TrustRoots(trust.notaries, (other,)))
    assert not report.ok
    failed = report.errors + [f.detail for f in report.findings if not f.ok]
    assert any("are not the pinned ones" in e for e in failed), failed


def test_extracts_before_and_after_add_org_verify_against_the_same_published_roots(
    fabric_network: FabricNetwork, fabric_extract: tuple[Path, TrustRoots], tmp_path: Path
) -> None:
    """Membership changes over time: each extract is judged by the configuration in force at its anchor,
    proven from the genesis membership the published roots pin."""
    first, published = fabric_extract
    before = len(fabric_network.orgs)
    for city in ("LinyiMSP", "ZiboMSP"):
        fabric_network.add_org(city)
    second, trust = extract_on_fabric(fabric_network, tmp_path)
    # adding cities changes nothing that was published
    assert [r.body for r in trust.ledgers] == [r.body for r in published.ledgers]
    assert verify_extract(first, published).ok
    # The second run's log is another log: the same published ledger roots, bound to it as well.
    bound = tuple(r.bound_to([*r.logs, trust.notaries[0].log_id]) for r in published.ledgers)
    report = verify_extract(second, TrustRoots(trust.notaries, bound))
    assert report.ok, report.errors + [f.detail for f in report.findings if not f.ok] + [
        e for r in report.records for e in r.errors]
    assert f"of {before + 2} members as of config block" in report.anchor, report.anchor
