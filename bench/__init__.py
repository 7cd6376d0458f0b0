"""Benchmarks of bidtrace (issue 2): Merkle log vs merkletools/pymerkle, HTTP ingestion, proof verification.

Run one with `python -m bench.merkle`, `python -m bench ingest` (the notary side by side with Tessera),
`python -m bench.verify`, or all with `python -m bench`. Results and their interpretation are in bench/RESULTS.md.
"""
