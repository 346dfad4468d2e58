"""Index arithmetic of the dense stored-hash layout, after Go's sumdb/tlog.

Every complete subtree hash is stored exactly once, in the order it becomes known:
appending leaf n writes its leaf hash and then one hash per trailing one-bit of n
(the subtrees that leaf completes). So hashes live under dense integer indexes, and
any tree head or proof needs only O(log n) of them, fetched in one multi-get.

Proof construction is split in two passes, like Go's: first list the stored indexes
a proof needs, then read them all at once and assemble. That keeps storage access to
a single round trip whatever the tree size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ledger.hashing import node_hash

ReadHashes = Callable[[Sequence[int]], list[bytes]]


def stored_hash_index(level: int, n: int) -> int:
    """Storage index of the n-th hash at `level` (level 0 holds leaf hashes)."""
    # Level L's n-th hash is written L places after level 0's ((n+1)·2^L − 1)-th, and
    # level 0's m-th sits at m + m/2 + m/4 + ... = 2m − popcount(m).
    m = ((n + 1) << level) - 1
    return 2 * m - m.bit_count() + level


def stored_hash_count(size: int) -> int:
    """How many hashes a tree of `size` leaves has stored."""
    if size == 0:
        return 0
    count = stored_hash_index(0, size - 1) + 1
    i = size - 1
    while i & 1:
        count += 1
        i >>= 1
    return count


def _maxpow2(n: int) -> tuple[int, int]:
    """The largest power of two k < n, and log2(k)."""
    level = (n - 1).bit_length() - 1
    return 1 << level, level


def _subtree_indexes(lo: int, hi: int, need: list[int]) -> None:
    """Stored indexes of the maximal complete subtrees covering [lo, hi)."""
    while lo < hi:
        k, level = _maxpow2(hi - lo + 1)
        need.append(stored_hash_index(level, lo >> level))
        lo += k


def _subtree_hash(lo: int, hi: int, hashes: list[bytes], pos: int) -> tuple[bytes, int]:
    """Hash of [lo, hi) from the hashes listed by `_subtree_indexes`, starting at pos."""
    count = 0
    while lo < hi:
        k, _ = _maxpow2(hi - lo + 1)
        count += 1
        lo += k
    h = hashes[pos + count - 1]
    for i in range(pos + count - 2, pos - 1, -1):
        h = node_hash(hashes[i], h)
    return h, pos + count


def tree_hash_indexes(size: int) -> list[int]:
    need: list[int] = []
    _subtree_indexes(0, size, need)
    return need


def tree_hash(size: int, read: ReadHashes) -> bytes:
    """Root of the first `size` leaves (size >= 1)."""
    h, _ = _subtree_hash(0, size, read(tree_hash_indexes(size)), 0)
    return h


def inclusion_path(index: int, size: int, read: ReadHashes) -> list[bytes]:
    """RFC 9162 inclusion path of leaf `index` in the tree of `size` (0 <= index < size)."""
    # Down from the root, the sibling of the subtree holding `index` at each level. A
    # complete sibling (every left one, most right ones) is one stored hash, found by
    # arithmetic; only an incomplete right sibling is hashed from its complete parts.
    need: list[int] = []
    incomplete: list[tuple[int, int, int]] = []  # (its first hash in `need`, lo, hi)
    lo, hi = 0, size
    while hi - lo > 1:
        k, _ = _maxpow2(hi - lo)
        if index < lo + k:
            a, b = lo + k, hi
            hi = lo + k
        else:
            a, b = lo, lo + k
            lo += k
        width = b - a
        if width & (width - 1) == 0:
            level = width.bit_length() - 1
            need.append(stored_hash_index(level, a >> level))
        else:
            incomplete.append((len(need), a, b))
            _subtree_indexes(a, b, need)
    if not need:
        return []
    hashes = read(need)
    path: list[bytes] = []
    pos = 0
    for start, a, b in incomplete:
        path.extend(hashes[pos:start])
        sibling, pos = _subtree_hash(a, b, hashes, start)
        path.append(sibling)
    path.extend(hashes[pos:])
    path.reverse()  # the verifier walks it up from the leaf
    return path


def _consistency_indexes(lo: int, hi: int, n: int, need: list[int]) -> None:
    if n == hi:
        if lo != 0:
            _subtree_indexes(lo, hi, need)
        return
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        _consistency_indexes(lo, lo + k, n, need)
        _subtree_indexes(lo + k, hi, need)
    else:
        _subtree_indexes(lo, lo + k, need)
        _consistency_indexes(lo + k, hi, n, need)


def _consistency_path(
    lo: int, hi: int, n: int, hashes: list[bytes], pos: int
) -> tuple[list[bytes], int]:
    if n == hi:
        if lo == 0:
            return [], pos  # exactly the old tree: the verifier holds its root
        h, pos = _subtree_hash(lo, hi, hashes, pos)
        return [h], pos
    k, _ = _maxpow2(hi - lo)
    if n <= lo + k:
        path, pos = _consistency_path(lo, lo + k, n, hashes, pos)
        other, pos = _subtree_hash(lo + k, hi, hashes, pos)
    else:
        other, pos = _subtree_hash(lo, lo + k, hashes, pos)
        path, pos = _consistency_path(lo + k, hi, n, hashes, pos)
    path.append(other)
    return path, pos


def consistency_path(old_size: int, new_size: int, read: ReadHashes) -> list[bytes]:
    """RFC 9162 consistency path between tree sizes (1 <= old_size <= new_size)."""
    need: list[int] = []
    _consistency_indexes(0, new_size, old_size, need)
    if not need:
        return []
    path, _ = _consistency_path(0, new_size, old_size, read(need), 0)
    return path
