"""The main job: `bidtrace demo` runs a whole evaluation on the embedded ledger and its extract verifies."""

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_and_its_extract_verifies(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "bidtrace", "demo", "--data", str(tmp_path / "demo"),
                          "--segments", "60"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "VERIFIED: all" in run.stdout and "expert draw: 7 of 240" in run.stdout
    assert "answered by the tenderer" in run.stdout and "receipt R-1 signed by" in run.stdout
    assert "sessions 1 · incidents 0 · objections filed 1, relayed 1, answered 1" in run.stdout
    assert "recomputed from the verified extract" in run.stdout and "identical ✓" in run.stdout
    extract = next((tmp_path / "demo").glob("extract-*.zip"))
    roots = str(tmp_path / "demo" / "published-roots.json")
    report = tmp_path / "report.pdf"
    again = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(extract), "--trust", roots, "--verbose",
                            "--pdf", str(report)], capture_output=True, text=True)
    assert again.returncode == 0 and "draw_result" in again.stdout
    # The court's report of the demo's whole session: the verdict and the story as text.
    text = subprocess.run(["pdftotext", str(report), "-"], capture_output=True, text=True, check=True).stdout
    assert "VERIFIED" in text and "评标过程" in text and "没有人脸核验服务方" in text
    # Without roots the user chose, the same extract is only UNTRUSTED, with the fingerprints to compare.
    alone = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(extract)], capture_output=True, text=True,
                           env={**os.environ, "BIDTRACE_TRUST_STORE": str(tmp_path / "empty-store.json")})
    assert alone.returncode == 3 and alone.stdout.startswith("UNTRUSTED") and "SHA256:" in alone.stdout

    # The operator's commands on the demo's notary data: a full audit, and a fresh extract from the database.
    notary_data = str(tmp_path / "demo" / "notary")
    audit = subprocess.run([sys.executable, "-m", "bidtrace", "notary", "audit", "--data", notary_data],
                           capture_output=True, text=True)
    assert audit.returncode == 0 and "leaves verify and agree with the ledger" in audit.stdout, audit.stdout
    out = tmp_path / "fresh.zip"
    fresh = subprocess.run([sys.executable, "-m", "bidtrace", "extract", "--project", "SD-2026-JN-0417",
                            "--data", notary_data, "--out", str(out), "--disclose"], capture_output=True, text=True)
    assert fresh.returncode == 0, fresh.stderr
    checked = subprocess.run([sys.executable, "-m", "bidtrace", "verify", str(out), "--trust", roots],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and "draw D-1 ✓" in checked.stdout
    # The operator writes the published roots from the notary's own data: the same fingerprints.
    republished = tmp_path / "roots.json"
    written = subprocess.run([sys.executable, "-m", "bidtrace", "notary", "roots", "--data", notary_data,
                              "--out", str(republished)], capture_output=True, text=True)
    assert written.returncode == 0 and republished.read_bytes() == Path(roots).read_bytes(), written.stderr
    missing = subprocess.run([sys.executable, "-m", "bidtrace", "extract", "--project", "NO-SUCH",
                              "--data", notary_data, "--out", str(tmp_path / "none.zip")],
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "project NO-SUCH has no anchored records yet" in missing.stderr
