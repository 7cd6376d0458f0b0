"""RFC 9162 hashing and proofs: the RFC 6962 reference vectors, corrupted proofs, and properties."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from notary.tree import CompactRange, batch_tree, consistency_proof, inclusion_proof, tree_root
from verifier import merkle
from verifier.errors import ConsistencyProofError, InclusionProofError, MalformedInput, VerificationError

# The reference tree of RFC 6962's test suite (as published with transparency-dev/merkle).
LEAVES = [bytes.fromhex(h) for h in [
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
ROOTS = [bytes.fromhex(h) for h in [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]]
INCLUSION = [  # (leaf index, tree size, proof)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [  # (size1, size2, proof)
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def _h(proof: list[str]) -> list[bytes]:
    return [bytes.fromhex(p) for p in proof]


def _stored(entries: list[bytes]) -> tuple[dict[tuple[int, int], bytes], list[bytes]]:
    store: dict[tuple[int, int], bytes] = {}
    tree = CompactRange()
    roots = []
    for e in entries:
        store.update(tree.append(merkle.leaf_hash(e)))
        roots.append(tree.root())
    return store, roots


def test_reference_roots() -> None:
    for size in range(1, 9):
        assert merkle.root(LEAVES[:size]) == ROOTS[size - 1]
    assert merkle.root([]) == hashlib.sha256(b"").digest()


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_reference_inclusion_proofs_verify_and_are_what_we_build(index: int, size: int, proof: list[str]) -> None:
    leaf = merkle.leaf_hash(LEAVES[index])
    merkle.verify_inclusion(leaf, index, size, _h(proof), ROOTS[size - 1])
    store, _ = _stored(LEAVES[:size])
    assert inclusion_proof(index, size, lambda ids: {i: store[i] for i in ids}) == _h(proof)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_reference_consistency_proofs_verify_and_are_what_we_build(size1: int, size2: int, proof: list[str]) -> None:
    merkle.verify_consistency(size1, size2, _h(proof), ROOTS[size1 - 1], ROOTS[size2 - 1])
    store, _ = _stored(LEAVES[:size2])
    assert consistency_proof(size1, size2, lambda ids: {i: store[i] for i in ids}) == _h(proof)


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[int, int, bytes, bytes, list[bytes]]]:
    probes = [
        (index - 1, size, root, leaf, proof), (index + 1, size, root, leaf, proof),
        (index ^ 2, size, root, leaf, proof), (index, size * 2, root, leaf, proof),
        (index, size // 2, root, leaf, proof), (index, size, root, merkle.leaf_hash(b"WrongLeaf"), proof),
        (index, size, merkle.EMPTY_ROOT, leaf, proof), (index, size, SOME_HASH, leaf, proof),
        (index, size, root, leaf, [*proof, root]), (index, size, root, leaf, [root, *proof]),
        (index, size, root, leaf, proof[:-1]), (index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([proof[i][0] ^ 8]) + proof[i][1:]
        probes.append((index, size, root, leaf, flipped))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[str]) -> None:
    good = _h(proof)
    for i, s, r, leaf, p in _inclusion_probes(index, size, good, ROOTS[size - 1], merkle.leaf_hash(LEAVES[index])):
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(leaf, i, s, p, r)


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_corrupted_consistency_proofs_fail(size1: int, size2: int, proof: list[str]) -> None:
    good, r1, r2 = _h(proof), ROOTS[size1 - 1], ROOTS[size2 - 1]
    probes = [
        (size1 - 1, size2, r1, r2, good), (size1 + 1, size2, r1, r2, good), (size1 ^ 2, size2, r1, r2, good),
        (size1, size2 * 2, r1, r2, good), (size1, size2 // 2, r1, r2, good), (size1, size2, SOME_HASH, r2, good),
        (size1, size2, r1, SOME_HASH, good), (size1, size2, r2, r1, good), (size1, size2, r1, r2, []),
        (size1, size2, r1, r2, [*good, r1]), (size1, size2, r1, r2, [*good, r2]),
        (size1, size2, r1, r2, [r1, *good]), (size1, size2, r1, r2, [r2, *good]),
        (size1, size2, r1, r2, [good[0], *good]), (size1, size2, r1, r2, good[:-1]),
    ]
    for i in range(len(good)):
        flipped = list(good)
        flipped[i] = bytes([good[i][0] ^ 16]) + good[i][1:]
        probes.append((size1, size2, r1, r2, flipped))
    for s1, s2, a, b, p in probes:
        if s1 == s2 and a == b and not p:
            continue  # trivially consistent, not a corruption
        with pytest.raises(VerificationError):
            merkle.verify_consistency(s1, s2, p, a, b)


def test_edge_cases_of_verification() -> None:
    leaf = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    for index, size in [(0, 0), (1, 0), (2, 1), (-1, 4)]:
        with pytest.raises(InclusionProofError):
            merkle.verify_inclusion(leaf, index, size, [], leaf)
    with pytest.raises(MalformedInput, match="32 bytes"):
        merkle.verify_inclusion(b"short", 0, 1, [], leaf)
    with pytest.raises(MalformedInput, match="inclusion proof\\[0\\]"):
        merkle.verify_inclusion(leaf, 0, 2, [b"x" * 31], leaf)
    merkle.verify_consistency(0, 5, [], SOME_HASH, ROOTS[4])
    merkle.verify_consistency(3, 3, [], ROOTS[2], ROOTS[2])
    with pytest.raises(ConsistencyProofError, match="different roots"):
        merkle.verify_consistency(3, 3, [], ROOTS[2], ROOTS[3])
    with pytest.raises(ConsistencyProofError, match="0 <= first <= second"):
        merkle.verify_consistency(5, 3, [], ROOTS[4], ROOTS[2])
    with pytest.raises(ConsistencyProofError, match="need an empty proof"):
        merkle.verify_consistency(3, 3, [SOME_HASH], ROOTS[2], ROOTS[2])


def test_error_says_what_was_expected_and_found() -> None:
    leaf = merkle.leaf_hash(LEAVES[0])
    with pytest.raises(InclusionProofError, match=f"expected {SOME_HASH.hex()}"):
        merkle.verify_inclusion(leaf, 0, 8, _h(INCLUSION[0][2]), SOME_HASH)


@settings(max_examples=60, deadline=None)
@given(entries=st.lists(st.binary(max_size=40), min_size=1, max_size=140), data=st.data())
def test_every_proof_the_notary_builds_verifies_and_every_mutation_fails(
    entries: list[bytes], data: st.DataObject
) -> None:
    store, roots = _stored(entries)
    fetch = lambda ids: {i: store[i] for i in ids}  # noqa: E731
    n = len(entries)
    assert tree_root(n, fetch) == merkle.root(entries) == roots[-1]
    index = data.draw(st.integers(0, n - 1))
    size = data.draw(st.integers(index + 1, n))
    proof = inclusion_proof(index, size, fetch)
    leaf = merkle.leaf_hash(entries[index])
    merkle.verify_inclusion(leaf, index, size, proof, roots[size - 1])
    if proof:
        k = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        mutated = list(proof)
        mutated[k] = bytes([proof[k][bit // 8] ^ (1 << bit % 8)]).join([proof[k][: bit // 8], proof[k][bit // 8 + 1:]])
        with pytest.raises(VerificationError):
            merkle.verify_inclusion(leaf, index, size, mutated, roots[size - 1])
    first = data.draw(st.integers(0, n))
    cproof = consistency_proof(first, n, fetch)
    old_root = roots[first - 1] if first else merkle.EMPTY_ROOT
    merkle.verify_consistency(first, n, cproof, old_root, roots[-1])
    if cproof:
        k = data.draw(st.integers(0, len(cproof) - 1))
        mutated = list(cproof)
        mutated[k] = bytes([cproof[k][0] ^ 1]) + cproof[k][1:]
        with pytest.raises(VerificationError):
            merkle.verify_consistency(first, n, mutated, old_root, roots[-1])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=16), min_size=1, max_size=70))
def test_batch_tree_paths_are_rfc9162_inclusion_proofs(members: list[bytes]) -> None:
    hashes = [merkle.leaf_hash(m) for m in members]
    root, paths = batch_tree(hashes)
    assert root == merkle.root(members)
    for i, path in enumerate(paths):
        merkle.verify_inclusion(hashes[i], i, len(members), path, root)
