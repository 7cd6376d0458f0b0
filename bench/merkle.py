"""Merkle log: appends/s and inclusion-proof latency at 10^6 leaves, bidtrace vs merkletools and pymerkle.

All contenders run in this one process on the same entries (distinct, 32..100 bytes each):

  in memory   bidtrace CompactRange + dict node store + notary.tree.inclusion_proof
              pymerkle InmemoryTree (RFC 9162 hashing)
              merkletools MerkleTools (no leaf/node domain separation; proofs need make_tree() after appends)
  on SQLite   bidtrace: leaves and perfect-subtree nodes in the notary's own tables (notary.store, WAL,
              synchronous=FULL), written with the statements EvidenceLog._append uses, in transactions of
              --txn leaves; proofs through EvidenceLog.inclusion_proof (O(log n) node reads)
              pymerkle SqliteTree: append_entries() per --txn leaves (one transaction each); proofs
              recompute subtree roots from leaf rows, with its LRU subroot cache

Every proof timed is also checked: ours and pymerkle's with verifier.merkle.verify_inclusion against
the same RFC 9162 root (and pymerkle's with its own verifier), merkletools' with its validate_proof.

    python -m bench.merkle                 # 10^6 leaves
    python -m bench.merkle --leaves 100000 # quicker
"""

import argparse
import contextlib
import gc
import hashlib
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.common import Deadline, fmt_rate, fmt_us, machine, make_entries, percentile, table
from notary import store
from notary.keys import NotaryKey
from notary.log import EvidenceLog
from notary.tree import CompactRange, NodeId, inclusion_proof
from verifier.merkle import leaf_hash, verify_inclusion

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # merkletools warns that pysha3 is missing; sha256 does not need it
    import merkletools
import pymerkle


@dataclass
class Result:
    name: str
    backend: str  # "memory" or "sqlite"
    appended: int = 0
    append_seconds: float = 0.0
    build_seconds: float = 0.0  # work before the first proof is possible (merkletools' make_tree())
    proof_times: list[float] = field(default_factory=list)
    first_proof: float = float("nan")
    append_then_prove: list[float] = field(default_factory=list)
    checked: int = 0
    root: bytes | None = None
    note: str = ""

    @property
    def append_rate(self) -> float:
        return self.appended / self.append_seconds if self.append_seconds else float("nan")

    @property
    def ready_rate(self) -> float:
        """Appends/s counting the work needed before a proof can be given (a make_tree())."""
        total = self.append_seconds + self.build_seconds
        return self.appended / total if total else float("nan")

    def p(self, q: float) -> float:
        return percentile(sorted(self.proof_times), q)

    def atp(self) -> float:
        return percentile(sorted(self.append_then_prove), 0.5)


def _sample(size: int, count: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(size) for _ in range(count)]


def _time_appends(
    entries: list[bytes], budget: float, step: Callable[[list[bytes]], None], chunk: int
) -> tuple[int, float]:
    """Feed entries in chunks to `step` until done or the budget is spent; (count, seconds)."""
    deadline = Deadline(budget)
    done = 0
    t0 = time.perf_counter()
    while done < len(entries) and not deadline.passed():
        step(entries[done:done + chunk])
        done = min(len(entries), done + chunk)
    return done, time.perf_counter() - t0


# ----- bidtrace, in memory -----

def bench_ours_memory(entries: list[bytes], samples: list[int], budget: float) -> Result:
    res = Result("bidtrace CompactRange + dict", "memory")
    nodes: dict[NodeId, bytes] = {}
    tree = CompactRange()

    def step(chunk: list[bytes]) -> None:
        for e in chunk:
            for nid, h in tree.append(leaf_hash(e)):
                nodes[nid] = h

    res.appended, res.append_seconds = _time_appends(entries, budget, step, 10_000)
    size = tree.size
    root = res.root = tree.root()

    def fetch(ids: Iterable[NodeId]) -> Mapping[NodeId, bytes]:
        return {i: nodes[i] for i in ids}

    deadline = Deadline(budget)
    for k, i in enumerate(samples):
        if i >= size or deadline.passed():
            break
        t0 = time.perf_counter()
        proof = inclusion_proof(i, size, fetch)
        dt = time.perf_counter() - t0
        if k == 0:
            res.first_proof = dt
        res.proof_times.append(dt)
        verify_inclusion(nodes[(0, i)], i, size, proof, root)
        res.checked += 1
    # One more leaf, then a proof for it against the new root: what a receipt right after an append costs.
    for j in range(20):
        extra = hashlib.sha256(b"late" + j.to_bytes(4, "big")).digest()
        t0 = time.perf_counter()
        for nid, h in tree.append(leaf_hash(extra)):
            nodes[nid] = h
        proof = inclusion_proof(tree.size - 1, tree.size, fetch)
        res.append_then_prove.append(time.perf_counter() - t0)
        verify_inclusion(leaf_hash(extra), tree.size - 1, tree.size, proof, tree.root())
    return res


# ----- bidtrace, on its own SQLite tables -----

def bench_ours_sqlite(entries: list[bytes], samples: list[int], budget: float, txn: int, workdir: Path) -> Result:
    res = Result("bidtrace notary.store (SQLite WAL, FULL)", "sqlite")
    insert_many = getattr(store, "insert_many", None)
    engine = store.open_engine(f"sqlite:///{workdir / 'bidtrace.db'}")
    tree = CompactRange()
    sql_seconds = [0.0]

    def step(chunk: list[bytes]) -> None:
        # The rows and statements of EvidenceLog._append, one transaction per chunk.
        leaf_rows: list[dict[str, Any]] = []
        node_rows: list[dict[str, Any]] = []
        start = tree.size
        for e in chunk:
            seq = tree.size
            lh = leaf_hash(e)
            leaf_rows.append({
                "seq": seq, "record_hash": hashlib.sha256(e).digest(), "leaf_hash": lh, "entry": e,
                "project_id": "bench", "project_seq": seq, "batch_start": start, "batch_size": len(chunk),
            })
            # Level 0 lives in the leaves table; nodes holds the levels above (as EvidenceLog._append).
            node_rows.extend({"id": store.node_id(*nid), "hash": h} for nid, h in tree.append(lh)[1:])
        t0 = time.perf_counter()
        with engine.begin() as conn:
            if insert_many is not None:  # what EvidenceLog._append uses now
                insert_many(conn, store.leaves, leaf_rows)
                insert_many(conn, store.nodes, node_rows)
            else:  # earlier notary versions: SQLAlchemy Core executemany
                conn.execute(insert(store.leaves), leaf_rows)
                conn.execute(insert(store.nodes), node_rows)
        sql_seconds[0] += time.perf_counter() - t0

    res.appended, res.append_seconds = _time_appends(entries, budget, step, txn)
    sql_share = sql_seconds[0] / res.append_seconds if res.append_seconds else 0.0
    t0 = time.perf_counter()
    log = EvidenceLog(engine, NotaryKey.generate("bench"), "bench")  # reloads the tree edge from the DB
    reopen = time.perf_counter() - t0
    how = "store.insert_many" if insert_many is not None else "SQLAlchemy insert()"
    res.note = f"{how}+commit {sql_share:.0%} of append time; log reopened in {reopen:.2f}s"
    size = log.size
    root = res.root = log.root()
    deadline = Deadline(budget)
    for k, i in enumerate(samples):
        if i >= size or deadline.passed():
            break
        t0 = time.perf_counter()
        proof = log.inclusion_proof(i, size)
        dt = time.perf_counter() - t0
        if k == 0:
            res.first_proof = dt
        res.proof_times.append(dt)
        verify_inclusion(leaf_hash(entries[i]), i, size, proof, root)
        res.checked += 1
    for j in range(10):
        extra = hashlib.sha256(b"late" + j.to_bytes(4, "big")).digest()
        t0 = time.perf_counter()
        step([extra])  # one durable transaction (fsync)
        proof = inclusion_proof(tree.size - 1, tree.size, log._fetch)
        res.append_then_prove.append(time.perf_counter() - t0)
        verify_inclusion(leaf_hash(extra), tree.size - 1, tree.size, proof, tree.root())
    engine.dispose()
    return res


def bench_ours_sqlite_raw(entries: list[bytes], budget: float, txn: int, workdir: Path) -> Result:
    """Diagnostic: the same rows into the same schema and PRAGMAs, through sqlite3.executemany directly.

    The gap to `bench_ours_sqlite` is what SQLAlchemy's per-row parameter processing costs.
    """
    res = Result("diag: bidtrace schema via raw sqlite3", "sqlite")
    engine = store.open_engine(f"sqlite:///{workdir / 'bidtrace-raw.db'}")  # creates tables, sets WAL + FULL
    raw = engine.raw_connection()
    dbapi: Any = raw.driver_connection
    tree = CompactRange()
    shift = store.LEVEL_SHIFT

    def step(chunk: list[bytes]) -> None:
        leaf_rows: list[tuple[Any, ...]] = []
        node_rows: list[tuple[int, bytes]] = []
        start = tree.size
        for e in chunk:
            seq = tree.size
            lh = leaf_hash(e)
            leaf_rows.append((seq, hashlib.sha256(e).digest(), lh, e, "bench", seq, start, len(chunk)))
            node_rows.extend(((level << shift) | index, h) for (level, index), h in tree.append(lh)[1:])
        with dbapi:  # one transaction, committed (fsync) on exit
            dbapi.executemany(
                "INSERT INTO leaves (seq, record_hash, leaf_hash, entry, project_id, project_seq, batch_start, "
                "batch_size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", leaf_rows,
            )
            dbapi.executemany("INSERT INTO nodes (id, hash) VALUES (?, ?)", node_rows)

    res.appended, res.append_seconds = _time_appends(entries, budget, step, txn)
    res.note = "append only (proofs as above)"
    with contextlib.suppress(Exception):
        raw.close()
    engine.dispose()
    return res


# ----- pymerkle -----

def _check_pymerkle(proof: Any, base: bytes, index0: int, size: int, root: bytes) -> None:
    pymerkle.verify_inclusion(base, root, proof)
    path = list(proof.path)
    if path[0] != base:
        raise AssertionError("pymerkle proof does not start at the leaf")
    verify_inclusion(base, index0, size, path[1:], root)  # the same proof checked by the RFC 9162 verifier


def _bench_pymerkle(res: Result, tree: Any, entries: list[bytes], samples: list[int], budget: float,
                    step: Callable[[list[bytes]], None], chunk: int) -> Result:
    res.appended, res.append_seconds = _time_appends(entries, budget, step, chunk)
    size = tree.get_size()
    root = res.root = tree.get_root()
    deadline = Deadline(budget)
    for k, i in enumerate(samples):
        if i >= size or deadline.passed():
            break
        t0 = time.perf_counter()
        proof = tree.prove_inclusion(i + 1)  # pymerkle counts leaves from one
        dt = time.perf_counter() - t0
        if k == 0:
            res.first_proof = dt
        res.proof_times.append(dt)
        _check_pymerkle(proof, leaf_hash(entries[i]), i, size, root)
        res.checked += 1
    for j in range(10):
        extra = hashlib.sha256(b"late" + j.to_bytes(4, "big")).digest()
        t0 = time.perf_counter()
        index = tree.append_entry(extra)  # SqliteTree: one committed transaction, like ours
        proof = tree.prove_inclusion(index)
        res.append_then_prove.append(time.perf_counter() - t0)
        _check_pymerkle(proof, leaf_hash(extra), index - 1, index, tree.get_root())
    return res


def bench_pymerkle_memory(entries: list[bytes], samples: list[int], budget: float) -> Result:
    tree = pymerkle.InmemoryTree()

    def step(chunk: list[bytes]) -> None:
        for e in chunk:
            tree.append_entry(e)

    return _bench_pymerkle(Result("pymerkle InmemoryTree", "memory"), tree, entries, samples, budget, step, 10_000)


def bench_pymerkle_sqlite(entries: list[bytes], samples: list[int], budget: float, txn: int, workdir: Path) -> Result:
    tree = pymerkle.SqliteTree(str(workdir / "pymerkle.db"))

    def step(chunk: list[bytes]) -> None:
        tree.append_entries(chunk)  # one transaction per call

    try:
        return _bench_pymerkle(
            Result("pymerkle SqliteTree", "sqlite"), tree, entries, samples, budget, step, txn
        )
    finally:
        tree.close()


# ----- merkletools -----

def bench_merkletools(entries: list[bytes], samples: list[int], budget: float) -> Result:
    res = Result("merkletools MerkleTools", "memory")
    mt = merkletools.MerkleTools(hash_type="sha256")

    def step(chunk: list[bytes]) -> None:
        # merkletools takes hex leaf values; the hash is plain SHA-256 (no 0x00 leaf prefix).
        mt.add_leaf([hashlib.sha256(e).hexdigest() for e in chunk])

    res.appended, res.append_seconds = _time_appends(entries, budget, step, 10_000)
    t0 = time.perf_counter()
    mt.make_tree()
    res.build_seconds = time.perf_counter() - t0
    res.note = f"make_tree() {res.build_seconds:.2f}s"
    size = mt.get_leaf_count()
    root_hex = mt.get_merkle_root()
    res.root = bytes.fromhex(root_hex)
    deadline = Deadline(budget)
    for k, i in enumerate(samples):
        if i >= size or deadline.passed():
            break
        t0 = time.perf_counter()
        proof = mt.get_proof(i)
        dt = time.perf_counter() - t0
        if k == 0:
            res.first_proof = dt
        res.proof_times.append(dt)
        if not mt.validate_proof(proof, hashlib.sha256(entries[i]).hexdigest(), root_hex):
            raise AssertionError(f"merkletools proof for leaf {i} does not validate")
        res.checked += 1
    # A proof right after an append needs the whole tree rebuilt: make_tree() is O(n).
    late_deadline = Deadline(budget)
    for j in range(5):
        if late_deadline.passed():
            break
        extra = hashlib.sha256(b"late" + j.to_bytes(4, "big")).hexdigest()
        t0 = time.perf_counter()
        mt.add_leaf(extra)
        mt.make_tree()
        proof = mt.get_proof(mt.get_leaf_count() - 1)
        res.append_then_prove.append(time.perf_counter() - t0)
        if not mt.validate_proof(proof, extra, mt.get_merkle_root()):
            raise AssertionError("merkletools proof after append does not validate")
    return res


# ----- report -----

def _ratio(ours: float, theirs: float) -> str:
    if not (ours == ours and theirs == theirs) or theirs == 0:
        return "-"
    return f"{ours / theirs:.3g}×"


def report(results: list[Result], n: int) -> str:
    rows = []
    for r in results:
        rows.append([
            r.name, r.backend, f"{r.appended:,}", fmt_rate(r.append_rate), fmt_us(r.first_proof),
            fmt_us(r.p(0.5)), fmt_us(r.p(0.99)), fmt_us(r.atp()), f"{r.checked:,}",
            fmt_rate(r.ready_rate), r.note,
        ])
    out = [table(
        ["contender", "store", "leaves", "appends", "1st proof", "proof p50", "proof p99", "append+prove p50",
         "proofs checked", "appends incl. tree build", "notes"], rows,
    )]
    by = {r.name: r for r in results}
    pairs = [
        ("bidtrace CompactRange + dict", "pymerkle InmemoryTree"),
        ("bidtrace CompactRange + dict", "merkletools MerkleTools"),
        ("bidtrace notary.store (SQLite WAL, FULL)", "pymerkle SqliteTree"),
    ]
    ratio_rows = []
    for ours, theirs in pairs:
        if ours in by and theirs in by:
            a, b = by[ours], by[theirs]
            ratio_rows.append([
                f"{ours} / {theirs}", _ratio(a.append_rate, b.append_rate), _ratio(a.ready_rate, b.ready_rate),
                _ratio(a.p(0.5), b.p(0.5)),
                _ratio(a.p(0.99), b.p(0.99)), _ratio(a.atp(), b.atp()),
            ])
    if ratio_rows:
        out.append("\nRatios ours / theirs (appends: >1 means we are faster; times: <1 means we are faster)")
        headers = ["pair", "appends/s", "appends/s incl. build", "proof p50", "proof p99", "append+prove p50"]
        out.append(table(headers, ratio_rows))
    rfc = [r for r in results if r.name != "merkletools MerkleTools" and r.root is not None]
    roots = {r.root for r in rfc if r.appended == n}
    if len(roots) == 1:
        out.append(f"\nRFC 9162 root at {n:,} leaves agrees across {len(rfc)} trees: {next(iter(roots)).hex()}")
    elif roots:
        out.append(f"\nWARNING: RFC 9162 roots differ: {sorted(r.hex() for r in roots)}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2000, help="random leaves to prove per contender")
    parser.add_argument("--txn", type=int, default=10_000, help="leaves per SQLite transaction when loading")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds allowed per phase per contender")
    parser.add_argument(
        "--only", default="", help="comma-separated subset of ours-mem,pym-mem,mt,ours-sql,pym-sql,ours-raw"
    )
    args = parser.parse_args(argv)
    only = {s for s in args.only.split(",") if s}

    print(f"# Merkle log benchmark, {args.leaves:,} leaves\n{machine()}\n", flush=True)
    t0 = time.perf_counter()
    entries = make_entries(args.leaves)
    print(f"generated {len(entries):,} entries of 32..100 bytes in {time.perf_counter() - t0:.1f}s", flush=True)
    samples = _sample(args.leaves, args.proofs, seed=2)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bidtrace-bench-") as tmp:
        work = Path(tmp)
        plan: list[tuple[str, Callable[[], Result]]] = [
            ("ours-mem", lambda: bench_ours_memory(entries, samples, args.budget)),
            ("pym-mem", lambda: bench_pymerkle_memory(entries, samples, args.budget)),
            ("mt", lambda: bench_merkletools(entries, samples, args.budget)),
            ("ours-sql", lambda: bench_ours_sqlite(entries, samples, args.budget, args.txn, work)),
            ("pym-sql", lambda: bench_pymerkle_sqlite(entries, samples, args.budget, args.txn, work)),
            ("ours-raw", lambda: bench_ours_sqlite_raw(entries, args.budget, args.txn, work)),
        ]
        for key, run in plan:
            if only and key not in only:
                continue
            gc.collect()
            t0 = time.perf_counter()
            r = run()
            if r.appended < args.leaves:
                r.note = (r.note + "; " if r.note else "") + f"stopped by --budget at {r.appended:,} leaves"
            results.append(r)
            print(f"  {r.name}: {fmt_rate(r.append_rate)} appends, proof p50 {fmt_us(r.p(0.5))}, "
                  f"p99 {fmt_us(r.p(0.99))} ({time.perf_counter() - t0:.0f}s)", flush=True)
            del r
            gc.collect()
    print()
    print(report(results, args.leaves))
    return 0


if __name__ == "__main__":
    sys.exit(main())
