"""A real Fabric network (three organisations, Raft, the Python chaincode) for the tests marked `fabric`.

It is brought up once per session in a temporary folder, on loopback ports from
BIDTRACE_TEST_FABRIC_PORT_BASE (default 27000), and stopped at the end. Without the binaries
(`python -m network.build`) those tests are skipped, except in CI (CI=true or BIDTRACE_REQUIRE_FABRIC=1),
where a missing binary is a failure.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from anchors.fabric import FabricLedger
from network.build import Binaries, BuildError, binaries, peer_version
from network.topology import FabricNetwork

ORGS = ["ProvinceMSP", "JinanMSP", "QingdaoMSP"]


def fabric_required() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("BIDTRACE_REQUIRE_FABRIC") == "1"


@pytest.fixture(scope="session")
def fabric_binaries() -> Binaries:
    """The binaries the network runs from; a skip outside CI when there are none, a failure in CI."""
    bins = binaries()
    try:
        peer_version(bins)
    except BuildError as exc:
        reason = f"no usable Fabric binaries ({exc}); run `bidtrace network build`"
        if fabric_required():
            pytest.fail(f"Fabric is required here: {reason}", pytrace=False)
        pytest.skip(reason)
    return bins


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory, fabric_binaries: Binaries) -> Iterator[FabricNetwork]:
    bins = fabric_binaries
    home: Path = tmp_path_factory.mktemp("fabric")
    port_base = int(os.environ.get("BIDTRACE_TEST_FABRIC_PORT_BASE", "27000"))
    net = FabricNetwork(home, ORGS, port_base, bins)
    try:
        net.up()
        yield net
    finally:
        net.down()


@pytest.fixture(scope="session")
def ledger_of(fabric_network: FabricNetwork) -> Iterator[Callable[[str], FabricLedger]]:
    opened: dict[str, FabricLedger] = {}

    def open_ledger(msp_id: str) -> FabricLedger:
        if msp_id not in opened:
            opened[msp_id] = FabricLedger.from_profile(fabric_network.profile_file(fabric_network.org(msp_id)))
        return opened[msp_id]

    yield open_ledger
    for ledger in opened.values():
        ledger.close()
