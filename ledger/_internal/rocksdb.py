"""The RocksDB backend (`rocksdict` in raw mode: keys and values are plain bytes).

Column families keep each kind of record in its own key space so scans stay
sequential: ``leaves`` and ``hashes`` under 8-byte big-endian indexes (so key order
is index order), ``leaf_index`` from leaf hash to index, ``index`` for the user's
derived index (opaque pairs), and ``default`` for metadata. A commit is one
WriteBatch, synced to disk (see `commit`): either all of it reaches the disk or none
does, and it is on disk before `commit` returns.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    DataBlockIndexType,
    DBCompressionType,
    Options,
    Rdict,
    WriteBatch,
    WriteOptions,
)

from ledger.errors import (
    LedgerClosedError,
    LedgerLockedError,
    LedgerNotFoundError,
    StorageError,
)
from ledger.storage import Commit

_U64 = struct.Struct(">Q")
_CF_LEAVES = "leaves"
_CF_HASHES = "hashes"
_CF_LEAF_INDEX = "leaf_index"
_CF_INDEX = "index"
_FAMILIES = (_CF_LEAVES, _CF_HASHES, _CF_LEAF_INDEX, _CF_INDEX)
_REPLACE_BATCH = 10_000
# Memtables across all column families; bounds RSS however long the process runs.
_WRITE_BUFFER_BYTES = 64 << 20
_BLOCK_CACHE_BYTES = 64 << 20


def _key(index: int) -> bytes:
    return _U64.pack(index)


def _index(key: bytes) -> int:
    value: int = _U64.unpack(key)[0]
    return value


def _options(cache: Cache, *, compress: bool = True, bloom: bool = False) -> Options:
    # Proofs are point reads of random keys: a shared cache of decoded blocks, index
    # and filter blocks held in it, and a hash index inside data blocks keep each read
    # close to a memory lookup however large the ledger grows.
    opts = Options(raw_mode=True)
    table = BlockBasedOptions()
    table.set_block_cache(cache)
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    table.set_data_block_index_type(DataBlockIndexType.binary_and_hash())
    if bloom:
        table.set_bloom_filter(10, False)
    opts.set_block_based_table_factory(table)
    if not compress:  # SHA-256 hashes do not compress; don't pay to try
        opts.set_compression_type(DBCompressionType.none())
    return opts


class RocksDBStorage:
    """`ledger.storage.Storage` on a RocksDB directory."""

    def __init__(self, path: str | Path, *, create: bool = False, read_only: bool = False):
        self.path = Path(path)
        if not create and not (self.path / "CURRENT").exists():
            raise LedgerNotFoundError(f"no ledger at {self.path}")
        cache = Cache(_BLOCK_CACHE_BYTES)
        opts = _options(cache)
        opts.create_if_missing(create)
        # A ledger made before the index family existed gains it on its next writable open.
        opts.create_missing_column_families(not read_only)
        opts.set_db_write_buffer_size(_WRITE_BUFFER_BYTES)
        opts.set_keep_log_file_num(4)
        families = {
            _CF_LEAVES: _options(cache),
            _CF_HASHES: _options(cache, compress=False),
            _CF_LEAF_INDEX: _options(cache, compress=False, bloom=True),
            _CF_INDEX: _options(cache, bloom=True),
        }
        access = AccessType.read_only() if read_only else AccessType.read_write()
        try:
            self._db = Rdict(
                str(self.path), options=opts, column_families=families, access_type=access
            )
        except Exception as exc:  # rocksdict raises plain Exception for every failure
            message = str(exc)
            if "lock" in message.lower():
                raise LedgerLockedError(
                    f"ledger at {self.path} is already open by another writer ({message})"
                ) from exc
            raise StorageError(f"cannot open ledger at {self.path}: {message}") from exc
        self._read_only = read_only
        self._leaves = self._db.get_column_family(_CF_LEAVES)
        self._hashes = self._db.get_column_family(_CF_HASHES)
        self._leaf_index = self._db.get_column_family(_CF_LEAF_INDEX)
        self._index_cf = self._db.get_column_family(_CF_INDEX)
        self._cf_handles = {name: self._db.get_column_family_handle(name) for name in _FAMILIES}
        self._sync = WriteOptions()
        self._sync.sync = True
        self._unsynced = WriteOptions()
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise LedgerClosedError(f"ledger at {self.path} is closed")

    def read_meta(self, key: str) -> bytes | None:
        self._check_open()
        value: bytes | None = self._db.get(key.encode())
        return value

    def read_leaves(self, start: int, end: int) -> list[bytes]:
        self._check_open()
        if end <= start:
            return []
        values = cast(list[bytes | None], self._leaves.get([_key(i) for i in range(start, end)]))
        return _all_present(values, "leaf", start)

    def read_hashes(self, indexes: Sequence[int]) -> list[bytes]:
        self._check_open()
        values = cast(list[bytes | None], self._hashes.get([_key(i) for i in indexes]))
        for i, value in zip(indexes, values, strict=True):
            if value is None:
                raise StorageError(f"stored hash {i} is missing from storage")
        return values  # type: ignore[return-value]  # None ruled out above

    def find_leaf(self, leaf_hash: bytes) -> int | None:
        self._check_open()
        value: bytes | None = self._leaf_index.get(leaf_hash)
        return None if value is None else _index(value)

    def commit(self, commit: Commit) -> None:
        self._check_open()
        if self._read_only:
            raise StorageError(f"ledger at {self.path} is open read-only")
        batch = WriteBatch(raw_mode=True)
        leaves = self._cf_handles[_CF_LEAVES]
        hashes = self._cf_handles[_CF_HASHES]
        lookup = self._cf_handles[_CF_LEAF_INDEX]
        put = batch.put
        index = commit.first_leaf
        for leaf, leaf_hash in zip(commit.leaves, commit.leaf_hashes, strict=True):
            key = _key(index)
            put(key, leaf, leaves)
            put(leaf_hash, key, lookup)
            index += 1
        for offset, h in enumerate(commit.hashes, commit.first_hash):
            put(_key(offset), h, hashes)
        for name, value in commit.meta.items():
            put(name.encode(), value)
        index_cf = self._cf_handles[_CF_INDEX]
        for index_key, index_value in commit.index:
            if index_value is None:
                batch.delete(index_key, index_cf)
            else:
                put(index_key, index_value, index_cf)
        try:
            # Durability in two steps: rocksdict holds the GIL through a synced write
            # (its fsync would stall the event loop), but releases it in flush_wal. The
            # write reaches the WAL file unsynced, then SyncWAL makes it durable, the same
            # guarantee as sync=True, before commit returns.
            self._db.write(batch, self._unsynced)
            self._db.flush_wal(True)
        except Exception as exc:
            raise StorageError(f"commit to {self.path} failed: {exc}") from exc

    def _scan(self, column: Any, start: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        it = column.iter()
        if start is None:
            it.seek_to_first()
        else:
            it.seek(start)
        while it.valid():
            yield it.key(), it.value()
            it.next()
        try:
            it.status()
        except Exception as exc:  # RocksDB reports checksum failures here
            raise StorageError(f"reading {self.path} failed: {exc}") from exc

    def scan_leaves(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        for key, value in self._scan(self._leaves, _key(start)):
            yield _checked_index(key, "leaf"), value

    def scan_hashes(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        for key, value in self._scan(self._hashes, _key(start)):
            yield _checked_index(key, "stored hash"), value

    def scan_leaf_index(self) -> Iterator[tuple[bytes, int]]:
        for key, value in self._scan(self._leaf_index, None):
            yield key, _checked_index(value, "leaf index value")

    def read_index(self, keys: Sequence[bytes]) -> list[bytes | None]:
        self._check_open()
        if len(keys) == 1:
            return [self._index_cf.get(keys[0])]
        return cast(list[bytes | None], self._index_cf.get(list(keys)))

    def scan_index(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key, value in self._scan(self._index_cf, start):
            if key >= end:
                return
            yield key, value

    def replace_index(self, pairs: Iterator[tuple[bytes, bytes]]) -> None:
        self._check_open()
        if self._read_only:
            raise StorageError(f"ledger at {self.path} is open read-only")
        handle = self._cf_handles[_CF_INDEX]
        # Chunked rather than one batch: an index can outgrow memory. A crash midway
        # leaves a partial index, which running the rebuild again repairs.
        try:
            batch, count = WriteBatch(raw_mode=True), 0
            for key, _ in self._scan(self._index_cf, None):
                batch.delete(key, handle)
                batch, count = self._flush_every(batch, count + 1)
            for key, value in pairs:
                batch.put(key, value, handle)
                batch, count = self._flush_every(batch, count + 1)
            self._db.write(batch, self._sync)
        except StorageError:
            raise
        except Exception as exc:
            raise StorageError(f"rewriting the index of {self.path} failed: {exc}") from exc

    def _flush_every(self, batch: WriteBatch, count: int) -> tuple[WriteBatch, int]:
        if count % _REPLACE_BATCH:
            return batch, count
        self._db.write(batch, self._sync)
        return WriteBatch(raw_mode=True), count

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # Column-family views and handles keep the DB (and its LOCK) alive too.
            for column in (self._leaves, self._hashes, self._leaf_index, self._index_cf):
                column.close()
            self._cf_handles.clear()
            self._db.close()


def _checked_index(key: bytes, kind: str) -> int:
    if len(key) != _U64.size:
        raise StorageError(f"{kind} key {key.hex()} is not an 8-byte index")
    return _index(key)


def _all_present(values: list[bytes | None], kind: str, start: int) -> list[bytes]:
    for offset, value in enumerate(values):
        if value is None:
            raise StorageError(f"{kind} {start + offset} is missing from storage")
    return values  # type: ignore[return-value]  # None ruled out above
