"""Reading a ledger: leaves, tree heads, proofs and proof bundles.

A reader needs no signing key: it trusts only the checkpoint key recorded when the
ledger was created, and verifies the stored checkpoint with it on open. Everything
it serves is bounded by that checkpoint's size, so a reader on a read-only snapshot
and the writer's own reads behave alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from ledger._internal import tlog
from ledger.bundle import ProofBundle
from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.errors import InvalidRequestError, LedgerCorruptError
from ledger.hashing import EMPTY_ROOT, GENESIS_PREV_HASH, Leaf
from ledger.note import Ed25519NoteVerifier
from ledger.proof import ConsistencyProof, InclusionProof
from ledger.storage import (
    META_CHECKPOINT,
    META_CHECKPOINT_KEY,
    META_FORMAT,
    META_ORIGIN,
    Storage,
)

FORMAT_VERSION = b"1"
MAX_READ_RANGE = 1000


# About 4 MB: the hot edge of any tree, and the paths of many thousand recent entries.
HASH_CACHE_ENTRIES = 1 << 16


class LedgerReader:
    """Verified read access to a stored ledger, up to its latest checkpoint."""

    def __init__(self, storage: Storage, *, max_read_range: int = MAX_READ_RANGE) -> None:
        self._storage = storage
        self.max_read_range = max_read_range
        # Stored hashes never change once committed, and every proof of a recent entry
        # reads the same right edge and left subtree roots: keep what was read.
        self._hashes: dict[int, bytes] = {}
        if storage.read_meta(META_FORMAT) != FORMAT_VERSION:
            raise LedgerCorruptError("storage does not hold a ledger of a known format")
        self.verifier = Ed25519NoteVerifier.from_vkey(
            _required_meta(storage, META_CHECKPOINT_KEY).decode()
        )
        self.origin = _required_meta(storage, META_ORIGIN).decode()
        self._checkpoint = open_checkpoint(
            _required_meta(storage, META_CHECKPOINT), self.verifier, origin=self.origin
        )

    @property
    def checkpoint(self) -> SignedCheckpoint:
        """The latest signed checkpoint; it covers every acknowledged entry."""
        return self._checkpoint

    @property
    def size(self) -> int:
        return self._checkpoint.checkpoint.size

    @property
    def root_hash(self) -> bytes:
        return self._checkpoint.checkpoint.root_hash

    def close(self) -> None:
        self._storage.close()

    def index_get(self, key: bytes) -> bytes | None:
        """A value of the user's index (committed state)."""
        return self._storage.read_index((key,))[0]

    def index_get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        return self._storage.read_index(keys)

    def index_scan(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Committed index pairs with start <= key < end, in key order."""
        return self._storage.scan_index(start, end)

    def leaves(self, start: int, end: int) -> list[Leaf]:
        """Committed leaves [start, end), at most `max_read_range` of them."""
        size = self.size
        if not 0 <= start < end <= size:
            raise InvalidRequestError(f"range [{start}, {end}) is not within [0, {size})")
        if end - start > self.max_read_range:
            raise InvalidRequestError(
                f"range of {end - start} leaves exceeds the limit of {self.max_read_range}"
            )
        data = self._storage.read_leaves(start, end)
        return [Leaf.from_stored(start + i, d) for i, d in enumerate(data)]

    def leaf(self, index: int) -> Leaf:
        return self.leaves(index, index + 1)[0]

    def leaf_link(self, index: int) -> tuple[bytes, bytes]:
        """(predecessor's leaf hash, leaf hash) of committed leaf `index`, from the stored
        hashes: for a recent leaf, from memory, where `leaf` reads the whole entry."""
        if not 0 <= index < self.size:
            raise InvalidRequestError(f"leaf index {index} is not below size {self.size}")
        if index == 0:
            return GENESIS_PREV_HASH, self._read_hashes([tlog.stored_hash_index(0, 0)])[0]
        prev, this = self._read_hashes(
            [tlog.stored_hash_index(0, index - 1), tlog.stored_hash_index(0, index)]
        )
        return prev, this

    def find_leaf(self, leaf_hash: bytes) -> int:
        """Index of the committed leaf with this hash."""
        index = self._storage.find_leaf(leaf_hash)
        if index is None or index >= self.size:
            raise InvalidRequestError("no leaf with this hash in the ledger")
        return index

    def _remember_hashes(self, first: int, hashes: Sequence[bytes]) -> None:
        """Stored hashes `first`, `first + 1`, ... were just committed."""
        self._remember(range(first, first + len(hashes)), hashes)

    def _read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        cache = self._hashes
        try:
            return [cache[i] for i in indexes]
        except KeyError:
            pass
        hashes = self._storage.read_hashes(indexes)
        self._remember(indexes, hashes)
        return hashes

    def _remember(self, indexes: Sequence[int], hashes: Sequence[bytes]) -> None:
        cache = self._hashes
        if len(cache) + len(hashes) > HASH_CACHE_ENTRIES:
            cache.clear()
        cache.update(zip(indexes, hashes, strict=True))

    def _tree_size(self, size: int | None) -> int:
        current = self.size
        if size is None:
            return current
        if not 0 <= size <= current:
            raise InvalidRequestError(f"tree size {size} is beyond the ledger's size {current}")
        return size

    def root_at(self, tree_size: int) -> bytes:
        size = self._tree_size(tree_size)
        return EMPTY_ROOT if size == 0 else tlog.tree_hash(size, self._read_hashes)

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> InclusionProof:
        size = self._tree_size(tree_size)
        if not 0 <= index < size:
            raise InvalidRequestError(f"leaf index {index} is not below tree size {size}")
        path = tlog.inclusion_path(index, size, self._read_hashes)
        return InclusionProof(index, size, tuple(path))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        size = self._tree_size(new_size)
        if not 1 <= old_size <= size:
            raise InvalidRequestError(
                f"old size {old_size} must be between 1 and the new size {size}"
            )
        path = tlog.consistency_path(old_size, size, self._read_hashes)
        return ConsistencyProof(old_size, size, tuple(path))

    def proof_bundle(self, index: int) -> ProofBundle:
        """An offline-verifiable proof that leaf `index` is under the latest checkpoint."""
        signed = self._checkpoint  # one snapshot: proof and checkpoint must agree
        proof = self.inclusion_proof(index, signed.checkpoint.size)
        return ProofBundle(self.leaf(index).prev_hash, proof, signed)


def _required_meta(storage: Storage, key: str) -> bytes:
    value = storage.read_meta(key)
    if value is None:
        raise LedgerCorruptError(f"ledger metadata '{key}' is missing")
    return value
