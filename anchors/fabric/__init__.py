"""Fabric Gateway client (Gateway -> Network -> Contract) and the `FabricLedger` built on it."""

from anchors.fabric.gateway import ChaincodeEvent, CommitError, Contract, Gateway, Network, Timeouts
from anchors.fabric.identity import Identity, Signer, load_msp
from anchors.fabric.ledger import FabricLedger, open_fabric_ledger, profile_path

__all__ = [
    "ChaincodeEvent",
    "CommitError",
    "Contract",
    "FabricLedger",
    "Gateway",
    "Identity",
    "Network",
    "Signer",
    "Timeouts",
    "load_msp",
    "open_fabric_ledger",
    "profile_path",
]
