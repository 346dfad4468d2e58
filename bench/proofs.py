"""Proof latency at growing tree sizes, on one ledger built with `append_many`."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import primitives, timing
from bench.appends import ORIGIN, entry_pool, new_signer
from bench.report import console
from ledger import Ledger, RocksDBStorage

CHUNK = 4096  # LedgerSettings.max_batch_entries
MULTIGET_KEYS = 20  # about the hashes one proof reads at a million leaves
SIZES: tuple[tuple[str, int], ...] = (("1k", 1_000), ("100k", 100_000), ("1m", 1_000_000))
TEN_MILLION = ("10m", 10_000_000)
_ARGS = 4096  # pre-drawn random arguments per figure


@dataclass(frozen=True, slots=True)
class ProofPoint:
    label: str
    size: int
    inclusion_us: float
    inclusion_samples: int
    inclusion_path: float  # mean hashes per proof
    consistency_us: float
    consistency_samples: int
    consistency_path: float
    multiget_us: float
    multiget_samples: int


def stored_hash_count(size: int) -> int:
    """Hashes the dense layout holds for `size` leaves: one per complete subtree."""
    return 2 * size - size.bit_count()


def _check_proofs(ledger: Ledger, index: int, old_size: int) -> None:
    """Make sure what is timed is a correct proof, not a fast wrong answer."""
    ledger.inclusion_proof(index).verify(ledger.leaf(index).hash, ledger.root_hash)
    ledger.consistency_proof(old_size).verify(ledger.root_at(old_size), ledger.root_hash)


def _measure_at(ledger: Ledger, path: Path, label: str, seconds: float) -> ProofPoint:
    size = ledger.size
    rng = random.Random(size)  # noqa: S311 — reproducible, not crypto
    indexes = [rng.randrange(size) for _ in range(_ARGS)]
    old_sizes = [rng.randint(1, size) for _ in range(_ARGS)]
    _check_proofs(ledger, indexes[0], old_sizes[0])

    def inclusion(i: int) -> object:
        return ledger.inclusion_proof(indexes[i % _ARGS])

    def consistency(i: int) -> object:
        return ledger.consistency_proof(old_sizes[i % _ARGS])

    incl_us, incl_n = timing.median_us(seconds, inclusion)
    mg_us, mg_n = primitives.multiget_us(path, stored_hash_count(size), MULTIGET_KEYS, seconds)
    cons_us, cons_n = timing.median_us(seconds, consistency)
    sample = range(256)
    return ProofPoint(
        label=label,
        size=size,
        inclusion_us=incl_us,
        inclusion_samples=incl_n,
        inclusion_path=sum(len(ledger.inclusion_proof(indexes[i]).path) for i in sample) / 256,
        consistency_us=cons_us,
        consistency_samples=cons_n,
        consistency_path=sum(len(ledger.consistency_proof(old_sizes[i]).path) for i in sample)
        / 256,
        multiget_us=mg_us,
        multiget_samples=mg_n,
    )


async def measure_proofs(
    path: Path, points: Sequence[tuple[str, int]], seconds: float
) -> list[ProofPoint]:
    """Grow one ledger through `points` (ascending sizes), timing proofs at each."""
    storage = RocksDBStorage(path, create=True)
    ledger = Ledger.create(storage, ORIGIN, new_signer())
    pool = entry_pool(CHUNK)
    results: list[ProofPoint] = []
    building = 0.0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        # No auto-refresh: a background render thread would share the GIL with timed code.
        with Progress(*columns, console=console, auto_refresh=False) as progress:
            task = progress.add_task("building ledger", total=max(size for _, size in points))
            for label, size in points:
                start = time.perf_counter()
                while ledger.size < size:
                    await ledger.append_many(pool[: min(CHUNK, size - ledger.size)])
                    progress.update(task, completed=ledger.size, refresh=True)
                building += time.perf_counter() - start
                progress.update(task, description=f"proofs at {label}", refresh=True)
                results.append(_measure_at(ledger, path, label, seconds))
                progress.console.print(
                    f"size {size:,}: built at {ledger.size / building:,.0f} entries/s "
                    f"(append_many of {CHUNK}), proofs timed"
                )
                progress.update(task, description="building ledger", refresh=True)
    finally:
        await ledger.aclose()
    return results
