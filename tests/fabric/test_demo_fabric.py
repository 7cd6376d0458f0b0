"""`bidtrace demo --ledger fabric`: a whole evaluation anchored on Fabric, twice on the same network."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from network.topology import FabricNetwork

pytestmark = pytest.mark.fabric


def test_demo_on_fabric_runs_twice_on_one_network_and_verifies(fabric_network: FabricNetwork, tmp_path: Path) -> None:
    env = {**os.environ, "BIDTRACE_FABRIC_HOME": str(fabric_network.home),
           "BIDTRACE_FABRIC_BIN": str(fabric_network.bins.bin_dir)}
    for run in ("first", "second"):
        out, err = tmp_path / f"{run}.out", tmp_path / f"{run}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            try:
                code = subprocess.run(
                    [sys.executable, "-m", "bidtrace", "demo", "--ledger", "fabric", "--data", str(tmp_path / run),
                     "--segments", "12"], stdout=stdout, stderr=stderr, timeout=300, env=env,
                ).returncode
            except subprocess.TimeoutExpired:
                pytest.fail(f"the {run} demo did not end in 300 s:\n{out.read_text()}\n{err.read_text()}")
        done = subprocess.CompletedProcess([], code, out.read_text(), err.read_text())
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "VERIFIED: all" in done.stdout
        anchor = next(line for line in done.stdout.splitlines() if line.startswith("anchor ✓"))
        assert "Fabric block" in anchor and "endorsed by" in anchor, anchor
        # One Fabric anchor (about 0.5 s) outlasts the demo's 0.5 s seal interval: rounds must queue quietly.
        assert not [line for line in output.splitlines() if "skipped" in line and "Sealer" in line]
