"""Peak memory and time of `verify_extract` on a large genuine extract and on hostile ones.

A notary (SQLite) logs N records of one project in signed batches of 1,000 (recording segments of one
camera, hash-chained), seals, and writes the project's extract. Each verification then runs in a fresh
process, so its peak resident set (ru_maxrss) is its own; tracemalloc's peak of Python allocations is
reported beside it. Hostile inputs: a deflated member that inflates to 1 GiB, a central directory that
claims a 2 GiB member, a manifest of JSON nested 1,000,000 deep, a 16 MiB manifest, and 200,000 unlisted
empty members (laid out canonically, and not).

    python -m bench.extract                  # 100,000 records
    python -m bench.extract --records 10000
    python -m bench.extract --keep FOLDER    # keep the inputs there, or reuse them (delete FOLDER/inputs.json
                                             # to remake the hostile ones)
"""

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import machine, table


def _build(folder: Path, records: int) -> None:
    from notary.client import SubmitterKey
    from notary.extract import build_extract, published_roots
    from notary.log import Submission
    from notary.service import Notary, NotaryConfig

    notary = Notary(NotaryConfig(data_dir=folder / "notary", database_url=None, log_id="province",
                                 insecure_local=True))
    camera = SubmitterKey.generate("V-1.cam1")
    notary.log.register_submitter("V-1.cam1", "device", camera.public_pem())
    start = datetime.now(UTC) - timedelta(seconds=records + 60)
    previous = None
    for first in range(0, records, 1000):
        batch = []
        for i in range(first, min(records, first + 1000)):
            digest = f"{i:064x}"
            begin, end = start + timedelta(seconds=i), start + timedelta(seconds=i + 1)
            batch.append({"type": "recording_segment", "project_id": "P-1", "session_id": "S-1", "venue_id": "V-1",
                          "device_id": "V-1.cam1", "occurred_at": end.isoformat(),
                          "payload": {"camera_id": "cam1", "segment_index": i, "start": begin.isoformat(),
                                      "end": end.isoformat(), "frame_count": 10, "sha256": digest,
                                      "previous_segment": previous}})
            previous = digest
        notary.log.submit(Submission("V-1.cam1", batch, camera.sign_batch(batch)))
    notary.sealer.seal()
    path = folder / "extract.zip"
    path.write_bytes(build_extract(notary.log, notary.ledger, "P-1"))
    roots = folder / "roots.json"
    roots.write_bytes(published_roots(notary.log, notary.ledger).encode())
    notary.close()


def _hostile(folder: Path, genuine: Path) -> dict[str, Path]:
    """Hostile extracts. Those a forger can lay out canonically are, so the checks past the layout are reached."""
    from verifier.extract import canonical_zip

    with zipfile.ZipFile(genuine) as zf:
        small = {n: zf.read(n) for n in zf.namelist()[:20]}
    out = {}

    def canonical(name: str, extra: dict[str, bytes]) -> None:
        out[name] = folder / f"{len(out)}.zip"
        out[name].write_bytes(canonical_zip(list({**small, **extra}.items())))

    def write(name: str, build: Callable[[zipfile.ZipFile], None]) -> None:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
            for n, d in small.items():
                zf.writestr(n, d)
            build(zf)
        out[name] = folder / f"{len(out)}.zip"
        out[name].write_bytes(buffer.getvalue())

    write("deflate bomb (1 GiB of zeros)", lambda zf: zf.writestr(
        zipfile.ZipInfo("records/000000999999.json"), bytes(1024**3), compress_type=zipfile.ZIP_DEFLATED,
        compresslevel=9))
    canonical("deeply nested JSON manifest", {"manifest.json": b"[" * 1_000_000 + b"]" * 1_000_000})
    canonical("16 MiB JSON string as manifest", {"manifest.json": b'"' + b"a" * (16 * 2**20 - 2) + b'"'})
    canonical("200,000 unlisted members", {f"x/{i}": b"" for i in range(200_000)})

    def many(zf: zipfile.ZipFile) -> None:
        for i in range(200_000):
            zf.writestr(f"x/{i}", b"")  # today's time stamps: not the canonical layout

    write("200,000 members, not laid out canonically", many)
    data = bytearray(out["deeply nested JSON manifest"].read_bytes())
    at = data.rindex(b"PK\x01\x02")
    data[at + 24:at + 28] = (2**31).to_bytes(4, "little")
    out["central directory claims 2 GiB"] = folder / "lying.zip"
    out["central directory claims 2 GiB"].write_bytes(bytes(data))
    return out


def prepare(folder: Path, records: int) -> None:
    if not (folder / "extract.zip").exists():
        _build(folder, records)
    inputs = _hostile(folder, folder / "extract.zip")
    (folder / "inputs.json").write_text(json.dumps({name: str(path) for name, path in inputs.items()}))


def measure(path: str, roots: str) -> None:
    """In this process: verify once, print one JSON line of verdict, seconds, tracemalloc and RSS peaks."""
    import tracemalloc

    from verifier.extract import verify_extract
    from verifier.trust import load_trust_file

    trust = load_trust_file(Path(roots))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    t0 = time.perf_counter()
    report = verify_extract(Path(path), trust)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"verdict": report.verdict.value, "seconds": seconds, "traced_peak": peak,
                      "rss_peak_kib": rss, "rss_before_kib": before,
                      "why": (report.errors or [f.detail for f in report.findings if not f.ok] or [""])[0][:90]}))


def _run(path: Path, roots: Path, traced: bool) -> dict[str, object]:
    code = ("import sys; from bench.extract import measure, measure_untraced; "
            f"({'measure' if traced else 'measure_untraced'})(sys.argv[1], sys.argv[2])")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(roots)], capture_output=True, text=True,
                          timeout=1800, check=True)
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_untraced(path: str, roots: str) -> None:
    """As `measure`, without tracemalloc (which slows allocation-heavy code several times): the time to quote."""
    from verifier.extract import verify_extract
    from verifier.trust import load_trust_file

    trust = load_trust_file(Path(roots))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    report = verify_extract(Path(path), trust)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"verdict": report.verdict.value, "seconds": seconds, "traced_peak": 0, "rss_peak_kib": rss,
                      "rss_before_kib": before,
                      "why": (report.errors or [f.detail for f in report.findings if not f.ok] or [""])[0][:90]}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build the inputs in this folder, or reuse them if it has them")
    args = parser.parse_args(argv)
    print(f"# Extract verification: peak memory and time\n{machine()}\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="bidtrace-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        # Built in a process of its own: a child's peak RSS on Linux starts from its parent's, so the parent
        # that launches the measurements must stay small.
        if not (folder / "inputs.json").exists():
            subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                            "from bench.extract import prepare; "
                            "prepare(Path(sys.argv[1]), int(sys.argv[2]))", str(folder), str(args.records)],
                           check=True, timeout=3600)
        genuine, roots = folder / "extract.zip", folder / "roots.json"
        hostile = {name: Path(path) for name, path in json.loads((folder / "inputs.json").read_text()).items()}
        print(f"inputs ready in {time.perf_counter() - t0:.0f}s (a {args.records:,}-record extract of "
              f"{genuine.stat().st_size / 2**20:.1f} MiB and the hostile ones)", flush=True)
        inputs = {f"genuine, {args.records:,} records": genuine, **hostile}
        rows = []
        for name, path in inputs.items():
            timed = _run(path, roots, traced=False)
            traced = _run(path, roots, traced=True)
            rows.append([name, f"{path.stat().st_size / 2**20:,.1f} MiB", str(timed["verdict"]),
                         f"{float(timed['seconds']):.2f} s", f"{int(timed['rss_peak_kib']) / 1024:,.0f} MiB",
                         f"{int(timed['rss_before_kib']) / 1024:,.0f} MiB",
                         f"{int(traced['traced_peak']) / 2**20:,.1f} MiB", str(timed["why"])])
            print(rows[-1], flush=True)
    print()
    print(table(["input", "file", "verdict", "time", "peak RSS", "RSS before verify", "peak Python allocations",
                 "first reason"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
