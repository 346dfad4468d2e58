"""Pure verification of inclusion and consistency proofs (RFC 9162 §2.1.3.2, §2.1.4.2).

These functions touch no storage and trust nothing: a client holding a signed
checkpoint uses them to check what a ledger (or a credential's proof bundle) claims.
They follow the RFC's algorithms step by step, including the checks that are easy
to skip and dangerous to miss: the leaf index is below the tree size, ``sn`` ends at
zero (no trailing or missing path elements), and a consistency proof from the empty
tree is rejected (it proves nothing).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import ProofError
from ledger.hashing import HASH_SIZE, node_hash


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that the leaf at `leaf_index` is in the tree of `tree_size` leaves."""

    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]

    def verify(self, leaf_hash: bytes, root_hash: bytes) -> None:
        verify_inclusion(self.leaf_index, self.tree_size, leaf_hash, self.path, root_hash)


@dataclass(frozen=True, slots=True)
class ConsistencyProof:
    """Proof that the tree of `old_size` leaves is a prefix of the tree of `new_size`."""

    old_size: int
    new_size: int
    path: tuple[bytes, ...]

    def verify(self, old_root: bytes, new_root: bytes) -> None:
        verify_consistency(self.old_size, self.new_size, self.path, old_root, new_root)


def _check_path(path: Sequence[bytes]) -> None:
    for i, h in enumerate(path):
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise ProofError(f"proof element {i} is not a {HASH_SIZE}-byte hash")


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf_hash: bytes, path: Sequence[bytes]
) -> bytes:
    """The root an inclusion proof implies, or ProofError if its shape is wrong."""
    if leaf_index < 0 or tree_size < 0:
        raise ProofError("leaf index and tree size must be non-negative")
    if leaf_index >= tree_size:
        raise ProofError(f"leaf index {leaf_index} is not below tree size {tree_size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash is not {HASH_SIZE} bytes")
    _check_path(path)
    fn, sn, r = leaf_index, tree_size - 1, leaf_hash
    for p in path:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf_index: int,
    tree_size: int,
    leaf_hash: bytes,
    path: Sequence[bytes],
    root_hash: bytes,
) -> None:
    """Raise ProofError unless `path` proves `leaf_hash` at `leaf_index` under `root_hash`."""
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, path)
    if not _same(computed, root_hash):
        raise ProofError("inclusion proof leads to a different root")


def verify_consistency(
    old_size: int,
    new_size: int,
    path: Sequence[bytes],
    old_root: bytes,
    new_root: bytes,
) -> None:
    """Raise ProofError unless `path` proves the old tree is a prefix of the new one."""
    if old_size < 1:
        raise ProofError("consistency from an empty tree proves nothing")
    if new_size < old_size:
        raise ProofError(f"new size {new_size} is smaller than old size {old_size}")
    _check_path(path)
    if old_size == new_size:
        if path:
            raise ProofError("trees of equal size need an empty consistency proof")
        if not _same(old_root, new_root):
            raise ProofError("trees of equal size have different roots")
        return
    if not path:
        raise ProofError("consistency proof is empty")
    nodes = list(path)
    # An old tree that is a complete subtree is its own first node; the proof omits it.
    if old_size & (old_size - 1) == 0:
        nodes.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = nodes[0]
    for c in nodes[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the tree is deep")
    if not _same(fr, old_root):
        raise ProofError("consistency proof does not lead to the old root")
    if not _same(sr, new_root):
        raise ProofError("consistency proof does not lead to the new root")
