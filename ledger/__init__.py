"""An append-only, hash-chained Merkle ledger (RFC 6962/9162) on RocksDB.

It stores entry bytes and knows nothing of what they mean. The public surface:

* `Ledger` (writer, group-committed async appends) and `LedgerReader` (verified reads),
  opened on RocksDB with `create_ledger`, `open_ledger` and `open_reader`;
* pure verifiers: `verify_inclusion`, `verify_consistency`, `open_checkpoint`,
  `ProofBundle.verify`;
* `audit`, which re-derives the whole ledger from its leaves;
* the error hierarchy in `ledger.errors`.
"""

from __future__ import annotations

from pathlib import Path

from ledger import errors
from ledger._internal.rocksdb import RocksDBStorage
from ledger.audit import AuditReport, Progress, audit
from ledger.bundle import ProofBundle
from ledger.checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint, sign_checkpoint
from ledger.hashing import EMPTY_ROOT, Leaf, leaf_hash, node_hash
from ledger.log import CheckpointSigner, Ledger, LedgerSettings, Submission
from ledger.note import Ed25519NoteSigner, Ed25519NoteVerifier
from ledger.proof import ConsistencyProof, InclusionProof, verify_consistency, verify_inclusion
from ledger.reader import LedgerReader
from ledger.storage import IndexWrite, MemoryStorage, Storage


def create_ledger(
    path: str | Path, origin: str, signer: CheckpointSigner, settings: LedgerSettings | None = None
) -> Ledger:
    """Create an empty ledger in a new RocksDB directory and open it for writing."""
    storage = RocksDBStorage(path, create=True)
    try:
        return Ledger.create(storage, origin, signer, settings)
    except BaseException:
        storage.close()
        raise


def open_ledger(
    path: str | Path, signer: CheckpointSigner, settings: LedgerSettings | None = None
) -> Ledger:
    """Open an existing ledger for writing (one writer at a time)."""
    storage = RocksDBStorage(path)
    try:
        return Ledger(storage, signer, settings)
    except BaseException:
        storage.close()
        raise


def open_reader(path: str | Path) -> LedgerReader:
    """Open a ledger read-only (a snapshot; works beside a running writer)."""
    storage = RocksDBStorage(path, read_only=True)
    try:
        return LedgerReader(storage)
    except BaseException:
        storage.close()
        raise


def audit_storage(path: str | Path, progress: Progress | None = None) -> AuditReport:
    """Audit the ledger in a RocksDB directory, read-only (safe beside a running writer)."""
    storage = RocksDBStorage(path, read_only=True)
    try:
        return audit(storage, progress)
    finally:
        storage.close()


__all__ = [
    "EMPTY_ROOT",
    "AuditReport",
    "Checkpoint",
    "CheckpointSigner",
    "ConsistencyProof",
    "Ed25519NoteSigner",
    "Ed25519NoteVerifier",
    "InclusionProof",
    "IndexWrite",
    "Leaf",
    "Ledger",
    "LedgerReader",
    "LedgerSettings",
    "MemoryStorage",
    "ProofBundle",
    "RocksDBStorage",
    "SignedCheckpoint",
    "Storage",
    "Submission",
    "audit",
    "audit_storage",
    "create_ledger",
    "errors",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "open_ledger",
    "open_reader",
    "sign_checkpoint",
    "verify_consistency",
    "verify_inclusion",
]
