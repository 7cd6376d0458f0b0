"""The evidence smart contract: one class, run by the embedded ledger in process and by Fabric peers."""
