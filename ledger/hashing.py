"""RFC 6962 / RFC 9162 hashing and the ledger's hash chain.

Domain separation (0x00 for leaves, 0x01 for interior nodes) is what stops a leaf
from being passed off as an interior node (second-preimage attacks on the tree).

The chain: the leaf stored at index n is ``prev_leaf_hash || entry``, where
``prev_leaf_hash`` is the leaf hash at n-1 (32 zero bytes at index 0). Because the
predecessor's hash is inside the leaf, the Merkle tree authenticates the chain too,
and a linear scan can re-verify history link by link without the tree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ledger.errors import LedgerCorruptError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
GENESIS_PREV_HASH = bytes(HASH_SIZE)

_sha256 = hashlib.sha256


def leaf_hash(leaf: bytes) -> bytes:
    """H(0x00 || leaf)."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """H(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def chain_leaf(prev_leaf_hash: bytes, entry: bytes) -> bytes:
    """The exact leaf bytes stored for `entry` following a leaf whose hash is given."""
    return prev_leaf_hash + entry


@dataclass(frozen=True, slots=True)
class Leaf:
    """One stored leaf: its position, its predecessor link and the caller's entry."""

    index: int
    data: bytes

    @property
    def prev_hash(self) -> bytes:
        return self.data[:HASH_SIZE]

    @property
    def entry(self) -> bytes:
        return self.data[HASH_SIZE:]

    @property
    def hash(self) -> bytes:
        return leaf_hash(self.data)

    @classmethod
    def from_stored(cls, index: int, data: bytes) -> Leaf:
        if len(data) < HASH_SIZE:
            raise LedgerCorruptError(f"leaf {index} is {len(data)} bytes, shorter than its link")
        return cls(index, data)
