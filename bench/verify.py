"""Inclusion-proof verifications per second at 10^6 leaves: verifier.merkle.verify_inclusion vs pymerkle.

A 10^6-leaf RFC 9162 tree is built with the notary's CompactRange; proofs for random leaves come from
notary.tree.inclusion_proof (20 hashes each at this size). The timed loop verifies them, each against
the tree's root; a tampered copy of every 100th proof must be rejected (checked outside the clock).

pymerkle's verify_inclusion is fed the very same proofs as pymerkle InclusionProof objects (rule bits
from pymerkle's own path layout for that index and size), so both verifiers do identical hashing work.

    python -m bench.verify
    python -m bench.verify --leaves 100000 --proofs 20000
"""

import argparse
import random
import sys
import time
from collections.abc import Iterable, Mapping

import pymerkle
from pymerkle.core import _inclusion_path_layout  # the layout pymerkle's own prover uses

from bench.common import Deadline, fmt_rate, fmt_us, machine, make_entries, table
from notary.tree import CompactRange, NodeId, inclusion_proof
from verifier.errors import InclusionProofError
from verifier.merkle import leaf_hash, verify_inclusion


def build(n: int) -> tuple[CompactRange, dict[NodeId, bytes]]:
    nodes: dict[NodeId, bytes] = {}
    tree = CompactRange()
    for e in make_entries(n):
        for nid, h in tree.append(leaf_hash(e)):
            nodes[nid] = h
    return tree, nodes


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound of each timed loop")
    args = parser.parse_args(argv)

    print(f"# Inclusion-proof verification benchmark, {args.leaves:,} leaves\n{machine()}\n", flush=True)
    t0 = time.perf_counter()
    tree, nodes = build(args.leaves)
    size, root = tree.size, tree.root()

    def fetch(ids: Iterable[NodeId]) -> Mapping[NodeId, bytes]:
        return {i: nodes[i] for i in ids}

    rng = random.Random(3)
    cases = []
    for _ in range(args.proofs):
        i = rng.randrange(size)
        cases.append((nodes[(0, i)], i, inclusion_proof(i, size, fetch)))
    avg_len = sum(len(p) for _, _, p in cases) / len(cases)
    print(f"tree of {size:,} leaves and {len(cases):,} proofs (avg {avg_len:.1f} hashes) built in "
          f"{time.perf_counter() - t0:.1f}s", flush=True)

    # Tampered proofs must fail (outside the clock).
    rejected = 0
    for k, (lh, i, proof) in enumerate(cases[::100]):
        bad = list(proof)
        j = k % len(bad)
        bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
        try:
            verify_inclusion(lh, i, size, bad, root)
        except InclusionProofError:
            rejected += 1
    if rejected != len(cases[::100]):
        raise AssertionError("a tampered proof verified")

    rows = []
    deadline = Deadline(args.seconds)
    done = 0
    t0 = time.perf_counter()
    for lh, i, proof in cases:
        if deadline.passed():
            break
        verify_inclusion(lh, i, size, proof, root)
        done += 1
    ours = time.perf_counter() - t0
    rows.append(["verifier.merkle.verify_inclusion", f"{done:,}", fmt_rate(_rate(done, ours)),
                 fmt_us(ours / done if done else float("nan"))])

    pm_proofs = []
    for lh, i, proof in cases:
        rule, _ = _inclusion_path_layout(i + 1, size)
        pm_proofs.append((lh, pymerkle.InclusionProof("sha256", True, size, i + 1, rule, [lh, *proof])))
    deadline = Deadline(args.seconds)
    pm_done = 0
    t0 = time.perf_counter()
    for lh, p in pm_proofs:
        if deadline.passed():
            break
        pymerkle.verify_inclusion(lh, root, p)
        pm_done += 1
    theirs = time.perf_counter() - t0
    rows.append(["pymerkle.verify_inclusion (same proofs)", f"{pm_done:,}", fmt_rate(_rate(pm_done, theirs)),
                 fmt_us(theirs / pm_done if pm_done else float("nan"))])
    print(table(["verifier", "proofs verified", "rate", "per proof"], rows))
    if done and pm_done:
        print(f"\nratio ours / pymerkle (rate): {_rate(done, ours) / _rate(pm_done, theirs):.2f}×; "
              f"{rejected} tampered proofs rejected by ours")
    return 0


if __name__ == "__main__":
    sys.exit(main())
