"""Ledgers that anchor checkpoints: the `Ledger` interface, the embedded ledger and the Fabric client."""
