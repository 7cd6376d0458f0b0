"""The notary: the append-only evidence log, its proofs, receipts, checkpoints, anchoring and HTTP API."""
