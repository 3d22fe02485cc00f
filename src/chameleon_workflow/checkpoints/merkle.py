"""The Merkle tree of RFC 9162 (Certificate Transparency 2.0), its proofs and their checks.

Leaf hash ``SHA-256(0x00 || data)``, node hash ``SHA-256(0x01 || left || right)``, and the
tree over ``n`` leaves splits at the largest power of two below ``n``. Every proof is a
list of hashes of sub-ranges of the leaves; which ranges is a pure function of the
indices and sizes (``inclusion_ranges``, ``consistency_ranges``), so a caller computes
them all in one streaming pass over the leaf hashes (``range_hashes``) in constant memory
per range, whatever the size of the tree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

#: Root of the empty tree: the hash of nothing.
EMPTY_ROOT = hashlib.sha256(b"").digest()

Range = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """Hash one leaf's data (domain-separated from nodes by a 0x00 prefix)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node from its two children (prefix 0x01)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(size: int) -> int:
    """Return the largest power of two strictly below ``size`` (``size`` > 1)."""
    return 1 << ((size - 1).bit_length() - 1)


# ------------------------------------------------------------------ frontier


def append_leaf(frontier: list[bytes], size: int, leaf: bytes) -> None:
    """Add leaf number ``size`` to ``frontier`` (in place).

    The frontier holds the roots of the perfect subtrees that cover a tree of ``size``
    leaves, largest first (one per set bit of ``size``); appending merges equal sizes
    like a binary counter carries.
    """
    frontier.append(leaf)
    carries = size
    while carries & 1:
        right = frontier.pop()
        frontier[-1] = node_hash(frontier[-1], right)
        carries >>= 1


def append_leaf_keeping(
    frontier: list[bytes], size: int, leaf: bytes, min_level: int
) -> list[tuple[int, int, bytes]]:
    """Add leaf number ``size`` like ``append_leaf``; return the perfect subtrees it completes.

    Each is ``(level, index, hash)``: the subtree over leaves ``index * 2**level`` up to
    ``(index + 1) * 2**level``; only levels of at least ``min_level`` are returned.
    """
    completed = []
    frontier.append(leaf)
    carries, level = size, 0
    while carries & 1:
        right = frontier.pop()
        frontier[-1] = node_hash(frontier[-1], right)
        carries, level = carries >> 1, level + 1
        if level >= min_level:
            completed.append((level, ((size + 1) >> level) - 1, frontier[-1]))
    return completed


def blocks(start: int, end: int) -> list[tuple[int, int]]:
    """Split a proof range into its perfect subtrees ``(level, index)``, largest first.

    Every range a proof names starts at a multiple of a power of two at least as large as
    the range, so its hash is the fold (``frontier_root``) of these subtrees' hashes.
    """
    found = []
    position, remaining = start, end - start
    for level in range(remaining.bit_length() - 1, -1, -1):
        if remaining >> level & 1:
            found.append((level, position >> level))
            position += 1 << level
    return found


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """Fold a frontier into the root of its tree (RFC 9162 splits the same way)."""
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for subtree in reversed(frontier[:-1]):
        root = node_hash(subtree, root)
    return root


def frontier_fits(frontier: Sequence[bytes], size: int) -> bool:
    """Tell whether ``frontier`` has exactly one subtree per set bit of ``size``."""
    return len(frontier) == size.bit_count()


def root_of(leaves: Iterable[bytes]) -> tuple[bytes, int]:
    """Return the root over leaf hashes given in order, and how many there were."""
    frontier: list[bytes] = []
    size = 0
    for leaf in leaves:
        append_leaf(frontier, size, leaf)
        size += 1
    return frontier_root(frontier), size


# ------------------------------------------------------------------ which ranges


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """Return the leaf ranges whose hashes form the audit path of leaf ``index``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            path.append((start + k, end))
            end = start + k
        else:
            path.append((start, start + k))
            start += k
    path.reverse()  # RFC 9162 lists the path from the leaf upwards
    return path


def consistency_ranges(old: int, new: int) -> list[Range]:
    """Return the leaf ranges whose hashes prove a tree of ``old`` leaves is a prefix of ``new``."""
    if not 0 < old <= new:
        raise ValueError(f"no consistency proof from {old} to {new} leaves")
    proof: list[Range] = []
    start, end, whole = 0, new, True
    while old - start != end - start:
        k = split(end - start)
        if old - start <= k:
            proof.append((start + k, end))
            end = start + k
        else:
            proof.append((start, start + k))
            start += k
            whole = False
    if not whole:
        proof.append((start, end))
    proof.reverse()
    return proof


class RangeHasher:
    """Hash disjoint leaf ranges while the leaf hashes stream past, in position order."""

    def __init__(self, ranges: Sequence[Range]) -> None:
        """Prepare for ``ranges`` (disjoint; any order)."""
        self.ranges = list(ranges)
        self._pending = sorted(self.ranges)
        self._current = 0
        self._position = 0
        self._frontier: list[bytes] = []
        self._done: dict[Range, bytes] = {}

    @property
    def complete(self) -> bool:
        """Tell whether every range has been hashed."""
        return len(self._done) == len(self._pending)

    def add(self, leaf: bytes) -> None:
        """Take the next leaf hash (position 0, 1, 2, ...)."""
        position = self._position
        self._position += 1
        if self._current == len(self._pending):
            return
        start, end = self._pending[self._current]
        if position < start:
            return
        append_leaf(self._frontier, position - start, leaf)
        if position == end - 1:
            self._done[(start, end)] = frontier_root(self._frontier)
            self._current, self._frontier = self._current + 1, []

    def hashes(self) -> list[bytes]:
        """Return the hash of each range, in the order the ranges were given."""
        if not self.complete:
            missing = self._pending[self._current]
            raise ValueError(f"{self._position} leaves do not reach {missing}")
        return [self._done[r] for r in self.ranges]


def range_hashes(leaves: Iterable[bytes], ranges: Sequence[Range]) -> list[bytes]:
    """Return the hash of each of the disjoint ``ranges``, in one pass over the leaf hashes."""
    hasher = RangeHasher(ranges)
    for leaf in leaves:
        if hasher.complete:
            break
        hasher.add(leaf)
    return hasher.hashes()


# ------------------------------------------------------------------ checking proofs


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes:
    """Recompute the root an audit path leads to from leaf ``index`` (RFC 9162 2.1.3.2)."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    fn, sn, root = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            raise ValueError("audit path is longer than the tree is deep")
        if fn & 1 or fn == sn:
            root = node_hash(sibling, root)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            root = node_hash(root, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("audit path is shorter than the tree is deep")
    return root


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """Tell whether ``path`` proves leaf ``index`` is in the ``size``-leaf tree of ``root``."""
    try:
        return root_from_inclusion(index, size, leaf, path) == root
    except ValueError:
        return False


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Tell whether ``proof`` shows the tree (old, old_root) is a prefix of (new, new_root)."""
    if old == new:
        return not proof and old_root == new_root
    if not 0 < old < new or not proof:
        return False
    nodes = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the proof's implicit start
        nodes.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = nodes[0]
    for node in nodes[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(node, fr), node_hash(node, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, node)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root
