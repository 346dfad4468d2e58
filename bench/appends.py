"""Durable append throughput: many asyncio callers, one group-committing ledger."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.primitives import ENTRY_BYTES
from ledger import Ed25519NoteSigner, Ledger, RocksDBStorage
from ledger.storage import Commit

ORIGIN = "bench.example/ledger"


class CountingStorage(RocksDBStorage):
    """RocksDB storage that counts commits (one per signed checkpoint) and their time."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, create=True)
        self.commits = 0
        self.entries = 0
        self.hashes = 0
        self.busy_ns = 0
        self.meta_bytes = 0
        self._lock = threading.Lock()  # commits run in the ledger's worker thread

    def commit(self, commit: Commit) -> None:
        start = time.perf_counter_ns()
        super().commit(commit)
        busy = time.perf_counter_ns() - start
        with self._lock:
            self.busy_ns += busy
            self.commits += 1
            self.entries += len(commit.leaves)
            self.hashes += len(commit.hashes)
            self.meta_bytes = sum(len(v) for v in commit.meta.values())

    def snapshot(self) -> tuple[int, int, int, int]:
        with self._lock:
            return self.commits, self.entries, self.hashes, self.busy_ns


def new_signer() -> Ed25519NoteSigner:
    return Ed25519NoteSigner(ORIGIN, Ed25519PrivateKey.generate())


def entry_pool(count: int = 4096) -> list[bytes]:
    return [os.urandom(ENTRY_BYTES) for _ in range(count)]


@dataclass(frozen=True, slots=True)
class AppendResult:
    appends_per_s: float
    appenders: int
    commits: int
    entries: int
    hashes: int
    seconds: float
    commit_busy_fraction: float  # of wall time, inside storage.commit (batch + fsync)
    checkpoint_bytes: int

    @property
    def average_group(self) -> float:
        return self.entries / self.commits

    @property
    def hashes_per_entry(self) -> float:
        return self.hashes / self.entries


async def _measure(
    ledger: Ledger, storage: CountingStorage, seconds: float, appenders: int
) -> AppendResult:
    pool = entry_pool()
    stopping = False

    async def appender(offset: int) -> None:
        i = offset
        while not stopping:
            await ledger.append(pool[i % len(pool)])
            i += appenders

    tasks = [asyncio.create_task(appender(n)) for n in range(appenders)]
    await asyncio.sleep(min(1.0, seconds / 5))  # warm up: memtables, caches, steady groups
    c0, e0, h0, b0 = storage.snapshot()
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    c1, e1, h1, b1 = storage.snapshot()
    t1 = time.perf_counter()
    stopping = True
    await asyncio.gather(*tasks)
    elapsed = t1 - t0
    return AppendResult(
        appends_per_s=(e1 - e0) / elapsed,
        appenders=appenders,
        commits=c1 - c0,
        entries=e1 - e0,
        hashes=h1 - h0,
        seconds=elapsed,
        commit_busy_fraction=(b1 - b0) / 1e9 / elapsed,
        checkpoint_bytes=storage.meta_bytes,
    )


async def measure_appends(path: Path, seconds: float, appenders: int = 64) -> AppendResult:
    """Durable appends/s into a fresh ledger from `appenders` concurrent callers.

    Counted from the commits that complete inside the window, after a short warm-up.
    """
    storage = CountingStorage(path)
    ledger = Ledger.create(storage, ORIGIN, new_signer())
    try:
        return await _measure(ledger, storage, seconds, appenders)
    finally:
        await ledger.aclose()
