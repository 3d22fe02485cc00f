"""The RFC 9162 Merkle tree: roots, inclusion and consistency proofs, checked against the RFC."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chameleon_workflow.checkpoints.merkle import (
    EMPTY_ROOT,
    RangeHasher,
    append_leaf,
    append_leaf_keeping,
    blocks,
    consistency_ranges,
    frontier_root,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    range_hashes,
    root_from_inclusion,
    root_of,
    verify_consistency,
    verify_inclusion,
)

# The eight leaves of the Certificate Transparency reference tests, and the roots of their
# first 1..8 leaves as published there.
CT_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162's MTH, written as the RFC defines it (recursively), as the reference."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


def test_roots_match_the_certificate_transparency_vectors() -> None:
    """The roots of the first 1..8 reference leaves are the published ones."""
    hashes = [leaf_hash(data) for data in CT_LEAVES]
    assert [root_of(hashes[:n])[0].hex() for n in range(1, 9)] == CT_ROOTS


def test_empty_tree_root_is_the_hash_of_nothing() -> None:
    """A tree of no leaves has SHA-256 of the empty string as its root."""
    assert root_of([]) == (EMPTY_ROOT, 0)
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    """A leaf hashes 0x00 || data and a node 0x01 || left || right."""
    a, b = b"a" * 32, b"b" * 32
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()


@given(st.integers(min_value=0, max_value=300))
def test_frontier_root_is_the_recursive_root(size: int) -> None:
    """Growing a frontier leaf by leaf gives the RFC's recursive root at every size."""
    leaves = _leaves(size)
    frontier: list[bytes] = []
    for n, leaf in enumerate(leaves):
        append_leaf(frontier, n, leaf)
    assert frontier_root(frontier) == _mth(leaves)
    assert len(frontier) == size.bit_count()


@given(st.data())
def test_inclusion_proofs_verify_for_every_leaf(data: st.DataObject) -> None:
    """The audit path of any leaf in any tree leads back to the root, and only from that leaf."""
    size = data.draw(st.integers(min_value=1, max_value=200))
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    leaves = _leaves(size)
    path = range_hashes(leaves, inclusion_ranges(index, size))
    root = _mth(leaves)
    assert root_from_inclusion(index, size, leaves[index], path) == root
    assert verify_inclusion(index, size, leaves[index], path, root)
    assert not verify_inclusion(index, size, leaf_hash(b"forged"), path, root)
    if size > 1:
        assert not verify_inclusion(index, size, leaves[index], path[:-1], root)
        other = (index + 1) % size
        assert not verify_inclusion(other, size, leaves[index], path, root)


@given(st.data())
def test_consistency_proofs_verify_between_any_two_sizes(data: st.DataObject) -> None:
    """A consistency proof from any old size to any larger one verifies; a fork does not."""
    new = data.draw(st.integers(min_value=1, max_value=200))
    old = data.draw(st.integers(min_value=1, max_value=new))
    leaves = _leaves(new)
    proof = range_hashes(leaves, consistency_ranges(old, new))
    old_root, new_root = _mth(leaves[:old]), _mth(leaves)
    assert verify_consistency(old, new, old_root, new_root, proof)
    forked = [*leaves[: old - 1], leaf_hash(b"forged"), *leaves[old:]]
    assert not verify_consistency(old, new, _mth(forked[:old]), new_root, proof)
    if old < new:
        forked_proof = range_hashes(forked, consistency_ranges(old, new))
        assert not verify_consistency(old, new, old_root, _mth(forked), forked_proof)


def test_consistency_proof_of_rfc_example_has_the_rfc_shape() -> None:
    """RFC 9162's example tree of 7: the proof from 3 is c, d, g, l (ranges 2, 3, [0:2], [4:7])."""
    assert consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]
    assert consistency_ranges(4, 7) == [(4, 7)]
    assert consistency_ranges(6, 7) == [(4, 6), (6, 7), (0, 4)]
    assert inclusion_ranges(3, 7) == [(2, 3), (0, 2), (4, 7)]


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    """Between equal sizes the proof is empty and the roots must be the same."""
    root = _mth(_leaves(5))
    assert consistency_ranges(5, 5) == []
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, EMPTY_ROOT, [])


@pytest.mark.parametrize(("index", "size"), [(-1, 3), (3, 3), (0, 0)])
def test_out_of_range_leaves_are_refused(index: int, size: int) -> None:
    """A leaf index outside the tree has no audit path and never verifies."""
    with pytest.raises(ValueError, match="is not in a tree of"):
        inclusion_ranges(index, size)
    assert not verify_inclusion(index, size, leaf_hash(b""), [], EMPTY_ROOT)


def test_range_hasher_needs_every_leaf_of_its_ranges() -> None:
    """Asking for hashes before the leaves reached the last range is an error."""
    hasher = RangeHasher([(0, 2), (2, 5)])
    for leaf in _leaves(4):
        hasher.add(leaf)
    assert not hasher.complete
    with pytest.raises(ValueError, match=r"4 leaves do not reach \(2, 5\)"):
        hasher.hashes()


@given(st.integers(min_value=1, max_value=300), st.integers(min_value=0, max_value=4))
def test_kept_subtrees_are_the_perfect_subtrees(size: int, min_level: int) -> None:
    """Growing a tree reports every completed perfect subtree from ``min_level`` up, once."""
    leaves = _leaves(size)
    frontier: list[bytes] = []
    kept = []
    for n, leaf in enumerate(leaves):
        kept += append_leaf_keeping(frontier, n, leaf, min_level)
    expected = [
        (level, index, _mth(leaves[index << level : (index + 1) << level]))
        for level in range(max(min_level, 1), size.bit_length())
        for index in range(size >> level)
    ]
    assert sorted(kept) == sorted(expected)
    assert frontier_root(frontier) == _mth(leaves)


@given(st.data())
def test_proof_ranges_fold_from_their_perfect_subtrees(data: st.DataObject) -> None:
    """Every range a proof names is the fold of its perfect subtrees, largest first."""
    new = data.draw(st.integers(min_value=1, max_value=200))
    old = data.draw(st.integers(min_value=1, max_value=new))
    leaves = _leaves(new)
    for start, end in [*consistency_ranges(old, new), *inclusion_ranges(old - 1, new)]:
        parts = [_mth(leaves[i << lv : (i + 1) << lv]) for lv, i in blocks(start, end)]
        assert frontier_root(parts) == _mth(leaves[start:end])
    assert blocks(4, 7) == [(1, 2), (0, 6)]
