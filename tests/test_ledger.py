"""Behaviour of `Ledger` and `LedgerReader` on real RocksDB directories.

Everything goes through the public API (`create_ledger`, `open_ledger`, `open_reader`).
The one test double is `_FailingStorage`, a `MemoryStorage` whose commit raises
OSError on a chosen call: a failed fsync cannot be provoked any other way.
`_RecordingStorage` only notes the size of each commit, to show how appends group.

pytest-asyncio is not used: each test drives its coroutine with `run`, which also
bounds it with a timeout so that a hang fails the test instead of the suite.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ledger import (
    Ed25519NoteSigner,
    Leaf,
    Ledger,
    LedgerReader,
    LedgerSettings,
    MemoryStorage,
    ProofBundle,
    RocksDBStorage,
    audit_storage,
    create_ledger,
    errors,
    open_checkpoint,
    open_ledger,
    open_reader,
)
from ledger import reader as reader_module
from ledger.errors import (
    InvalidEntryError,
    InvalidRequestError,
    LedgerClosedError,
    LedgerLockedError,
    LedgerNotFoundError,
    NoteError,
    ProofError,
    StorageError,
    VerificationError,
)
from ledger.storage import Commit

T = TypeVar("T")

ORIGIN = "example.com/licence-ledger-test"
TIMEOUT = 15.0


def _signer(seed: int = 1, name: str = ORIGIN) -> Ed25519NoteSigner:
    return Ed25519NoteSigner(name, Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32))


SIGNER = _signer()
OTHER_SIGNER = _signer(2)  # same key name, different key


def run(main: Callable[[], Awaitable[T]], timeout: float = TIMEOUT) -> T:
    """Run a coroutine function in a fresh event loop, failing it if it hangs."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)

    return asyncio.run(bounded())


def entry(i: int) -> bytes:
    return f"licence #{i}".encode()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH, independent of the ledger's code."""
    if not leaves:
        return _sha256(b"")
    if len(leaves) == 1:
        return _sha256(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return _sha256(b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:]))


def _state(reader: LedgerReader) -> tuple[int, bytes, bytes]:
    return reader.size, reader.root_hash, reader.checkpoint.to_bytes()


def _assert_chain(reader: LedgerReader) -> None:
    """Every leaf links to its predecessor, and the root is the reference root."""
    leaves: list[Leaf] = []
    for start in range(0, reader.size, reader.max_read_range):
        leaves += reader.leaves(start, min(reader.size, start + reader.max_read_range))
    prev = bytes(32)
    for index, leaf in enumerate(leaves):
        assert leaf.index == index
        assert leaf.prev_hash == prev, f"leaf {index} does not link to leaf {index - 1}"
        prev = leaf.hash
    assert reader.root_hash == _reference_root([leaf.data for leaf in leaves])


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger"


async def _fill(ledger: Ledger, count: int) -> None:
    start = ledger.size
    for i in range(start, start + count):
        assert await ledger.append(entry(i)) == i


def _create_filled(path: Path, count: int, settings: LedgerSettings | None = None) -> None:
    async def main() -> None:
        ledger = create_ledger(path, ORIGIN, SIGNER, settings)
        try:
            batch = ledger.settings.max_batch_entries
            for start in range(0, count, batch):
                await ledger.append_many(
                    [entry(i) for i in range(start, min(count, start + batch))]
                )
        finally:
            await ledger.aclose()

    run(main)


# --- appending ---------------------------------------------------------------------------


def test_append_returns_consecutive_indexes(path: Path) -> None:
    async def main() -> None:
        ledger = create_ledger(path, ORIGIN, SIGNER)
        try:
            assert ledger.size == 0
            assert [await ledger.append(entry(i)) for i in range(5)] == list(range(5))
            assert await ledger.append_many([entry(5), entry(6), entry(7)]) == 5
            assert await ledger.append(entry(8)) == 8
            assert ledger.size == 9
            assert [leaf.entry for leaf in ledger.leaves(0, 9)] == [entry(i) for i in range(9)]
            _assert_chain(ledger)
        finally:
            await ledger.aclose()

    run(main)


def test_concurrent_appends_get_unique_indexes(path: Path) -> None:
    tasks, per_task = 64, 8

    async def main() -> None:
        ledger = create_ledger(path, ORIGIN, SIGNER)

        async def writer(task: int) -> list[tuple[int, bytes]]:
            got: list[tuple[int, bytes]] = []
            for j in range(per_task):
                data = f"task {task} entry {j}".encode()
                got.append((await ledger.append(data), data))
            return got

        try:
            results = await asyncio.gather(*(writer(t) for t in range(tasks)))
            total = tasks * per_task
            indexes = sorted(index for got in results for index, _ in got)
            assert indexes == list(range(total))
            assert ledger.size == total
            for got in results:
                own = [index for index, _ in got]
                assert own == sorted(own)  # one task's appends land in its own order
                for index, data in got:
                    assert ledger.leaves(index, index + 1)[0].entry == data
            _assert_chain(ledger)
        finally:
            await ledger.aclose()

    run(main)
    report = audit_storage(path)
    assert report.ok, report.problem
    assert report.size == tasks * per_task


def test_checkpoint_after_appends(path: Path) -> None:
    async def main() -> None:
        ledger = create_ledger(path, ORIGIN, SIGNER)
        try:
            empty = open_checkpoint(ledger.checkpoint.to_bytes(), ledger.verifier, origin=ORIGIN)
            assert empty.checkpoint.size == 0
            assert empty.checkpoint.root_hash == _sha256(b"")
            await _fill(ledger, 13)
            signed = open_checkpoint(ledger.checkpoint.to_bytes(), ledger.verifier, origin=ORIGIN)
            assert signed.checkpoint.size == 13 == ledger.size
            assert signed.checkpoint.root_hash == ledger.root_at(13) == ledger.root_hash
            assert ledger.verifier.vkey() == SIGNER.vkey()
            with pytest.raises(NoteError):
                open_checkpoint(ledger.checkpoint.to_bytes(), OTHER_SIGNER.verifier())
            proof = ledger.consistency_proof(1, 13)
            proof.verify(ledger.root_at(1), signed.checkpoint.root_hash)
        finally:
            await ledger.aclose()

    run(main)


def test_reopen_keeps_state_and_continues_the_chain(path: Path) -> None:
    async def first() -> tuple[int, bytes, bytes]:
        ledger = create_ledger(path, ORIGIN, SIGNER)
        try:
            await _fill(ledger, 21)
            return _state(ledger)
        finally:
            await ledger.aclose()

    before = run(first)

    async def second() -> None:
        ledger = open_ledger(path, SIGNER)
        try:
            assert _state(ledger) == before
            assert ledger.origin == ORIGIN
            old_leaf = ledger.leaves(20, 21)[0]
            await _fill(ledger, 7)
            assert ledger.size == 28
            assert ledger.leaves(21, 22)[0].prev_hash == old_leaf.hash
            ledger.consistency_proof(21).verify(before[1], ledger.root_hash)
            _assert_chain(ledger)
        finally:
            await ledger.aclose()

    run(second)
    reader = open_reader(path)
    try:
        assert reader.size == 28
        _assert_chain(reader)
    finally:
        reader.close()


def test_aclose_drains_queued_appends(path: Path) -> None:
    count = 300

    async def main() -> list[int]:
        ledger = create_ledger(path, ORIGIN, SIGNER)
        pending = [asyncio.create_task(ledger.append(entry(i))) for i in range(count)]
        await asyncio.sleep(0)  # every task has queued its entry
        await ledger.aclose()
        assert all(task.done() for task in pending)
        with pytest.raises(LedgerClosedError):
            await ledger.append(b"after close")
        return [task.result() for task in pending]

    assert sorted(run(main)) == list(range(count))
    reader = open_reader(path)
    try:
        assert reader.size == count
        assert sorted(leaf.entry for leaf in reader.leaves(0, count)) == sorted(
            entry(i) for i in range(count)
        )
        _assert_chain(reader)
    finally:
        reader.close()


def test_aclose_drains_appends_waiting_for_queue_space() -> None:
    # With a full queue, aclose() can put its stop marker ahead of appends whose
    # put() was already woken; the writer stops at the marker and those callers
    # (and the ones still waiting for space) never get an answer.
    count = 40
    ledger = Ledger.create(MemoryStorage(), ORIGIN, SIGNER, LedgerSettings(max_queued_appends=4))

    async def main() -> None:
        pending = [asyncio.create_task(ledger.append(entry(i))) for i in range(count)]
        await asyncio.sleep(0)
        closer = asyncio.create_task(ledger.aclose())
        await closer
        await asyncio.wait_for(asyncio.gather(*pending), 1)

    run(main)


# --- bad input changes nothing -------------------------------------------------------

BAD_ENTRY: Any = "not bytes"
BAD_BYTEARRAY: Any = bytearray(b"x")
SMALL = LedgerSettings(max_entry_bytes=64, max_batch_entries=4, max_read_range=10)

BAD_APPENDS: list[tuple[str, Callable[[Ledger], Awaitable[int]]]] = [
    ("empty entry", lambda ledger: ledger.append(b"")),
    ("str entry", lambda ledger: ledger.append(BAD_ENTRY)),
    ("bytearray entry", lambda ledger: ledger.append(BAD_BYTEARRAY)),
    ("oversized entry", lambda ledger: ledger.append(b"x" * 65)),
    ("no entries", lambda ledger: ledger.append_many([])),
    ("too many entries", lambda ledger: ledger.append_many([b"x"] * 5)),
    ("one empty in a batch", lambda ledger: ledger.append_many([b"ok", b""])),
    ("one str in a batch", lambda ledger: ledger.append_many([b"ok", BAD_ENTRY])),
    ("one oversized in a batch", lambda ledger: ledger.append_many([b"ok", b"x" * 65])),
    ("a str as the batch", lambda ledger: ledger.append_many(BAD_ENTRY)),
]


def test_bad_appends_change_nothing(path: Path) -> None:
    async def main() -> None:
        ledger = create_ledger(path, ORIGIN, SIGNER, SMALL)
        try:
            await ledger.append_many([entry(i) for i in range(4)])
            await ledger.append(b"x" * 64)  # exactly at the limit is fine
            before = _state(ledger)
            for name, bad in BAD_APPENDS:
                with pytest.raises(InvalidEntryError):
                    await bad(ledger)
                assert _state(ledger) == before, name
            assert await ledger.append(b"next") == 5
            assert ledger.leaves(5, 6)[0].prev_hash == ledger.leaves(4, 5)[0].hash
        finally:
            await ledger.aclose()

    run(main)
    reader = open_reader(path)
    try:
        assert reader.size == 6
        _assert_chain(reader)
    finally:
        reader.close()


FILLED = 20
UNKNOWN_HASH = _sha256(b"no such leaf")

BAD_READS: list[tuple[str, Callable[[LedgerReader], object]]] = [
    ("inclusion index -1", lambda r: r.inclusion_proof(-1)),
    ("inclusion index = size", lambda r: r.inclusion_proof(FILLED)),
    ("inclusion index > tree size", lambda r: r.inclusion_proof(5, 5)),
    ("inclusion tree size > size", lambda r: r.inclusion_proof(0, FILLED + 1)),
    ("inclusion tree size -1", lambda r: r.inclusion_proof(0, -1)),
    ("consistency old 0", lambda r: r.consistency_proof(0)),
    ("consistency old 0 new 0", lambda r: r.consistency_proof(0, 0)),
    ("consistency old -1", lambda r: r.consistency_proof(-1, 5)),
    ("consistency old > new", lambda r: r.consistency_proof(6, 5)),
    ("consistency new > size", lambda r: r.consistency_proof(1, FILLED + 1)),
    ("consistency old > size", lambda r: r.consistency_proof(FILLED + 1)),
    ("leaves reversed", lambda r: r.leaves(5, 3)),
    ("leaves empty", lambda r: r.leaves(3, 3)),
    ("leaves negative start", lambda r: r.leaves(-1, 2)),
    ("leaves beyond size", lambda r: r.leaves(FILLED - 1, FILLED + 1)),
    ("leaves entirely beyond size", lambda r: r.leaves(FILLED, FILLED + 1)),
    ("leaves over the limit", lambda r: r.leaves(0, 11)),
    ("leaf -1", lambda r: r.leaf(-1)),
    ("leaf = size", lambda r: r.leaf(FILLED)),
    ("find unknown hash", lambda r: r.find_leaf(UNKNOWN_HASH)),
    ("find empty hash", lambda r: r.find_leaf(b"")),
    ("root beyond size", lambda r: r.root_at(FILLED + 1)),
    ("root of negative size", lambda r: r.root_at(-1)),
    ("bundle index = size", lambda r: r.proof_bundle(FILLED)),
    ("bundle index -1", lambda r: r.proof_bundle(-1)),
]


@pytest.fixture(scope="module")
def filled_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("filled") / "ledger"
    _create_filled(path, FILLED, SMALL)
    return path


@pytest.fixture(params=["writer", "reader"])
def opened(request: pytest.FixtureRequest, filled_path: Path) -> Iterator[LedgerReader]:
    reader: LedgerReader
    if request.param == "writer":
        reader = open_ledger(filled_path, SIGNER, SMALL)
    else:
        reader = open_reader(filled_path)
        reader.max_read_range = SMALL.max_read_range
    try:
        yield reader
    finally:
        reader.close()


def test_valid_reads_of_the_filled_ledger(opened: LedgerReader) -> None:
    assert opened.size == FILLED
    assert [leaf.entry for leaf in opened.leaves(0, 10)] == [entry(i) for i in range(10)]
    leaf = opened.leaf(FILLED - 1)
    assert opened.find_leaf(leaf.hash) == FILLED - 1
    opened.inclusion_proof(FILLED - 1).verify(leaf.hash, opened.root_hash)
    assert opened.root_at(0) == _sha256(b"")
    _assert_chain(opened)


@pytest.mark.parametrize(("name", "bad"), BAD_READS, ids=[name for name, _ in BAD_READS])
def test_bad_reads_are_invalid_requests(
    opened: LedgerReader, name: str, bad: Callable[[LedgerReader], object]
) -> None:
    before = _state(opened)
    with pytest.raises(InvalidRequestError):
        bad(opened)
    assert _state(opened) == before


# --- opening and locking ------------------------------------------------------------------


def test_second_writer_is_locked_out_but_readers_are_not(path: Path) -> None:
    async def main() -> None:
        ledger = create_ledger(path, ORIGIN, SIGNER)
        try:
            await _fill(ledger, 5)
            with pytest.raises(LedgerLockedError, match="already open by another writer"):
                open_ledger(path, SIGNER)
            with pytest.raises(LedgerLockedError):
                create_ledger(path, ORIGIN, SIGNER)
            reader = open_reader(path)
            try:
                assert _state(reader) == _state(ledger)
                leaf = reader.leaf(4)
                reader.inclusion_proof(4).verify(leaf.hash, ledger.root_hash)
                await _fill(ledger, 3)  # the writer carries on beside the reader
                assert reader.size == 5  # a reader serves its own snapshot
                reader.consistency_proof(5, 5).verify(reader.root_hash, reader.root_hash)
            finally:
                reader.close()
            fresh = open_reader(path)
            try:
                assert _state(fresh) == _state(ledger)
            finally:
                fresh.close()
        finally:
            await ledger.aclose()

        # Once the first writer is closed, a second one may open the ledger, even while
        # the closed object is still referenced (RocksDB's LOCK must be released).
        again = open_ledger(path, SIGNER)
        try:
            assert again.size == 8
            assert ledger.size == 8
        finally:
            again.close()

    run(main)


def test_reopen_while_the_closed_ledger_object_is_alive(path: Path) -> None:
    first = create_ledger(path, ORIGIN, SIGNER)
    first.close()
    second = open_ledger(path, SIGNER)
    second.close()
    reader = open_reader(path)
    reader.close()
    third = open_ledger(path, SIGNER)
    third.close()
    assert first.size == second.size == third.size == 0
    with pytest.raises(LedgerClosedError):
        first.find_leaf(UNKNOWN_HASH)  # a closed ledger does not read a reopened store


def test_opening_a_missing_ledger(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    with pytest.raises(LedgerNotFoundError):
        open_ledger(missing, SIGNER)
    with pytest.raises(LedgerNotFoundError):
        open_reader(missing)
    assert not missing.exists()


def test_creating_twice_fails_and_keeps_the_first(path: Path) -> None:
    _create_filled(path, 6)
    reader = open_reader(path)
    before = _state(reader)
    reader.close()
    with pytest.raises(InvalidRequestError, match="already holds a ledger"):
        create_ledger(path, "example.com/another-log", OTHER_SIGNER)
    reader = open_reader(path)
    try:
        assert _state(reader) == before
        assert reader.origin == ORIGIN
        assert reader.verifier.vkey() == SIGNER.vkey()
        _assert_chain(reader)
    finally:
        reader.close()
    assert audit_storage(path).ok


def test_opening_with_another_key_is_refused(path: Path) -> None:
    _create_filled(path, 3)
    with pytest.raises(InvalidRequestError, match="not this ledger's key"):
        open_ledger(path, OTHER_SIGNER)
    with pytest.raises(InvalidRequestError):
        open_ledger(path, _signer(1, name="another.example/log"))
    ledger = open_ledger(path, SIGNER)  # the refused opens released the lock
    try:
        assert ledger.size == 3
    finally:
        ledger.close()


# --- group commit under load -----------------------------------------------------------


class _RecordingStorage(MemoryStorage):
    """A MemoryStorage that notes how many leaves each commit carried."""

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[int] = []

    def commit(self, commit: Commit) -> None:
        self.groups.append(len(commit.leaves))
        super().commit(commit)


def _recording_ledger(**settings: Any) -> tuple[Ledger, _RecordingStorage]:
    storage = _RecordingStorage()
    ledger = Ledger.create(storage, ORIGIN, SIGNER, LedgerSettings(**settings))
    del storage.groups[:]  # the empty tree `create` commits
    return ledger, storage


async def _one_by_one(ledger: Ledger, first: int, count: int) -> list[int]:
    """Appends that arrive 10 ms apart, as busy callers do."""
    tasks = []
    for i in range(first, first + count):
        tasks.append(asyncio.create_task(ledger.append(entry(i))))
        await asyncio.sleep(0.01)
    return await asyncio.gather(*tasks)


def test_a_lone_caller_never_waits_for_the_commit_delay() -> None:
    ledger, storage = _recording_ledger(commit_delay=1.0)

    async def main() -> None:
        for i in range(5):
            assert await ledger.append(entry(i)) == i
        await ledger.aclose()

    run(main, timeout=2.0)  # five delays would take 5 s
    assert storage.groups == [1] * 5


def test_a_busy_ledger_waits_to_commit_callers_together() -> None:
    ledger, storage = _recording_ledger(commit_delay=1.0, commit_gap=0.1)

    async def main() -> None:
        # Two callers at once: the group is crowded, so the writer now waits for more.
        await asyncio.gather(ledger.append(entry(0)), ledger.append(entry(1)))
        assert await _one_by_one(ledger, 2, 10) == list(range(2, 12))
        await ledger.aclose()

    run(main)
    assert storage.groups == [2, 10]
    assert ledger.size == 12


def test_callers_that_are_all_queued_are_committed_at_once() -> None:
    # Appenders that each wait for their last append: once all of them are queued no
    # more can come, and the writer commits without waiting for the delay.
    ledger, storage = _recording_ledger(commit_delay=1.0, commit_gap=0.2)

    async def appender(n: int) -> None:
        for i in range(10):
            await ledger.append(entry(100 * n + i))

    async def main() -> None:
        await asyncio.gather(*(appender(n) for n in range(16)))
        await ledger.aclose()

    run(main, timeout=3.0)  # ten delays would take 10 s
    assert sum(storage.groups) == 160
    assert len(storage.groups) <= 20  # a few groups of one before the writer is busy


def test_a_full_group_ends_the_commit_delay() -> None:
    ledger, storage = _recording_ledger(commit_delay=1.0, commit_gap=0.5, max_batch_entries=4)

    async def main() -> None:
        await asyncio.gather(ledger.append(entry(0)), ledger.append(entry(1)))
        await _one_by_one(ledger, 2, 4)
        await ledger.aclose()

    run(main, timeout=0.9)  # the fourth append fills the group: no wait for the delay
    assert storage.groups == [2, 4]


def test_aclose_commits_a_delayed_group_at_once() -> None:
    ledger, storage = _recording_ledger(commit_delay=1.0, commit_gap=1.0)

    async def main() -> None:
        await asyncio.gather(ledger.append(entry(0)), ledger.append(entry(1)))
        late = asyncio.create_task(ledger.append(entry(2)))
        await asyncio.sleep(0.05)  # the writer is delaying its commit now
        await ledger.aclose()
        assert await late == 2

    run(main, timeout=0.9)
    assert storage.groups == [2, 1]


@pytest.mark.parametrize("name", ["commit_delay", "commit_gap"])
@pytest.mark.parametrize("seconds", [-0.001, 1.5, float("nan"), float("inf")])
def test_commit_waits_outside_0_to_1_second_are_refused(name: str, seconds: float) -> None:
    with pytest.raises(ValueError, match=name):
        LedgerSettings(**{name: seconds})  # type: ignore[arg-type]


# --- a failing commit ---------------------------------------------------------------------


class _FailingStorage(MemoryStorage):
    """A MemoryStorage whose `fail_on`-th commit raises OSError (like a failed fsync).

    With `hold`, that commit first waits until the test releases it, so the test can
    queue more work while the commit is in flight.
    """

    def __init__(self, fail_on: int, *, hold: bool = False) -> None:
        super().__init__()
        self.calls = 0
        self.fail_on = fail_on
        self.entered = threading.Event()
        self.release = threading.Event()
        if not hold:
            self.release.set()

    def commit(self, commit: Commit) -> None:
        self.calls += 1
        if self.calls == self.fail_on:
            self.entered.set()
            self.release.wait(TIMEOUT)
            raise OSError("injected fsync failure")
        super().commit(commit)


def test_failed_commit_fails_its_group_and_stops_the_ledger() -> None:
    storage = _FailingStorage(fail_on=4)  # create, then two good commits, then a bad one

    async def main() -> None:
        ledger = Ledger.create(storage, ORIGIN, SIGNER)
        await _fill(ledger, 2)
        before = _state(ledger)
        group = [ledger.append(entry(i)) for i in range(2, 8)]
        group.append(ledger.append_many([entry(8), entry(9)]))
        results = await asyncio.gather(*group, return_exceptions=True)
        for result in results:
            assert type(result) is StorageError, result
            assert "injected fsync failure" in str(result)
        assert storage.calls == 4
        assert _state(ledger) == before
        assert len(list(storage.scan_leaves())) == 2
        with pytest.raises(LedgerClosedError, match="failed commit"):
            await ledger.append(entry(10))
        with pytest.raises(LedgerClosedError):
            await ledger.append_many([entry(10)])
        # Committed history stays readable and provable.
        leaf = ledger.leaf(1)
        ledger.inclusion_proof(1).verify(leaf.hash, ledger.root_hash)
        await ledger.aclose()
        assert storage.calls == 4

    run(main)


def test_appends_queued_behind_a_failed_commit_are_refused() -> None:
    storage = _FailingStorage(fail_on=2, hold=True)

    async def main() -> None:
        ledger = Ledger.create(storage, ORIGIN, SIGNER)
        first = asyncio.create_task(ledger.append(entry(0)))
        while not storage.entered.is_set():
            await asyncio.sleep(0.001)
        queued = [asyncio.create_task(ledger.append(entry(i))) for i in range(1, 5)]
        await asyncio.sleep(0)
        storage.release.set()
        with pytest.raises(StorageError) as failed:
            await first
        assert type(failed.value) is StorageError
        for task in queued:
            with pytest.raises(LedgerClosedError):
                await task
        assert ledger.size == 0
        await ledger.aclose()

    run(main)


def test_aclose_during_a_failing_commit_returns() -> None:
    storage = _FailingStorage(fail_on=2, hold=True)

    async def main() -> None:
        ledger = Ledger.create(storage, ORIGIN, SIGNER)
        first = asyncio.create_task(ledger.append(entry(0)))
        while not storage.entered.is_set():
            await asyncio.sleep(0.001)
        closer = asyncio.create_task(ledger.aclose())
        await asyncio.sleep(0)  # aclose() has queued its stop marker
        storage.release.set()
        with pytest.raises(StorageError):
            await first
        await asyncio.wait_for(closer, 1)

    run(main)


# --- proof bundles ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LedgerReader]:
    path = tmp_path_factory.mktemp("bundles") / "ledger"
    _create_filled(path, 11)
    reader = open_reader(path)
    yield reader
    reader.close()


def _with_line(text: str, number: int, line: str) -> str:
    lines = text.split("\n")
    lines[number] = line
    return "\n".join(lines)


def _flip(h: bytes) -> bytes:
    return bytes([h[0] ^ 1]) + h[1:]


def test_proof_bundles_round_trip_and_verify(bundle_ledger: LedgerReader) -> None:
    for index in range(bundle_ledger.size):
        bundle = bundle_ledger.proof_bundle(index)
        text = bundle.to_text()
        parsed = ProofBundle.from_text(text, bundle_ledger.verifier, origin=ORIGIN)
        assert parsed == bundle
        assert parsed.to_text() == text
        parsed.verify(entry(index))
        assert parsed.checkpoint.checkpoint.size == bundle_ledger.size
        with pytest.raises(ProofError):
            parsed.verify(entry(index + 1))
        with pytest.raises(ProofError):
            parsed.verify(entry(index) + b" ")


def test_tampered_proof_bundles_fail(bundle_ledger: LedgerReader) -> None:
    verifier = bundle_ledger.verifier
    index = 6
    bundle = bundle_ledger.proof_bundle(index)
    text = bundle.to_text()
    path = bundle.proof.path
    assert len(path) >= 2
    tampered = {
        "path line": _with_line(text, 3, base64.b64encode(_flip(path[0])).decode()),
        "last path line": _with_line(
            text, 2 + len(path), base64.b64encode(_flip(path[-1])).decode()
        ),
        "path lines swapped": _with_line(
            _with_line(text, 3, base64.b64encode(path[1]).decode()),
            4,
            base64.b64encode(path[0]).decode(),
        ),
        "extra line": _with_line(
            text, 1, "extra " + base64.b64encode(_flip(bundle.prev_hash)).decode()
        ),
        "index line": _with_line(text, 2, f"index {index + 1}"),
        "index beyond size": _with_line(text, 2, "index 11"),
        "path line dropped": text.replace(base64.b64encode(path[0]).decode() + "\n", "", 1),
    }
    for name, bad in tampered.items():
        assert bad != text, name
        with pytest.raises(VerificationError):
            ProofBundle.from_text(bad, verifier, origin=ORIGIN).verify(entry(index))
    with pytest.raises(NoteError):
        ProofBundle.from_text(text, OTHER_SIGNER.verifier())
    with pytest.raises(VerificationError):
        ProofBundle.from_text(text, verifier, origin="example.com/another-log")


GARBAGE = [
    "",
    "garbage",
    "\n\n",
    "c2sp.org/tlog-proof@v1\n\n",
    "c2sp.org/tlog-proof@v1\nextra x\nindex 0\n\nnot a note\n",
    "c2sp.org/tlog-proof@v2\nextra AAAA\nindex 0\n\n",
]


@pytest.mark.parametrize("garbage", GARBAGE)
def test_garbage_proof_bundles_fail(bundle_ledger: LedgerReader, garbage: str) -> None:
    with pytest.raises(VerificationError):
        ProofBundle.from_text(garbage, bundle_ledger.verifier).verify(entry(0))


def test_proof_bundle_with_a_bad_index_line_fails(bundle_ledger: LedgerReader) -> None:
    text = bundle_ledger.proof_bundle(3).to_text()
    for bad in ("index -1", "index 03", "index +3", "index 3 ", "index", "index ३", "idx 3"):
        with pytest.raises(VerificationError):
            ProofBundle.from_text(_with_line(text, 2, bad), bundle_ledger.verifier)


def test_proof_bundle_with_non_ascii_hash_line_fails(bundle_ledger: LedgerReader) -> None:
    text = bundle_ledger.proof_bundle(3).to_text()
    with pytest.raises(VerificationError):
        ProofBundle.from_text(_with_line(text, 3, "é"), bundle_ledger.verifier)


def test_proof_bundle_with_a_lone_surrogate_fails(bundle_ledger: LedgerReader) -> None:
    text = bundle_ledger.proof_bundle(3).to_text()
    with pytest.raises(VerificationError):
        ProofBundle.from_text(text + "\ud800", bundle_ledger.verifier)


@pytest.mark.parametrize("line", [1, 3])  # the predecessor hash, a path hash
def test_a_bundle_hash_spelled_with_unused_bits_set_is_refused(
    bundle_ledger: LedgerReader, line: int
) -> None:
    lines = bundle_ledger.proof_bundle(5).to_text().split("\n")
    spelled = lines[line].rpartition(" ")[2]  # "extra <hash>" or a bare path hash
    assert len(spelled) == 44
    assert spelled.endswith("=")
    last = spelled[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    # 32 bytes leave the last character's two low bits unused: flip one of them.
    other = alphabet[alphabet.index(last) ^ 1]
    assert base64.b64decode(spelled[:-2] + other + "=") == base64.b64decode(spelled)
    lines[line] = lines[line][: -len(spelled)] + spelled[:-2] + other + "="
    with pytest.raises(ProofError, match="not canonical base64"):
        ProofBundle.from_text("\n".join(lines), bundle_ledger.verifier, origin=ORIGIN)


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_single_character_edits_of_a_bundle_fail(
    bundle_ledger: LedgerReader, data: st.DataObject
) -> None:
    text = bundle_ledger.proof_bundle(5).to_text()
    position = data.draw(st.integers(0, len(text) - 1))
    replacement = data.draw(st.characters(min_codepoint=0x0A))
    bad = text[:position] + replacement + text[position + 1 :]
    assume(bad != text)
    with pytest.raises(VerificationError):
        ProofBundle.from_text(bad, bundle_ledger.verifier, origin=ORIGIN).verify(entry(5))


# --- the user's index, committed with the entries ---------------------------------------


def test_index_writes_are_committed_with_their_entries(tmp_path: Path) -> None:
    path = tmp_path / "ledger"

    async def main() -> None:
        ledger = create_ledger(path, ORIGIN, SIGNER)
        await ledger.append(entry(0), [(b"k/a", b"0"), (b"k/b", b"0")])
        await ledger.append_many([entry(1), entry(2)], [(b"k/a", b"1"), (b"k/b", None)])
        await ledger.append(entry(3), [(b"other", b"x")])
        assert ledger.index_get(b"k/a") == b"1"
        assert ledger.index_get(b"k/b") is None
        await ledger.aclose()

    run(main)
    reader = open_reader(path)
    try:
        assert reader.index_get_many([b"k/a", b"k/b", b"other"]) == [b"1", None, b"x"]
        assert list(reader.index_scan(b"k/", b"k0")) == [(b"k/a", b"1")]
        assert list(reader.index_scan(b"", b"\xff")) == [(b"k/a", b"1"), (b"other", b"x")]
    finally:
        reader.close()


def test_submit_assigns_indexes_and_shows_claims_before_they_are_durable() -> None:
    storage = MemoryStorage()

    async def main() -> None:
        ledger = Ledger.create(storage, ORIGIN, SIGNER)
        # No await until `first.done`: the writer has not run, so nothing is durable.
        first = ledger.submit([entry(0)], [(b"claim", b"first")])
        second = ledger.submit([entry(1), entry(2)], [(b"claim", b"second")])
        assert (first.first_index, second.first_index, ledger.next_index) == (0, 1, 3)
        # A check made now already sees the newest claim, though nothing is durable.
        assert ledger.index_get(b"claim") == b"second"
        assert storage.read_index([b"claim"]) == [None]
        assert ledger.size == 0
        assert await first.done == 0
        # The older claim landed; the newer one is still what readers see.
        assert ledger.index_get(b"claim") == b"second"
        assert await second.done == 1
        assert storage.read_index([b"claim"]) == [b"second"]
        assert ledger.size == 3
        await ledger.aclose()

    run(main)


def test_a_failed_commit_writes_no_index_and_forgets_pending_claims() -> None:
    storage = _FailingStorage(fail_on=3)  # create, one good commit, then a bad one

    async def main() -> None:
        ledger = Ledger.create(storage, ORIGIN, SIGNER)
        await ledger.append(entry(0), [(b"kept", b"yes")])
        with pytest.raises(StorageError):
            await ledger.append(entry(1), [(b"lost", b"no"), (b"kept", None)])
        assert ledger.index_get(b"lost") is None
        assert ledger.index_get(b"kept") == b"yes"
        assert storage.read_index([b"lost", b"kept"]) == [None, b"yes"]
        await ledger.aclose()

    run(main)


def test_submit_refuses_when_the_queue_is_full_and_wait_for_room_waits() -> None:
    async def main() -> None:
        ledger = Ledger.create(
            MemoryStorage(), ORIGIN, SIGNER, LedgerSettings(max_queued_appends=2)
        )
        subs = [ledger.submit([entry(i)]) for i in range(2)]
        with pytest.raises(errors.LedgerBusyError):
            ledger.submit([entry(2)])
        assert ledger.next_index == 2  # the refused one took no index
        await ledger.wait_for_room()
        third = ledger.submit([entry(2)])
        assert [await s.done for s in (*subs, third)] == [0, 1, 2]
        await ledger.aclose()
        with pytest.raises(LedgerClosedError):
            ledger.submit([entry(3)])

    run(main)


def test_replace_index_rebuilds_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "ledger"

    async def main() -> None:
        ledger = create_ledger(path, ORIGIN, SIGNER)
        await ledger.append(entry(0), [(b"stale", b"1"), (b"keep", b"old")])
        await ledger.aclose()

    run(main)
    storage = RocksDBStorage(path)
    try:
        storage.replace_index(
            iter([(b"keep", b"new"), *((b"n%05d" % i, b"") for i in range(25_000))])
        )
        assert storage.read_index([b"stale", b"keep"]) == [None, b"new"]
        assert sum(1 for _ in storage.scan_index(b"n", b"o")) == 25_000
    finally:
        storage.close()


@settings(max_examples=25, deadline=None)
@given(
    groups=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8),
    cache_entries=st.sampled_from([4, 16, 1 << 16]),
)
def test_a_live_ledgers_remembered_hashes_give_the_proofs_storage_gives(
    groups: list[int], cache_entries: int
) -> None:
    """The writer keeps the stored hashes it commits (and the reader those it reads):
    every proof and leaf link from the live ledger equals one from a reader that starts
    cold, and the links are the leaves' own."""
    storage = MemoryStorage()

    async def main() -> None:
        ledger = Ledger.create(storage, ORIGIN, SIGNER)
        n = 0
        for size in groups:
            await ledger.append_many([entry(n + i) for i in range(size)])
            n += size
            ledger.inclusion_proof(n - 1)  # reads interleaved with commits
        cold = LedgerReader(storage)
        for size in range(1, n + 1):
            assert ledger.root_at(size) == cold.root_at(size)
            for index in range(size):
                assert ledger.inclusion_proof(index, size) == cold.inclusion_proof(index, size)
            assert ledger.consistency_proof(size, n) == cold.consistency_proof(size, n)
        for index in range(n):
            leaf = cold.leaf(index)
            assert ledger.leaf_link(index) == cold.leaf_link(index) == (leaf.prev_hash, leaf.hash)
        for outside in (-1, n):
            with pytest.raises(InvalidRequestError):
                ledger.leaf_link(outside)
        await ledger.aclose()

    original = reader_module.HASH_CACHE_ENTRIES
    reader_module.HASH_CACHE_ENTRIES = cache_entries  # small ones clear it often
    try:
        run(main)
    finally:
        reader_module.HASH_CACHE_ENTRIES = original
