"""Helpers shared by the benchmarks: test data, timing statistics, machine description, tables."""

import hashlib
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime


def make_entries(n: int) -> list[bytes]:
    """n distinct entries of 32..100 bytes (the first 32 bytes are SHA-256 of the index)."""
    out: list[bytes] = []
    for i in range(n):
        base = hashlib.sha256(i.to_bytes(8, "big")).digest()
        length = 32 + (i * 7919) % 69
        out.append((base * 4)[:length])
    return out


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (q in [0, 1])."""
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[k]


def fmt_us(seconds: float) -> str:
    if seconds != seconds:  # NaN
        return "-"
    us = seconds * 1e6
    if us >= 100_000:
        return f"{seconds * 1e3:,.0f} ms"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.1f} µs"


def fmt_rate(per_second: float) -> str:
    if per_second != per_second:
        return "-"
    return f"{per_second:,.0f}/s"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text (and Markdown-compatible) table."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for row in f:
                if row.startswith("model name"):
                    return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> str:
    try:
        with open("/proc/meminfo") as f:
            for row in f:
                if row.startswith("MemTotal:"):
                    return f"{int(row.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} {five:.2f} {fifteen:.2f}"
    except OSError:
        return "unknown"


def machine() -> str:
    """One line describing where and when a benchmark ran."""
    try:
        sqlite = subprocess.run(
            [sys.executable, "-c", "import sqlite3; print(sqlite3.sqlite_version)"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sqlite = "?"
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        head = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", "notary", "verifier"],
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
        commit = f"{head}{' + uncommitted notary/verifier changes' if dirty else ''}" if head else "?"
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    return (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · nproc {os.cpu_count()} · {_cpu_model()} · RAM {_ram_gib()} · "
        f"Python {platform.python_version()} · SQLite {sqlite} · load avg {_load()} · commit {commit}"
    )


class Deadline:
    """A time bound for a loop: `while not deadline.passed()`."""

    def __init__(self, seconds: float) -> None:
        self.start = time.perf_counter()
        self.end = self.start + seconds

    def passed(self) -> bool:
        return time.perf_counter() >= self.end

    def elapsed(self) -> float:
        return time.perf_counter() - self.start
