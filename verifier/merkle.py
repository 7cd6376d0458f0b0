"""RFC 9162 (Certificate Transparency 2.0) Merkle tree hashing and proof verification.

Leaves are hashed as SHA-256(0x00 || entry), interior nodes as SHA-256(0x01 || left || right)
(RFC 9162 section 2.1.1). Verification follows sections 2.1.3.2 (inclusion) and 2.1.4.2 (consistency)
literally, so proofs checked here are the ones any RFC 9162 verifier accepts.
"""

import hashlib
import re
from collections.abc import Sequence

from verifier.errors import ConsistencyProofError, InclusionProofError, MalformedInput

HASH_SIZE = 32
_LOWER_HEX = re.compile(r"[0-9a-f]*")
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves: Sequence[bytes]) -> bytes:
    """MTH of raw entries (hashed here as leaves); the empty tree's root is SHA-256 of nothing."""
    return root_of_hashes([leaf_hash(entry) for entry in leaves])


def root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH over leaf hashes, folding perfect subtrees left to right like a compact range."""
    if not hashes:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (height, hash) of perfect subtrees, left to right
    for h in hashes:
        height, node = 0, h
        while stack and stack[-1][0] == height:
            node = node_hash(stack.pop()[1], node)
            height += 1
        stack.append((height, node))
    node = stack.pop()[1]
    while stack:
        node = node_hash(stack.pop()[1], node)
    return node


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise MalformedInput(f"{what}[{i}] must be {HASH_SIZE} bytes, got {_describe(h)}")


def _describe(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return f"{len(value)} bytes"
    return type(value).__name__


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that an inclusion proof implies (RFC 9162 section 2.1.3.2, steps 1-5)."""
    _check_hashes("leaf hash", [leaf])
    _check_hashes("inclusion proof", proof)
    if not 0 <= index < size:
        raise InclusionProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            raise InclusionProofError(f"proof has {len(proof)} nodes, more than a tree of size {size} needs")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InclusionProofError(f"proof has {len(proof)} nodes, fewer than a tree of size {size} needs")
    return r


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Raise InclusionProofError unless `proof` shows leaf `index` of a `size`-leaf tree has `root`."""
    _check_hashes("root", [root])
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise InclusionProofError(
            f"inclusion proof for leaf {index} of {size} leads to root {computed.hex()}, expected {root.hex()}"
        )


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Raise ConsistencyProofError unless the tree (size2, root2) extends (size1, root1)."""
    _check_hashes("root", [root1, root2])
    _check_hashes("consistency proof", proof)
    if not 0 <= size1 <= size2:
        raise ConsistencyProofError(f"sizes must satisfy 0 <= first <= second, got {size1} and {size2}")
    if size1 == size2:
        if proof:
            raise ConsistencyProofError(f"trees of equal size need an empty proof, got {len(proof)} nodes")
        if root1 != root2:
            raise ConsistencyProofError(
                f"two trees of size {size1} have different roots {root1.hex()} and {root2.hex()}"
            )
        return
    if size1 == 0:
        if proof:
            raise ConsistencyProofError(f"the empty tree needs an empty proof, got {len(proof)} nodes")
        return
    if not proof:
        raise ConsistencyProofError(f"proof from size {size1} to {size2} is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # an exact power of two: the old root is itself a node of the new tree
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ConsistencyProofError(f"proof has more nodes than trees of {size1} and {size2} need")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ConsistencyProofError(f"proof has fewer nodes than trees of {size1} and {size2} need")
    if fr != root1:
        raise ConsistencyProofError(
            f"proof reconstructs the size-{size1} root as {fr.hex()}, expected {root1.hex()}"
        )
    if sr != root2:
        raise ConsistencyProofError(
            f"proof reconstructs the size-{size2} root as {sr.hex()}, expected {root2.hex()}"
        )


def hex_hashes(what: str, values: object) -> list[bytes]:
    """Decode a JSON list of lower-case hex node hashes, naming the field on error."""
    if not isinstance(values, list):
        raise MalformedInput(f"{what} must be a list of hex hashes, got {type(values).__name__}")
    return [hex_hash(f"{what}[{i}]", v) for i, v in enumerate(values)]


def hex_hash(what: str, value: object) -> bytes:
    # Lower-case only: one hash, one spelling, so no byte of evidence can change without changing its hash.
    if not isinstance(value, str) or len(value) != 2 * HASH_SIZE:
        raise MalformedInput(f"{what} must be {2 * HASH_SIZE} hex characters, got {value!r:.80}")
    if not _LOWER_HEX.fullmatch(value):
        raise MalformedInput(f"{what} must be lower-case hex, got {value!r:.80}")
    return bytes.fromhex(value)
