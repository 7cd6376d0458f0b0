"""Run every benchmark, one after the other, each in its own process: `python -m bench` (or bench/run.py).

    python -m bench                      # the full runs (10^6 leaves), several minutes
    python -m bench --leaves 100000      # quicker
    python -m bench ingest [--quick]     # one benchmark, its own options after its name
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: bench/run.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


BENCHMARKS = ("merkle", "verify", "ingest", "anchoring", "devices_hash", "devices_cameras")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in BENCHMARKS:
        return subprocess.run([sys.executable, "-m", f"bench.{argv[0]}", *argv[1:]],
                              cwd=Path(__file__).resolve().parent.parent, check=False).returncode
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1_000_000, help="tree size for bench.merkle and bench.verify")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds allowed per benchmark")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    runs = [
        ["bench.merkle", "--leaves", str(args.leaves)],
        ["bench.verify", "--leaves", str(args.leaves)],
        ["bench.ingest"],
    ]
    failed = 0
    for run in runs:
        t0 = time.perf_counter()
        print(f"\n===== python -m {' '.join(run)}", flush=True)
        try:
            rc = subprocess.run([sys.executable, "-m", *run], cwd=root, timeout=args.timeout, check=False).returncode
        except subprocess.TimeoutExpired:
            rc = -1
            print(f"{run[0]} did not finish within {args.timeout:.0f}s", flush=True)
        print(f"===== {run[0]} exited {rc} after {time.perf_counter() - t0:.0f}s", flush=True)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
