"""The narrow interface between the ledger and where its bytes live.

A backend stores five things: leaves by index, stored hashes by index (the dense
layout of `ledger._internal.tlog`), a leaf-hash → index lookup, a few metadata
values (origin, checkpoint key, latest signed checkpoint) and the *index*: opaque
key/value pairs that the ledger's user derives from its entries (e.g. "licences of
this holder"), so they are durable exactly when the entries are. It knows nothing of
trees: the ledger hands it a `Commit` and the backend makes it durable atomically,
all of it or none of it.

`RocksDBStorage` (in `ledger._internal.rocksdb`) is the production backend;
`MemoryStorage` serves tests and tools that need a throwaway tree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ledger.errors import LedgerClosedError, StorageError

META_FORMAT = "format"
META_ORIGIN = "origin"
META_CHECKPOINT_KEY = "checkpoint-vkey"
META_CHECKPOINT = "checkpoint"


@dataclass(slots=True)
class Commit:
    """One atomic unit of durable change: consecutive leaves and their hashes."""

    first_leaf: int
    leaves: list[bytes]
    leaf_hashes: list[bytes]
    first_hash: int
    hashes: list[bytes]
    meta: dict[str, bytes] = field(default_factory=dict)
    # Index writes in order; a value of None deletes the key.
    index: list[tuple[bytes, bytes | None]] = field(default_factory=list)


IndexWrite = tuple[bytes, bytes | None]


class Storage(Protocol):
    """What the ledger needs from a backend. Reads may run beside a commit."""

    def read_meta(self, key: str) -> bytes | None: ...

    def read_leaves(self, start: int, end: int) -> list[bytes]:
        """Leaves [start, end); a missing one raises StorageError."""
        ...

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        """Stored hashes at `indexes`, in order; a missing one raises StorageError."""
        ...

    def find_leaf(self, leaf_hash: bytes) -> int | None: ...

    def commit(self, commit: Commit) -> None:
        """Make `commit` durable, atomically, before returning."""
        ...

    def scan_leaves(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """Every stored leaf from `start` in index order (for audit)."""
        ...

    def scan_hashes(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """Every stored hash from `start` in index order (for audit)."""
        ...

    def scan_leaf_index(self) -> Iterator[tuple[bytes, int]]:
        """Every (leaf hash, index) lookup entry (for audit)."""
        ...

    def read_index(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """Index values at `keys`, in order (None where absent)."""
        ...

    def scan_index(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Index pairs with start <= key < end, in key order."""
        ...

    def replace_index(self, pairs: Iterator[tuple[bytes, bytes]]) -> None:
        """Drop the whole index and store `pairs` instead (for rebuilding it offline)."""
        ...

    def close(self) -> None: ...


def _missing(kind: str, index: int) -> StorageError:
    return StorageError(f"{kind} {index} is missing from storage")


class MemoryStorage:
    """A `Storage` in process memory; commits are atomic, nothing is durable."""

    def __init__(self) -> None:
        self._leaves: list[bytes] = []
        self._hashes: list[bytes] = []
        self._leaf_index: dict[bytes, int] = {}
        self._meta: dict[str, bytes] = {}
        self._index: dict[bytes, bytes] = {}
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerClosedError("storage is closed")

    def read_meta(self, key: str) -> bytes | None:
        self._check_open()
        return self._meta.get(key)

    def read_leaves(self, start: int, end: int) -> list[bytes]:
        self._check_open()
        if start < 0 or end > len(self._leaves):
            raise _missing("leaf", min(max(start, len(self._leaves)), end))
        return self._leaves[start:end]

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        self._check_open()
        for i in indexes:
            if not 0 <= i < len(self._hashes):
                raise _missing("stored hash", i)
        return [self._hashes[i] for i in indexes]

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        self._check_open()
        return self._leaf_index.get(leaf_hash)

    def commit(self, commit: Commit) -> None:
        self._check_open()
        if commit.first_leaf != len(self._leaves) or commit.first_hash != len(self._hashes):
            raise StorageError("commit does not continue the stored tree")
        self._leaves.extend(commit.leaves)
        self._hashes.extend(commit.hashes)
        for offset, h in enumerate(commit.leaf_hashes):
            self._leaf_index[h] = commit.first_leaf + offset
        self._meta.update(commit.meta)
        for key, value in commit.index:
            if value is None:
                self._index.pop(key, None)
            else:
                self._index[key] = value

    def scan_leaves(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        self._check_open()
        yield from enumerate(self._leaves[start:], start)

    def scan_hashes(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        self._check_open()
        yield from enumerate(self._hashes[start:], start)

    def scan_leaf_index(self) -> Iterator[tuple[bytes, int]]:
        self._check_open()
        yield from self._leaf_index.items()

    def read_index(self, keys: Sequence[bytes]) -> list[bytes | None]:
        self._check_open()
        return [self._index.get(k) for k in keys]

    def scan_index(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        for key in sorted(k for k in self._index if start <= k < end):
            yield key, self._index[key]

    def replace_index(self, pairs: Iterator[tuple[bytes, bytes]]) -> None:
        self._check_open()
        self._index = dict(pairs)

    def close(self) -> None:
        self._closed = True
