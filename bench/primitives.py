"""Raw primitives the ledger is built on, measured without the ledger.

The RocksDB database here mirrors `ledger._internal.rocksdb.RocksDBStorage`: raw mode,
the same column families (``leaves``, ``hashes``, ``leaf_index`` with a bloom filter),
the same write-buffer budget, and 8-byte big-endian index keys.
"""

from __future__ import annotations

import base64
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rocksdict import AccessType, BlockBasedOptions, Options, Rdict, WriteBatch, WriteOptions

from bench import timing

HASH_BYTES = 32
ENTRY_BYTES = 200
LEAF_BYTES = HASH_BYTES + ENTRY_BYTES  # a leaf is prev_leaf_hash || entry
CF_LEAVES = "leaves"
CF_HASHES = "hashes"
CF_LEAF_INDEX = "leaf_index"

_U64 = struct.Struct(">Q")
_POOL = 1 << 12  # random values to cycle through, so no hashing is timed


def _cf_options(*, point_lookups: bool = False) -> Any:
    opts = Options(raw_mode=True)
    if point_lookups:
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)
        opts.set_block_based_table_factory(table)
    return opts


def open_rdict(path: Path, *, read_only: bool = False) -> Any:
    """A raw-mode Rdict with the ledger's column families and options."""
    opts = _cf_options()
    opts.create_if_missing(not read_only)
    opts.create_missing_column_families(not read_only)
    opts.set_db_write_buffer_size(64 << 20)
    opts.set_keep_log_file_num(4)
    families = {
        CF_LEAVES: _cf_options(),
        CF_HASHES: _cf_options(),
        CF_LEAF_INDEX: _cf_options(point_lookups=True),
    }
    access = AccessType.read_only() if read_only else AccessType.read_write()
    return Rdict(str(path), options=opts, column_families=families, access_type=access)


def _synced() -> Any:
    opts = WriteOptions()
    opts.sync = True
    return opts


def checkpoint_text(size: int) -> bytes:
    """Bytes shaped like the C2SP checkpoint body the ledger signs per commit."""
    root = base64.b64encode(bytes(HASH_BYTES)).decode()
    return f"bench.example/ledger\n{size}\n{root}\n".encode()


def ed25519_signs_per_s(seconds: float) -> float:
    key = Ed25519PrivateKey.generate()
    message = checkpoint_text(1_000_000)

    def step() -> int:
        key.sign(message)
        return 1

    done, elapsed = timing.rate(seconds, step)
    return done / elapsed


def ed25519_verifies_per_s(seconds: float, message_bytes: int) -> float:
    """Ed25519 verifications/s of one valid signature over `message_bytes` random bytes."""
    key = Ed25519PrivateKey.generate()
    message = random.Random(4).randbytes(message_bytes)  # noqa: S311
    public, signature = key.public_key(), key.sign(message)

    def step() -> int:
        public.verify(signature, message)  # raises if it does not verify
        return 1

    done, elapsed = timing.rate(seconds, step)
    return done / elapsed


def ecdsa_p256_verifies_per_s(seconds: float, message_bytes: int) -> float:
    """ECDSA P-256 (SHA-256) verifications/s of one valid signature over random bytes."""
    key = ec.generate_private_key(ec.SECP256R1())
    message = random.Random(5).randbytes(message_bytes)  # noqa: S311
    algorithm = ec.ECDSA(hashes.SHA256())
    public, signature = key.public_key(), key.sign(message, algorithm)

    def step() -> int:
        public.verify(signature, message, algorithm)  # raises if it does not verify
        return 1

    done, elapsed = timing.rate(seconds, step)
    return done / elapsed


def synced_commits_per_s(path: Path, seconds: float, keys: int = 100) -> float:
    """Synced WriteBatches of `keys` 32-byte hashes per second, into a fresh database."""
    db = open_rdict(path)
    try:
        hashes = db.get_column_family_handle(CF_HASHES)
        sync = _synced()
        rng = random.Random(1)  # noqa: S311 — fixed seed, not crypto
        values = [rng.randbytes(HASH_BYTES) for _ in range(_POOL)]
        next_key = 0

        def step() -> int:
            nonlocal next_key
            batch = WriteBatch(raw_mode=True)
            for i in range(next_key, next_key + keys):
                batch.put(_U64.pack(i), values[i % _POOL], hashes)
            next_key += keys
            db.write(batch, sync)
            return 1

        done, elapsed = timing.rate(seconds, step)
    finally:
        db.close()
    return done / elapsed


@dataclass(frozen=True, slots=True)
class BatchRate:
    batches: int
    entries: int
    keys: int
    seconds: float

    @property
    def entries_per_s(self) -> float:
        return self.entries / self.seconds

    @property
    def keys_per_s(self) -> float:
        return self.keys / self.seconds

    @property
    def keys_per_entry(self) -> float:
        return self.keys / self.entries


class _RawLedgerWriter:
    """Writes what a ledger commit writes, minus the ledger: the same keys and sizes.

    Per entry: the leaf (232 bytes) under its index, the leaf-hash lookup (32-byte key to
    8-byte index), and the stored hashes of the dense layout (1 + trailing one-bits of the
    index, so 2 on average). Per batch: one checkpoint-sized metadata value.
    """

    def __init__(self, db: Any, group: int, meta_bytes: int) -> None:
        self._db = db
        self._group = group
        self._sync = _synced()
        self._leaves = db.get_column_family_handle(CF_LEAVES)
        self._hashes = db.get_column_family_handle(CF_HASHES)
        self._lookup = db.get_column_family_handle(CF_LEAF_INDEX)
        rng = random.Random(2)  # noqa: S311
        self._leaf_pool = [rng.randbytes(LEAF_BYTES) for _ in range(_POOL)]
        # Lookup keys: 24 random bytes then the index, so each is new and scattered.
        self._hash_pool = [rng.randbytes(HASH_BYTES) for _ in range(_POOL)]
        self._meta = rng.randbytes(meta_bytes)
        self.next_leaf = 0
        self.next_hash = 0
        self.batches = 0
        self.keys = 0

    def write_group(self) -> int:
        batch = WriteBatch(raw_mode=True)
        put, pack = batch.put, _U64.pack
        leaves, hashes, lookup = self._leaves, self._hashes, self._lookup
        leaf_pool, hash_pool = self._leaf_pool, self._hash_pool
        h = self.next_hash
        first = self.next_leaf
        for n in range(first, first + self._group):
            key = pack(n)
            slot = n % _POOL
            put(key, leaf_pool[slot], leaves)
            put(hash_pool[slot][:24] + key, key, lookup)
            put(pack(h), hash_pool[slot], hashes)
            h += 1
            m = n
            while m & 1:
                put(pack(h), hash_pool[(slot + h) % _POOL], hashes)
                h += 1
                m >>= 1
        put(b"checkpoint", self._meta)
        self._db.write(batch, self._sync)
        self.keys += 2 * self._group + (h - self.next_hash) + 1
        self.next_hash = h
        self.next_leaf = first + self._group
        self.batches += 1
        return self._group


def synced_writebatch_rate(path: Path, seconds: float, group: int, meta_bytes: int) -> BatchRate:
    """Entries and keys per second written as the ledger would, by synced WriteBatches."""
    db = open_rdict(path)
    try:
        writer = _RawLedgerWriter(db, group, meta_bytes)
        entries, elapsed = timing.rate(seconds, writer.write_group)
        result = BatchRate(writer.batches, entries, writer.keys, elapsed)
        del writer
    finally:
        db.close()
    return result


def multiget_us(path: Path, stored_hashes: int, keys: int, seconds: float) -> tuple[float, int]:
    """Median µs of one multi-get of `keys` random stored hashes, read-only beside the writer.

    Returns (median µs, samples).
    """
    db = open_rdict(path, read_only=True)
    try:
        hashes = db.get_column_family(CF_HASHES)
        rng = random.Random(3)  # noqa: S311
        key_lists = [
            [_U64.pack(rng.randrange(stored_hashes)) for _ in range(keys)] for _ in range(1024)
        ]
        found: list[bytes | None] = hashes.get(key_lists[0])
        if any(value is None for value in found):
            raise RuntimeError("stored hashes missing: the bench's idea of the layout is wrong")

        def call(i: int) -> object:
            return hashes.get(key_lists[i % len(key_lists)])

        result = timing.median_us(seconds, call)
    finally:
        db.close()
    return result
