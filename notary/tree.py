"""RFC 9162 proof construction over a tree whose perfect subtrees are stored by (level, index).

A node (level, index) is the root of leaves [index * 2**level, (index + 1) * 2**level). Only perfect
subtrees are stored; the root of any other range is folded from the O(log n) perfect subtrees that
cover it. Proofs therefore need O(log n) node reads at any tree size, fetched in one round trip.
"""

from collections.abc import Callable, Iterable, Mapping

from verifier.merkle import EMPTY_ROOT, node_hash

NodeId = tuple[int, int]
FetchNodes = Callable[[Iterable[NodeId]], Mapping[NodeId, bytes]]


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def range_nodes(lo: int, hi: int) -> list[NodeId]:
    """Perfect subtrees covering [lo, hi) where lo is aligned to a power of two >= hi - lo, left to right."""
    nodes: list[NodeId] = []
    while lo < hi:
        size = hi - lo
        level = size.bit_length() - 1
        if size == 1 << level:
            nodes.append((level, lo >> level))
            break
        k = 1 << level
        nodes.append((level, lo >> level))
        lo += k
    return nodes


def fold(hashes: list[bytes]) -> bytes:
    """Root of a range from its covering perfect subtrees (left ones are larger, so fold right to left)."""
    node = hashes[-1]
    for left in reversed(hashes[:-1]):
        node = node_hash(left, node)
    return node


def _path_ranges(index: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The sibling ranges of PATH(index, D[lo:hi]) (RFC 9162 2.1.3.1), bottom-up."""
    ranges: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def _consistency_ranges(m: int, n: int) -> list[tuple[int, int]]:
    """The subtree ranges of PROOF(m, D[0:n]) (RFC 9162 2.1.4.1), bottom-up."""
    ranges: list[tuple[int, int]] = []
    lo, hi, complete = 0, n, True
    while True:
        if m == hi - lo:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m -= k
            lo += k
            complete = False
    ranges.reverse()
    return ranges


def _resolve(ranges: list[tuple[int, int]], fetch: FetchNodes) -> list[bytes]:
    covers = [range_nodes(lo, hi) for lo, hi in ranges]
    found = fetch({node for cover in covers for node in cover})
    return [fold([found[node] for node in cover]) for cover in covers]


def inclusion_proof(index: int, size: int, fetch: FetchNodes) -> list[bytes]:
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    return _resolve(_path_ranges(index, 0, size), fetch)


def consistency_proof(size1: int, size2: int, fetch: FetchNodes) -> list[bytes]:
    if not 0 <= size1 <= size2:
        raise ValueError(f"consistency needs 0 <= first <= second, got {size1} and {size2}")
    if size1 in (0, size2):
        return []
    return _resolve(_consistency_ranges(size1, size2), fetch)


def tree_root(size: int, fetch: FetchNodes) -> bytes:
    if size == 0:
        return EMPTY_ROOT
    return _resolve([(0, size)], fetch)[0]


class CompactRange:
    """The right edge of the tree: perfect subtree roots covering [0, size), used to append in O(1) amortised.

    `append` returns the new perfect nodes that the leaf completes, for the caller to store.
    """

    def __init__(self, size: int = 0, nodes: list[bytes] | None = None) -> None:
        self.size = size
        self.nodes = list(nodes or [])  # hashes of range_nodes(0, size), left (largest) to right

    @staticmethod
    def node_ids(size: int) -> list[NodeId]:
        return range_nodes(0, size) if size else []

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        index = self.size
        new: list[tuple[NodeId, bytes]] = [((0, index), leaf)]
        node, level = leaf, 0
        while index & 1:
            node = node_hash(self.nodes.pop(), node)
            index >>= 1
            level += 1
            new.append(((level, index), node))
        self.nodes.append(node)
        self.size += 1
        return new

    def root(self) -> bytes:
        return fold(self.nodes) if self.nodes else EMPTY_ROOT


def batch_tree(leaf_hashes: list[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """Root and every member's inclusion path of a small in-memory tree, in one bottom-up pass.

    Pairing neighbours level by level and carrying an unpaired last node up unchanged builds exactly
    the RFC 9162 tree, so these paths verify with `verifier.merkle.verify_inclusion`. A member i sits at
    index i >> level on every level, so its path is each level's neighbour of that index, where one exists.
    """
    if not leaf_hashes:
        raise ValueError("a batch needs at least one member")
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        level = levels[-1]
        up = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) & 1:
            up.append(level[-1])
        levels.append(up)
    shape = [(depth, len(level)) for depth, level in enumerate(levels[:-1])]
    paths = [
        [levels[d][(i >> d) ^ 1] for d, width in shape if (i >> d) ^ 1 < width]
        for i in range(len(leaf_hashes))
    ]
    return levels[-1][0], paths
