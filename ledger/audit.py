"""Audit (fsck) of a stored ledger: trust nothing that can be recomputed.

One sequential pass re-derives everything from the leaves alone and compares it with
what is stored: every chain link (each leaf's predecessor hash equals the previous
leaf's hash — every link, not just the ends), every stored hash of the dense layout,
the leaf-hash lookup, and finally the root against the signed checkpoint, whose
signature is checked with the key recorded at creation. The first disagreement names
the leaf index where history stops being trustworthy.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.errors import LedgerError
from ledger.hashing import GENESIS_PREV_HASH, HASH_SIZE, leaf_hash, node_hash
from ledger.note import Ed25519NoteVerifier
from ledger.storage import (
    META_CHECKPOINT,
    META_CHECKPOINT_KEY,
    META_ORIGIN,
    Storage,
)

Progress = Callable[[int, int], None]
_LOOKUP_CHUNK = 1024


@dataclass(frozen=True, slots=True)
class AuditReport:
    size: int
    first_bad_index: int | None
    problem: str | None
    checkpoint: SignedCheckpoint | None

    @property
    def ok(self) -> bool:
        return self.problem is None


class _Bad(Exception):
    def __init__(self, index: int | None, problem: str) -> None:
        super().__init__(problem)
        self.index = index
        self.problem = problem


def audit(storage: Storage, progress: Progress | None = None) -> AuditReport:
    """Re-derive and check the whole ledger in `storage`."""
    signed: SignedCheckpoint | None = None
    try:
        signed = _open_checkpoint(storage)
        _scan(storage, signed, progress)
    except _Bad as bad:
        return AuditReport(signed.checkpoint.size if signed else 0, bad.index, bad.problem, signed)
    return AuditReport(signed.checkpoint.size, None, None, signed)


def _open_checkpoint(storage: Storage) -> SignedCheckpoint:
    try:
        vkey = storage.read_meta(META_CHECKPOINT_KEY)
        origin = storage.read_meta(META_ORIGIN)
        note = storage.read_meta(META_CHECKPOINT)
        if vkey is None or origin is None or note is None:
            raise _Bad(None, "ledger metadata (key, origin or checkpoint) is missing")
        verifier = Ed25519NoteVerifier.from_vkey(vkey.decode())
        return open_checkpoint(note, verifier, origin=origin.decode())
    except (LedgerError, UnicodeDecodeError) as exc:
        raise _Bad(None, f"checkpoint does not verify: {exc}") from exc


def _scan(storage: Storage, signed: SignedCheckpoint, progress: Progress | None) -> None:
    """Walk leaves and hashes in step, re-deriving each from the leaves alone."""
    size = signed.checkpoint.size
    leaves = storage.scan_leaves()
    hashes = storage.scan_hashes()
    frontier: list[bytes] = []
    prev = GENESIS_PREV_HASH
    lookup_batch: list[tuple[int, bytes]] = []
    next_hash = 0
    for index in range(size):
        item = _next(leaves, index)
        if item is None or item[0] != index:
            raise _Bad(index, f"leaf {index} is missing")
        data = item[1]
        if len(data) < HASH_SIZE or not hmac.compare_digest(data[:HASH_SIZE], prev):
            raise _Bad(index, f"leaf {index} does not link to leaf {index - 1} (chain broken)")
        h = prev = leaf_hash(data)
        next_hash = _expect_hash(hashes, next_hash, h, index)
        n = index
        while n & 1:
            h = node_hash(frontier.pop(), h)
            next_hash = _expect_hash(hashes, next_hash, h, index)
            n >>= 1
        frontier.append(h)
        lookup_batch.append((index, prev))
        if len(lookup_batch) == _LOOKUP_CHUNK:
            _check_lookups(storage, lookup_batch)
            lookup_batch.clear()
            if progress is not None:
                progress(index + 1, size)
    _check_lookups(storage, lookup_batch)
    if progress is not None:
        progress(size, size)
    extra = _next(leaves, size)
    if extra is not None:
        raise _Bad(extra[0], f"leaf {extra[0]} is stored beyond the checkpoint size {size}")
    extra = _next(hashes, next_hash)
    if extra is not None:
        raise _Bad(size, f"stored hash {extra[0]} lies beyond the checkpoint size {size}")
    root = frontier.pop() if frontier else signed.checkpoint.root_hash
    while frontier:
        root = node_hash(frontier.pop(), root)
    if not hmac.compare_digest(root, signed.checkpoint.root_hash):
        raise _Bad(None, "recomputed root does not match the signed checkpoint")


def _next(items: Iterator[tuple[int, bytes]], index: int) -> tuple[int, bytes] | None:
    try:
        return next(items, None)
    except LedgerError as exc:  # e.g. a RocksDB block checksum failure
        raise _Bad(index, f"storage cannot be read at leaf {index}: {exc}") from exc


def _expect_hash(hashes: Iterator[tuple[int, bytes]], expected: int, h: bytes, leaf: int) -> int:
    item = _next(hashes, leaf)
    if item is None or item[0] != expected:
        raise _Bad(leaf, f"stored hash {expected} (leaf {leaf}) is missing")
    if not hmac.compare_digest(item[1], h):
        raise _Bad(leaf, f"stored hash {expected} (leaf {leaf}) differs from the recomputed one")
    return expected + 1


def _check_lookups(storage: Storage, batch: list[tuple[int, bytes]]) -> None:
    for index, h in batch:
        if storage.find_leaf(h) != index:
            raise _Bad(index, f"the leaf-hash lookup does not point at leaf {index}")
