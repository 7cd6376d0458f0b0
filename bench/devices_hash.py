"""Segment hashing throughput: devices.recorder.sha256_file against `openssl dgst -sha256` and `sha256sum`.

The same files (default 8 × 64 MiB, pseudo-random, in a temp dir) are hashed by each tool; the page cache
is warmed first so all read from memory, as a freshly closed segment file would be. Each tool's best of
--repeat runs is reported in MB/s (10^6 bytes/s) with its ratio to OpenSSL. Digests are cross-checked.

    python -m bench.devices_hash [--files 8] [--mib 64] [--repeat 5]
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import machine, table
from devices.recorder import sha256_file


def make_files(directory: Path, count: int, mib: int) -> list[Path]:
    block = os.urandom(1 << 20)
    paths = []
    for i in range(count):
        path = directory / f"segment-{i:02d}.bin"
        with open(path, "wb") as f:
            for j in range(mib):
                f.write(hashlib.sha256(f"{i}/{j}".encode()).digest() + block[32:])
        paths.append(path)
    return paths


def file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def run_cli(cmd: list[str], files: list[Path]) -> dict[str, str]:
    out = subprocess.run([*cmd, *map(str, files)], capture_output=True, text=True, check=True).stdout
    digests: dict[str, str] = {}
    for line in out.splitlines():
        if line.startswith("SHA2-256(") or line.startswith("SHA256("):  # openssl: SHA2-256(path)= hex
            name, _, hexd = line.partition(")= ")
            digests[name.split("(", 1)[1]] = hexd.strip()
        else:  # sha256sum: hex  path
            hexd, _, name = line.partition("  ")
            digests[name] = hexd
    return digests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    openssl, sha256sum = shutil.which("openssl"), shutil.which("sha256sum")
    tmp = Path(tempfile.mkdtemp(prefix="bidtrace-hash-"))
    try:
        files = make_files(tmp, args.files, args.mib)
        total = sum(p.stat().st_size for p in files)
        for p in files:  # warm the page cache
            sha256_file(p)
        tools: dict[str, Callable[[], dict[str, str]]] = {
            "devices.recorder.sha256_file": lambda: {str(p): sha256_file(p)[0] for p in files},
            "hashlib.file_digest (stdlib)": lambda: {str(p): file_digest(p) for p in files},
        }
        if openssl:
            tools["openssl dgst -sha256"] = lambda: run_cli([openssl, "dgst", "-sha256"], files)
        if sha256sum:
            tools["sha256sum"] = lambda: run_cli([sha256sum], files)
        best: dict[str, float] = {}
        reference: dict[str, str] | None = None
        for _ in range(args.repeat):
            for name, fn in tools.items():
                t0 = time.perf_counter()
                digests = fn()
                elapsed = time.perf_counter() - t0
                best[name] = min(best.get(name, float("inf")), elapsed)
                if reference is None:
                    reference = digests
                elif digests != reference:
                    raise SystemExit(f"{name} disagrees with the other tools")
        base = best.get("openssl dgst -sha256")
        rows = []
        for name, seconds in best.items():
            rate = total / seconds / 1e6
            ratio = f"{base / seconds:.2f}" if base else "-"
            rows.append([name, f"{rate:,.0f} MB/s", f"{seconds * 1000:,.0f} ms", ratio])
        print(machine())
        print(f"\n{args.files} files × {args.mib} MiB = {total / 2**20:,.0f} MiB from the page cache, "
              f"best of {args.repeat}; digests agree\n")
        print(table(["hasher", "throughput", "time", "vs openssl"], rows))
        if base:
            ours = base / best["devices.recorder.sha256_file"]
            print(f"\nsha256_file reaches {ours:.2f} of OpenSSL's rate (target >= 0.90): "
                  + ("met" if ours >= 0.9 else "NOT met"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
