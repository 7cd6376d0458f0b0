"""The main job: `bidtrace demo` runs a whole evaluation on the embedded ledger and its extract verifies."""

import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_and_its_extract_verifies(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bidtrace", "demo", "--data", str(tmp_path / "demo"),
                          "--segments", "60"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED: all" in run.stdout and "expert draw: 7 of 240" in run.stdout
    extract = next((tmp_path / "demo").glob("extract-*.zip"))
    again = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(extract)], capture_output=True, text=True)
    assert again.returncode == 0 and "draw_result" in again.stdout
