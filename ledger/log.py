"""The append lifecycle of a ledger, start to finish, in one place.

1. `submit` checks the entries, assigns their indexes and queues them with a future
   (a bounded queue: `append` waits for room when it is full — back-pressure instead
   of unbounded memory). Index writes that go with the entries become visible to
   `index_get` at once, so a caller can check-then-submit in one synchronous step
   (no await between) and a second caller already sees the first one's claim.
2. The single writer task takes everything queued, up to `max_batch_entries`
   (group commit: one fsync covers many callers). When its last group held more
   than one append, it first waits for more while they keep arriving (each within
   `commit_gap`), up to `commit_delay` (PostgreSQL's commit_delay, Tessera's batch
   age): a busy service then commits, signs and wakes callers once per dozen appends,
   not per one or two, and a lone caller never waits.
3. For each entry it builds the chained leaf ``prev_leaf_hash || entry``, hashes it
   and extends the in-memory frontier (the roots of the maximal complete subtrees),
   which yields exactly the new stored hashes of the dense layout — no reads needed.
4. It signs a C2SP checkpoint for the new size and root.
5. Leaves, stored hashes, the leaf-hash lookup, the index writes and the checkpoint
   go to storage as one atomic, synced commit, run in a worker thread so the event loop keeps
   queueing the next group meanwhile.
6. Only then does the in-memory state advance and each caller learn its index.
   If the commit fails, every caller in it gets the error, nothing advances, and
   the ledger refuses further appends until it is reopened (the disk's state after
   a failed fsync is not something to guess about).

Reads (leaves, proofs, the checkpoint) only ever see committed state.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from ledger._internal import tlog
from ledger.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from ledger.errors import (
    InvalidEntryError,
    InvalidRequestError,
    LedgerBusyError,
    LedgerClosedError,
    LedgerCorruptError,
    StorageError,
)
from ledger.hashing import EMPTY_ROOT, GENESIS_PREV_HASH, leaf_hash, node_hash
from ledger.note import Ed25519NoteVerifier, NoteSigner
from ledger.reader import FORMAT_VERSION, MAX_READ_RANGE, LedgerReader
from ledger.storage import (
    META_CHECKPOINT,
    META_CHECKPOINT_KEY,
    META_FORMAT,
    META_ORIGIN,
    Commit,
    IndexWrite,
    Storage,
)


class CheckpointSigner(NoteSigner, Protocol):
    """A note signer that can also name the key verifiers should trust."""

    def verifier(self) -> Ed25519NoteVerifier: ...


@dataclass(frozen=True, slots=True)
class LedgerSettings:
    max_entry_bytes: int = 1 << 20
    max_batch_entries: int = 4096
    max_queued_appends: int = 16384
    max_read_range: int = MAX_READ_RANGE
    # How long a busy writer may wait for a group to fill, in seconds, and the longest
    # gap with no new append that it waits through (it waits through three times the
    # recent gap between appends, up to this). Each commit costs the event loop about
    # 0.3 ms (checkpoint signature, hand-off, waking callers) whatever its size: a
    # stream of callers that each prepare their entry first (a service) then shares
    # commits, while callers that are all queued already are committed at once.
    commit_delay: float = 0.010
    commit_gap: float = 0.002

    def __post_init__(self) -> None:
        for name in ("commit_delay", "commit_gap"):
            value = getattr(self, name)
            if not 0 <= value <= 1:  # NaN fails too
                raise ValueError(f"{name} must be 0 to 1 second, not {value}")


@dataclass(slots=True)
class _Pending:
    first_index: int
    entries: Sequence[bytes]
    index: Sequence[IndexWrite]
    done: asyncio.Future[int]


@dataclass(frozen=True, slots=True)
class Submission:
    """Entries accepted for appending: their index now, durability when `done` resolves."""

    first_index: int
    done: asyncio.Future[int]


class Ledger(LedgerReader):
    """An append-only, hash-chained Merkle ledger with a single writer."""

    def __init__(
        self, storage: Storage, signer: CheckpointSigner, settings: LedgerSettings | None = None
    ) -> None:
        self.settings = settings or LedgerSettings()
        super().__init__(storage, max_read_range=self.settings.max_read_range)
        if (self.verifier.name, self.verifier.key_id) != (signer.name, signer.key_id):
            raise InvalidRequestError(
                f"checkpoint key {signer.name}/{signer.key_id.hex()} is not this ledger's key "
                f"{self.verifier.name}/{self.verifier.key_id.hex()}"
            )
        self._signer = signer
        self._frontier, self._last_leaf_hash = _load_frontier(storage, self._checkpoint)
        self._next_index = self.size
        # Index writes of accepted appends that are not durable yet: key -> (value, owner's
        # first index). The owner check keeps a newer claim when an older one lands.
        self._overlay: dict[bytes, tuple[bytes | None, int]] = {}
        self._queue: deque[_Pending] = deque()
        self._queued_entries = 0
        # A moving average of the time between two submissions (each counted up to
        # commit_gap), starting from the slowest pace it tells apart.
        self._arrival_gap = self.settings.commit_gap
        self._last_arrival = time.monotonic()
        self._wakeup = asyncio.Event()
        self._full = asyncio.Event()  # ends a commit delay early
        self._space = asyncio.Event()
        self._space.set()
        self._writer: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._failure: Exception | None = None
        self._closed = False
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._grown = asyncio.Condition()

    @classmethod
    def create(
        cls,
        storage: Storage,
        origin: str,
        signer: CheckpointSigner,
        settings: LedgerSettings | None = None,
    ) -> Ledger:
        """Initialise an empty ledger in `storage` and open it."""
        if storage.read_meta(META_FORMAT) is not None:
            raise InvalidRequestError("storage already holds a ledger")
        empty = sign_checkpoint(Checkpoint(origin, 0, EMPTY_ROOT), signer)
        storage.commit(
            Commit(
                0,
                [],
                [],
                0,
                [],
                meta={
                    META_FORMAT: FORMAT_VERSION,
                    META_ORIGIN: origin.encode(),
                    META_CHECKPOINT_KEY: signer.verifier().vkey().encode(),
                    META_CHECKPOINT: empty.to_bytes(),
                },
            )
        )
        return cls(storage, signer, settings)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- appending --------------------------------------------------------------

    async def append(self, entry: bytes, index: Sequence[IndexWrite] = ()) -> int:
        """Append one entry; returns its index once it is durable."""
        return await self.append_many((entry,), index)

    async def append_many(self, entries: Sequence[bytes], index: Sequence[IndexWrite] = ()) -> int:
        """Append entries as one unit (same commit); returns the first index."""
        self._check_entries(entries)
        self._start_writer()
        # Admitted from here on: aclose() waits for this append even while it still
        # waits for room in the queue.
        self._admit()
        try:
            while not self.has_room:
                self._space.clear()
                await self._space.wait()
                self._check_no_failure()
        except BaseException:  # cancelled (or failed) while waiting for room: never queued
            self._settled()
            raise
        return await self._enqueue(entries, index).done

    def submit(self, entries: Sequence[bytes], index: Sequence[IndexWrite] = ()) -> Submission:
        """Accept entries (and index writes committed with them) without waiting.

        Raises `LedgerBusyError` when the queue is full: await `wait_for_room` first.
        The entries get consecutive indexes from `next_index`; await `done` for
        durability (it raises if the commit fails, and then nothing was written).
        """
        self._check_entries(entries)
        self._start_writer()
        if not self.has_room:
            raise LedgerBusyError("the append queue is full; wait for room")
        self._admit()
        return self._enqueue(entries, index)

    def _admit(self) -> None:
        self._inflight += 1
        self._idle.clear()

    def _enqueue(self, entries: Sequence[bytes], index: Sequence[IndexWrite]) -> Submission:
        first = self._next_index
        self._next_index += len(entries)
        for key, value in index:
            self._overlay[key] = (value, first)
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(first, entries, index, done))
        self._queued_entries += len(entries)
        now = time.monotonic()
        gap = min(now - self._last_arrival, self.settings.commit_gap)
        self._arrival_gap += (gap - self._arrival_gap) / 8
        self._last_arrival = now
        self._wakeup.set()
        if self._queued_entries >= self.settings.max_batch_entries:
            self._full.set()
        return Submission(first, done)

    async def wait_for_room(self) -> None:
        """Return once `submit` can accept (raises if the ledger is closed)."""
        while True:
            self._start_writer()
            if self.has_room:
                return
            self._space.clear()
            await self._space.wait()

    @property
    def has_room(self) -> bool:
        """Whether `submit` would accept now."""
        return len(self._queue) < self.settings.max_queued_appends

    @property
    def next_index(self) -> int:
        """The index the next submitted entry will get."""
        return self._next_index

    def index_get(self, key: bytes) -> bytes | None:
        """An index value, including writes of accepted appends not yet durable."""
        if (pending := self._overlay.get(key)) is not None:
            return pending[0]
        return super().index_get(key)

    def index_get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        stored = super().index_get_many(keys)
        overlay = self._overlay
        if not overlay:
            return stored
        return [
            overlay[k][0] if k in overlay else value for k, value in zip(keys, stored, strict=True)
        ]

    def _check_entries(self, entries: Sequence[bytes]) -> None:
        if not entries:
            raise InvalidEntryError("nothing to append")
        for entry in entries:
            self.check_entry(entry)
        if len(entries) > self.settings.max_batch_entries:
            raise InvalidEntryError(
                f"{len(entries)} entries exceed the limit of "
                f"{self.settings.max_batch_entries} per call"
            )

    def check_entry(self, entry: bytes) -> None:
        if not isinstance(entry, bytes):
            raise InvalidEntryError(f"an entry must be bytes, not {type(entry).__name__}")
        if not entry:
            raise InvalidEntryError("an entry must not be empty")
        if len(entry) > self.settings.max_entry_bytes:
            raise InvalidEntryError(
                f"entry of {len(entry)} bytes exceeds the limit of {self.settings.max_entry_bytes}"
            )

    def _check_no_failure(self) -> None:
        if self._failure is not None:
            raise LedgerClosedError(_after_failure(self._failure))

    def _start_writer(self) -> None:
        self._check_no_failure()
        if self._closed:
            raise LedgerClosedError("ledger is closed")
        if self._writer is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="ledger-commit")
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def _settled(self) -> None:
        # Every accepted append is settled exactly once; aclose waits for the count to drain.
        self._inflight -= 1
        if self._inflight == 0:
            self._idle.set()

    def _resolve(self, pending: _Pending, index: int | None, error: Exception | None) -> None:
        if not pending.done.done():  # the caller may have been cancelled meanwhile
            if error is None:
                pending.done.set_result(index)  # type: ignore[arg-type]
            else:
                pending.done.set_exception(error)
        self._settled()

    async def _write_loop(self) -> None:
        queue, limit = self._queue, self.settings.max_batch_entries
        crowded = False  # the last group held more than one append
        while True:
            while not queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            if crowded and self.settings.commit_delay > 0:
                await self._delay_commit()
            group = [queue.popleft()]
            count = len(group[0].entries)
            while count < limit and queue:
                item = queue.popleft()
                group.append(item)
                count += len(item.entries)
            self._queued_entries -= count
            crowded = len(group) > 1
            self._space.set()
            await self._commit_group(group)

    async def _delay_commit(self) -> None:
        """Wait while appends keep arriving at their recent pace: until a gap of three
        times the usual one (at most `commit_gap`) passes without one, `commit_delay`
        has passed, the group is full, or aclose begins."""
        deadline = time.monotonic() + self.settings.commit_delay
        while self._queued_entries < self.settings.max_batch_entries and not self._closed:
            seen = self._queued_entries
            gap = min(self.settings.commit_gap, 3 * self._arrival_gap)
            wait = min(gap, deadline - time.monotonic())
            if wait <= 0:
                return
            self._full.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._full.wait(), wait)
            if self._queued_entries == seen:
                return

    async def _commit_group(self, group: list[_Pending]) -> None:
        if self._failure is not None:
            for pending in group:
                self._resolve(pending, None, LedgerClosedError(_after_failure(self._failure)))
            return
        size = self.size
        frontier = list(self._frontier)
        prev = self._last_leaf_hash
        leaves: list[bytes] = []
        leaf_hashes: list[bytes] = []
        hashes: list[bytes] = []
        index: list[IndexWrite] = []
        for pending in group:
            if pending.first_index != size + len(leaves):  # submit and writer disagree: a bug
                raise LedgerCorruptError(
                    f"queued entry has index {pending.first_index}, expected {size + len(leaves)}"
                )
            index.extend(pending.index)
            for entry in pending.entries:
                leaf = prev + entry
                h = prev = leaf_hash(leaf)
                leaves.append(leaf)
                leaf_hashes.append(h)
                hashes.append(h)
                n = size + len(leaves) - 1
                while n & 1:
                    h = node_hash(frontier.pop(), h)
                    hashes.append(h)
                    n >>= 1
                frontier.append(h)
        new_size = size + len(leaves)
        signed = sign_checkpoint(Checkpoint(self.origin, new_size, _fold(frontier)), self._signer)
        commit = Commit(
            size,
            leaves,
            leaf_hashes,
            tlog.stored_hash_count(size),
            hashes,
            meta={META_CHECKPOINT: signed.to_bytes()},
            index=index,
        )
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._storage.commit, commit
            )
        except Exception as exc:
            self._failure = exc
            self._overlay.clear()  # nothing more will be committed; show only what is
            for pending in group:
                self._resolve(pending, None, StorageError(f"append failed: {exc}"))
            return
        self._frontier, self._last_leaf_hash, self._checkpoint = frontier, prev, signed
        self._remember_hashes(commit.first_hash, hashes)
        overlay = self._overlay
        for pending in group:
            for key, _ in pending.index:
                claim = overlay.get(key)
                if claim is not None and claim[1] == pending.first_index:
                    del overlay[key]
            self._resolve(pending, pending.first_index, None)
        async with self._grown:
            self._grown.notify_all()

    async def wait_for_growth(self, size: int) -> int:
        """Wait until the ledger holds more than `size` entries (or closes); its new size."""
        async with self._grown:
            await self._grown.wait_for(lambda: self.size > size or self._closed)
        return self.size

    def close(self) -> None:
        """Release the storage of a ledger that never appended in this event loop."""
        if self._writer is not None and not self._closed:
            raise InvalidRequestError("a ledger that has appended must be closed with aclose()")
        self._closed = True
        super().close()

    async def aclose(self) -> None:
        """Stop accepting appends, settle every accepted one, then release the storage."""
        if self._closed:
            return
        self._closed = True
        self._full.set()  # commit what is queued without delay
        async with self._grown:  # release watchers: no growth will come
            self._grown.notify_all()
        if self._writer is not None:
            # The writer keeps draining (failing them after a failed commit) until the
            # last accepted append is settled, including callers still waiting for room.
            idle = asyncio.ensure_future(self._idle.wait())
            await asyncio.wait((idle, self._writer), return_when=asyncio.FIRST_COMPLETED)
            idle.cancel()
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._storage.close()


def _after_failure(failure: BaseException) -> str:
    return f"ledger stopped accepting appends after a failed commit: {failure}"


def _fold(frontier: list[bytes]) -> bytes:
    if not frontier:
        return EMPTY_ROOT
    root = frontier[-1]
    for h in reversed(frontier[:-1]):
        root = node_hash(h, root)
    return root


def _load_frontier(storage: Storage, signed: SignedCheckpoint) -> tuple[list[bytes], bytes]:
    """Rebuild the in-memory frontier and chain head, proving them against the checkpoint."""
    size = signed.checkpoint.size
    if size == 0:
        return [], GENESIS_PREV_HASH
    frontier = storage.read_hashes(tlog.tree_hash_indexes(size))
    if not hmac.compare_digest(_fold(frontier), signed.checkpoint.root_hash):
        raise LedgerCorruptError("stored hashes do not match the signed checkpoint's root")
    (last,) = storage.read_hashes([tlog.stored_hash_index(0, size - 1)])
    if storage.find_leaf(last) != size - 1:
        raise LedgerCorruptError(f"the last leaf {size - 1} is not where its hash says")
    return frontier, last
