"""Property tests of the Merkle tree against a naive RFC 6962 reference implementation.

The reference below is written straight from RFC 6962 §2.1 (MTH, PATH, PROOF and
SUBPROOF, splitting at k, the largest power of two below n) and shares no code with
the ledger. The trees under test are built by the real append path: entries go
through `Ledger.append`/`append_many` into a `MemoryStorage`, and proofs come back
through `LedgerReader`, i.e. from the dense stored-hash layout of `ledger._internal.tlog`.

Stored leaves are chained (``prev_leaf_hash || entry``), so the reference is always
computed over the leaf bytes the ledger returns from `leaves()`, never over the raw
entries.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Ed25519NoteSigner, Ledger, LedgerReader, MemoryStorage
from ledger._internal import tlog
from ledger.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.errors import InvalidRequestError, NoteError, ProofError
from ledger.proof import root_from_inclusion_proof, verify_consistency, verify_inclusion
from ledger.storage import (
    META_CHECKPOINT,
    META_CHECKPOINT_KEY,
    META_FORMAT,
    META_ORIGIN,
    Commit,
)

ORIGIN = "example.com/merkle-properties"
TREE_SIZE = 300
EXHAUSTIVE_SIZE = 40  # every (index, size) pair below this is checked, not sampled

# --- the reference: RFC 6962 §2.1, recursively, over lists of leaf byte strings ------


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _split(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH(D[n])."""
    n = len(d)
    if n == 0:
        return _sha256(b"")
    if n == 1:
        return _sha256(b"\x00" + d[0])
    k = _split(n)
    return _sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of leaf m."""
    n = len(d)
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def _ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b)."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _split(n)
    if m <= k:
        return [*_ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*_ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]): the consistency proof from the first m leaves to all n."""
    return _ref_subproof(m, d, True)


def test_reference_matches_a_hand_computed_tree() -> None:
    # Guard the reference itself with a tree small enough to spell out by hand.
    a, b, c = (_sha256(b"\x00" + x) for x in (b"a", b"b", b"c"))
    ab = _sha256(b"\x01" + a + b)
    assert ref_mth([]) == _sha256(b"")
    assert ref_mth([b"a", b"b", b"c"]) == _sha256(b"\x01" + ab + c)
    assert ref_path(0, [b"a", b"b", b"c"]) == [b, c]
    assert ref_path(2, [b"a", b"b", b"c"]) == [ab]
    assert ref_proof(2, [b"a", b"b", b"c"]) == [c]
    assert ref_proof(1, [b"a", b"b", b"c"]) == [b, c]
    assert ref_proof(3, [b"a", b"b", b"c"]) == []


# --- the trees under test, built through Ledger on MemoryStorage ----------------------


def _signer() -> Ed25519NoteSigner:
    return Ed25519NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))


def _entries(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(1, 80)) for _ in range(count)]


async def _append_in_mixed_groups(ledger: Ledger, entries: list[bytes], seed: int) -> None:
    """Append one by one, as batches and as concurrent callers, so groups vary in size."""
    rng = random.Random(seed)
    pos = 0
    while pos < len(entries):
        chunk = entries[pos : pos + rng.randrange(1, 24)]
        mode = rng.randrange(3)
        if mode == 0:
            for entry in chunk:
                await ledger.append(entry)
        elif mode == 1:
            await ledger.append_many(chunk)
        else:  # concurrent callers: the writer commits them as one or more groups
            await asyncio.gather(*(ledger.append(entry) for entry in chunk))
        pos += len(chunk)


def _snapshot(storage: MemoryStorage) -> MemoryStorage:
    """A copy of a storage, so reads outlive the ledger that wrote it (aclose closes it)."""
    leaves = [leaf for _, leaf in storage.scan_leaves()]
    lookup = sorted(storage.scan_leaf_index(), key=lambda item: item[1])
    meta: dict[str, bytes] = {}
    for key in (META_FORMAT, META_ORIGIN, META_CHECKPOINT_KEY, META_CHECKPOINT):
        value = storage.read_meta(key)
        assert value is not None
        meta[key] = value
    copy = MemoryStorage()
    copy.commit(
        Commit(
            0,
            leaves,
            [h for h, _ in lookup],
            0,
            [h for _, h in storage.scan_hashes()],
            meta,
        )
    )
    return copy


@dataclass(frozen=True)
class Tree:
    reader: LedgerReader
    storage: MemoryStorage
    leaves: tuple[bytes, ...]  # the stored (chained) leaf bytes, in index order
    entries: tuple[bytes, ...]

    def mth(self, size: int) -> bytes:
        return _ref_mth_cached(self.leaves[:size])

    def leaf_hash(self, index: int) -> bytes:
        return _sha256(b"\x00" + self.leaves[index])


@cache
def _ref_mth_cached(leaves: tuple[bytes, ...]) -> bytes:
    return ref_mth(leaves)


@cache
def tree() -> Tree:
    """One ledger of TREE_SIZE random entries, shared by the whole module."""
    entries = _entries(TREE_SIZE, seed=6962)
    storage = MemoryStorage()

    async def build() -> MemoryStorage:
        ledger = Ledger.create(storage, ORIGIN, _signer())
        try:
            await _append_in_mixed_groups(ledger, entries, seed=9162)
            assert ledger.size == TREE_SIZE
            return _snapshot(storage)
        finally:
            await ledger.aclose()

    copy = asyncio.run(build())
    reader = LedgerReader(copy)
    leaves = tuple(leaf.data for leaf in reader.leaves(0, TREE_SIZE))
    return Tree(reader, copy, leaves, tuple(entries))


def test_tree_holds_the_chained_entries() -> None:
    t = tree()
    prev = bytes(32)
    for index, leaf in enumerate(t.reader.leaves(0, TREE_SIZE)):
        assert leaf.index == index
        assert leaf.entry == t.entries[index]
        assert leaf.prev_hash == prev
        prev = _sha256(b"\x00" + leaf.data)
    assert t.reader.root_hash == ref_mth(t.leaves)


# --- roots -----------------------------------------------------------------------------


def test_root_at_every_size_matches_reference() -> None:
    t = tree()
    assert t.reader.root_at(0) == _sha256(b"")
    for size in range(1, TREE_SIZE + 1):
        assert t.reader.root_at(size) == t.mth(size), f"size {size}"


def test_every_stored_hash_is_the_reference_subtree_hash() -> None:
    # The dense layout: level L's k-th hash is MTH of leaves [k*2^L, (k+1)*2^L).
    t = tree()
    seen: set[int] = set()
    for level in range(TREE_SIZE.bit_length()):
        width = 1 << level
        for k in range(TREE_SIZE // width):
            index = tlog.stored_hash_index(level, k)
            (stored,) = t.storage.read_hashes([index])
            assert stored == ref_mth(t.leaves[k * width : (k + 1) * width]), (level, k)
            seen.add(index)
    assert seen == set(range(tlog.stored_hash_count(TREE_SIZE)))


@given(st.integers(0, 63), st.integers(0, 2**62))
def test_stored_hash_index_closed_form_matches_the_write_order(level: int, n: int) -> None:
    # Go's tlog.StoredHashIndex: reduce to level 0, then sum n + n/2 + n/4 + ...
    m = n
    for _ in range(level):
        m = 2 * m + 1
    naive = 0
    while m:
        naive += m
        m >>= 1
    assert tlog.stored_hash_index(level, n) == naive + level


# --- inclusion ---------------------------------------------------------------------------


@st.composite
def index_and_size(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, TREE_SIZE))
    return draw(st.integers(0, size - 1)), size


@st.composite
def old_and_new(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(1, TREE_SIZE))
    return draw(st.integers(1, new)), new


def _bit_flips(h: bytes) -> Iterator[bytes]:
    for bit in range(len(h) * 8):
        flipped = bytearray(h)
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield bytes(flipped)


def _accepted(verify: Callable[..., None], *args: object) -> bool:
    """Whether a verifier accepts the arguments (ProofError means rejected)."""
    try:
        verify(*args)
    except ProofError:
        return False
    return True


def _path_edits(path: tuple[bytes, ...]) -> Iterator[tuple[str, tuple[bytes, ...]]]:
    """Every path with one element appended, removed or duplicated."""
    extra = _sha256(b"not in the tree")
    yield "append a foreign hash", (*path, extra)
    yield "prepend a foreign hash", (extra, *path)
    for i, h in enumerate(path):
        yield f"append copy of {i}", (*path, h)
        yield f"remove {i}", path[:i] + path[i + 1 :]
        yield f"duplicate {i}", path[: i + 1] + path[i:]


def _check_inclusion_matches_reference(index: int, size: int) -> None:
    t = tree()
    proof = t.reader.inclusion_proof(index, size)
    assert (proof.leaf_index, proof.tree_size) == (index, size)
    assert list(proof.path) == ref_path(index, t.leaves[:size])
    verify_inclusion(index, size, t.leaf_hash(index), proof.path, t.mth(size))
    proof.verify(t.leaf_hash(index), t.reader.root_at(size))


def test_inclusion_proofs_match_reference_for_all_small_trees() -> None:
    for size in range(1, EXHAUSTIVE_SIZE + 1):
        for index in range(size):
            _check_inclusion_matches_reference(index, size)


@given(index_and_size())
@settings(max_examples=300, deadline=None)
def test_inclusion_proof_matches_reference(case: tuple[int, int]) -> None:
    _check_inclusion_matches_reference(*case)


def test_inclusion_proofs_of_the_full_tree_match_reference() -> None:
    for index in range(TREE_SIZE):
        _check_inclusion_matches_reference(index, TREE_SIZE)


@given(index_and_size())
@settings(max_examples=100, deadline=None)
def test_inclusion_proof_rejects_every_bit_flip(case: tuple[int, int]) -> None:
    index, size = case
    t = tree()
    path = t.reader.inclusion_proof(index, size).path
    leaf, root = t.leaf_hash(index), t.mth(size)
    accepted: list[str] = []
    for i, h in enumerate(path):
        for bad in _bit_flips(h):
            bad_path = (*path[:i], bad, *path[i + 1 :])
            if _accepted(verify_inclusion, index, size, leaf, bad_path, root):
                accepted.append(f"path[{i}]")
    for bad in _bit_flips(root):
        if _accepted(verify_inclusion, index, size, leaf, path, bad):
            accepted.append("root")
    for bad in _bit_flips(leaf):
        if _accepted(verify_inclusion, index, size, bad, path, root):
            accepted.append("leaf hash")
    assert not accepted


@given(index_and_size())
@settings(max_examples=60, deadline=None)
def test_inclusion_proof_rejects_every_other_index(case: tuple[int, int]) -> None:
    index, size = case
    t = tree()
    path = t.reader.inclusion_proof(index, size).path
    leaf, root = t.leaf_hash(index), t.mth(size)
    accepted = [
        other
        for other in range(size)
        if other != index and _accepted(verify_inclusion, other, size, leaf, path, root)
    ]
    assert not accepted
    for beyond in (size, size + 1, 2 * size, -1):
        with pytest.raises(ProofError):
            verify_inclusion(beyond, size, leaf, path, root)


@given(index_and_size())
@settings(max_examples=100, deadline=None)
def test_inclusion_proof_rejects_path_edits(case: tuple[int, int]) -> None:
    index, size = case
    t = tree()
    path = t.reader.inclusion_proof(index, size).path
    leaf, root = t.leaf_hash(index), t.mth(size)
    accepted = [
        what
        for what, bad in _path_edits(path)
        if _accepted(verify_inclusion, index, size, leaf, bad, root)
    ]
    assert not accepted


def test_inclusion_proof_rejects_malformed_inputs() -> None:
    t = tree()
    path = t.reader.inclusion_proof(5, 10).path
    leaf, root = t.leaf_hash(5), t.mth(10)
    with pytest.raises(ProofError):
        verify_inclusion(5, 10, leaf[:31], path, root)
    with pytest.raises(ProofError):
        verify_inclusion(5, 10, leaf, (*path[:-1], path[-1][:31]), root)
    with pytest.raises(ProofError):
        verify_inclusion(0, 0, leaf, (), root)
    with pytest.raises(ProofError):
        verify_inclusion(5, -1, leaf, path, root)


def test_an_inclusion_proof_does_not_bind_the_tree_size() -> None:
    # Why checkpoints must sign size and root together: the proof of leaf 0 in the
    # tree of 3 has the same shape as in a tree of 4, and walks to the same root.
    t = tree()
    path = t.reader.inclusion_proof(0, 3).path
    verify_inclusion(0, 3, t.leaf_hash(0), path, t.mth(3))
    verify_inclusion(0, 4, t.leaf_hash(0), path, t.mth(3))
    assert root_from_inclusion_proof(0, 4, t.leaf_hash(0), path) == t.mth(3)


# --- consistency ---------------------------------------------------------------------


def _check_consistency_matches_reference(old: int, new: int) -> None:
    t = tree()
    proof = t.reader.consistency_proof(old, new)
    assert (proof.old_size, proof.new_size) == (old, new)
    assert list(proof.path) == ref_proof(old, t.leaves[:new])
    verify_consistency(old, new, proof.path, t.mth(old), t.mth(new))
    proof.verify(t.reader.root_at(old), t.reader.root_at(new))


def test_consistency_proofs_match_reference_for_all_small_trees() -> None:
    for new in range(1, EXHAUSTIVE_SIZE + 1):
        for old in range(1, new + 1):
            _check_consistency_matches_reference(old, new)


@given(old_and_new())
@settings(max_examples=300, deadline=None)
def test_consistency_proof_matches_reference(case: tuple[int, int]) -> None:
    _check_consistency_matches_reference(*case)


def test_consistency_proofs_to_the_full_tree_match_reference() -> None:
    for old in range(1, TREE_SIZE + 1):
        _check_consistency_matches_reference(old, TREE_SIZE)


@given(old_and_new())
@settings(max_examples=80, deadline=None)
def test_consistency_proof_rejects_every_bit_flip(case: tuple[int, int]) -> None:
    old, new = case
    t = tree()
    path = t.reader.consistency_proof(old, new).path
    old_root, new_root = t.mth(old), t.mth(new)
    accepted: list[str] = []
    for i, h in enumerate(path):
        for bad in _bit_flips(h):
            bad_path = (*path[:i], bad, *path[i + 1 :])
            if _accepted(verify_consistency, old, new, bad_path, old_root, new_root):
                accepted.append(f"path[{i}]")
    for bad in _bit_flips(old_root):
        if _accepted(verify_consistency, old, new, path, bad, new_root):
            accepted.append("old root")
    for bad in _bit_flips(new_root):
        if _accepted(verify_consistency, old, new, path, old_root, bad):
            accepted.append("new root")
    assert not accepted


@given(old_and_new())
@settings(max_examples=100, deadline=None)
def test_consistency_proof_rejects_path_edits(case: tuple[int, int]) -> None:
    old, new = case
    t = tree()
    path = t.reader.consistency_proof(old, new).path
    old_root, new_root = t.mth(old), t.mth(new)
    accepted = [
        what
        for what, bad in _path_edits(path)
        if _accepted(verify_consistency, old, new, bad, old_root, new_root)
    ]
    assert not accepted


@given(st.integers(1, TREE_SIZE))
@settings(max_examples=50, deadline=None)
def test_consistency_of_equal_sizes_needs_an_empty_path(size: int) -> None:
    t = tree()
    root = t.mth(size)
    assert t.reader.consistency_proof(size, size).path == ()
    verify_consistency(size, size, (), root, root)
    with pytest.raises(ProofError):
        verify_consistency(size, size, (root,), root, root)
    with pytest.raises(ProofError):
        verify_consistency(size, size, (_sha256(b"x"),), root, root)
    if size > 1:
        with pytest.raises(ProofError):
            verify_consistency(size, size, (), root, t.mth(size - 1))


@given(st.integers(1, TREE_SIZE))
@settings(max_examples=50, deadline=None)
def test_consistency_from_the_empty_tree_is_rejected(new: int) -> None:
    t = tree()
    empty, root = _sha256(b""), t.mth(new)
    for path in ((), (root,), tuple(ref_path(0, t.leaves[:new]))):
        with pytest.raises(ProofError):
            verify_consistency(0, new, path, empty, root)
    with pytest.raises(ProofError):
        verify_consistency(-1, new, (), empty, root)
    with pytest.raises(InvalidRequestError):
        t.reader.consistency_proof(0, new)


def test_consistency_proof_rejects_a_shrinking_tree() -> None:
    t = tree()
    path = t.reader.consistency_proof(5, 9).path
    with pytest.raises(ProofError):
        verify_consistency(9, 5, path, t.mth(9), t.mth(5))


# --- checkpoints bind size and root --------------------------------------------------


@given(st.integers(1, TREE_SIZE), st.integers(0, TREE_SIZE))
@settings(max_examples=30, deadline=None)
def test_signed_checkpoint_binds_size_and_root(size: int, other_size: int) -> None:
    t = tree()
    signer = _signer()
    verifier = signer.verifier()
    root = t.mth(size)
    signed = sign_checkpoint(Checkpoint(ORIGIN, size, root), signer)
    opened = open_checkpoint(signed.to_bytes(), verifier, origin=ORIGIN)
    assert (opened.checkpoint.size, opened.checkpoint.root_hash) == (size, root)

    signatures = "".join(sig.to_line() for sig in signed.note.signatures)

    def reserialized(checkpoint: Checkpoint) -> bytes:
        """The same signature lines under a different checkpoint body."""
        return (checkpoint.to_text() + "\n" + signatures).encode()

    # The untouched body re-serializes to the signed bytes, so only the edit matters.
    assert reserialized(Checkpoint(ORIGIN, size, root)) == signed.to_bytes()
    if other_size == size:
        other_size = size + 1
    with pytest.raises(NoteError):
        open_checkpoint(reserialized(Checkpoint(ORIGIN, other_size, root)), verifier)
    other_root = t.mth(other_size) if other_size <= TREE_SIZE else _sha256(b"other")
    with pytest.raises(NoteError):
        open_checkpoint(reserialized(Checkpoint(ORIGIN, size, other_root)), verifier)
    for bad in list(_bit_flips(root))[::17]:
        with pytest.raises(NoteError):
            open_checkpoint(reserialized(Checkpoint(ORIGIN, size, bad)), verifier)


# --- the stored-hash count -----------------------------------------------------------


def _trailing_ones(n: int) -> int:
    count = 0
    while n & 1:
        count += 1
        n >>= 1
    return count


def test_each_append_writes_one_plus_trailing_ones_hashes() -> None:
    count = 130
    storage = MemoryStorage()

    async def run() -> None:
        ledger = Ledger.create(storage, ORIGIN, _signer())
        try:
            assert tlog.stored_hash_count(0) == 0
            assert list(storage.scan_hashes()) == []
            for n, entry in enumerate(_entries(count, seed=1)):
                before = len(list(storage.scan_hashes()))
                assert await ledger.append(entry) == n
                after = len(list(storage.scan_hashes()))
                assert after - before == 1 + _trailing_ones(n), f"leaf {n}"
                assert after == tlog.stored_hash_count(n + 1), f"size {n + 1}"
                assert [i for i, _ in storage.scan_hashes()] == list(range(after))
        finally:
            await ledger.aclose()

    asyncio.run(run())


def test_stored_hash_count_matches_storage_after_grouped_appends() -> None:
    storage = MemoryStorage()
    rng = random.Random(42)

    async def run() -> None:
        ledger = Ledger.create(storage, ORIGIN, _signer())
        try:
            size = 0
            while size < TREE_SIZE:
                group = _entries(rng.randrange(1, 40), seed=size)
                assert await ledger.append_many(group) == size
                size += len(group)
                assert len(list(storage.scan_hashes())) == tlog.stored_hash_count(size)
        finally:
            await ledger.aclose()

    asyncio.run(run())


def test_stored_hash_count_is_the_sum_over_appends() -> None:
    total = 0
    for n in range(2000):
        assert tlog.stored_hash_count(n) == total, n
        total += 1 + _trailing_ones(n)
    # A tree of 2^k leaves has stored each of its 2^(k+1) - 1 nodes exactly once.
    for k in range(20):
        assert tlog.stored_hash_count(1 << k) == (1 << (k + 1)) - 1
