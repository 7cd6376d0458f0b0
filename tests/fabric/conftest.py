"""A real Fabric network (three organisations, Raft, the Python chaincode) for the tests marked `fabric`.

It is brought up once per session in a temporary folder, on loopback ports from
BIDTRACE_TEST_FABRIC_PORT_BASE (default 27000), and stopped at the end. Without the binaries
(`python -m network.build`) those tests are skipped.
"""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from anchors.fabric import FabricLedger
from network.build import binaries
from network.topology import FabricNetwork

ORGS = ["ProvinceMSP", "JinanMSP", "QingdaoMSP"]


@pytest.fixture(scope="session")
def fabric_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FabricNetwork]:
    bins = binaries()
    if not bins.present():
        pytest.skip(f"Fabric binaries are not in {bins.bin_dir}; run `python -m network.build` (.ci/fabric.sh)")
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
