"""Tampering with the stored ledger is caught by the audit, which names the first bad index.

The edits go through RocksDB itself (so its own checksums stay valid and only our
hashes can notice), and, in the last test, as raw byte flips in the SST files.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from rocksdict import Options, Rdict

from ledger import audit_storage
from ledger._internal.tlog import stored_hash_index
from ledger.hashing import leaf_hash, node_hash
from service.datadir import DataDir
from tests.conftest import build_data_dir

SIZE = 300
_FAMILIES = ("leaves", "hashes", "leaf_index", "index")


@contextmanager
def raw_db(path: Path) -> Iterator[Rdict]:
    families = {name: Options(raw_mode=True) for name in _FAMILIES}
    db = Rdict(str(path), options=Options(raw_mode=True), column_families=families)
    try:
        yield db
    finally:
        db.close()


def _get(column: Rdict, key: bytes) -> bytes:
    value = column[key]
    assert isinstance(value, bytes)
    return value


def _key(i: int) -> bytes:
    return i.to_bytes(8, "big")


def _flip(value: bytes, position: int) -> bytes:
    return value[:position] + bytes([value[position] ^ 0x01]) + value[position + 1 :]


def _edit(path: Path, family: str, key: bytes, change: Callable[[bytes], bytes]) -> None:
    with raw_db(path) as db:
        column = db.get_column_family(family)
        column[key] = change(_get(column, key))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> DataDir:
    data = build_data_dir(tmp_path_factory.mktemp("pristine"), SIZE)
    assert audit_storage(data.ledger_path).ok
    return data


@pytest.fixture
def data(pristine: DataDir, tmp_path: Path) -> DataDir:
    shutil.copytree(pristine.root, tmp_path / "copy")
    return DataDir(tmp_path / "copy")


@pytest.mark.parametrize("index", [0, 1, 137, SIZE - 1])
def test_flipped_entry_byte_is_named(data: DataDir, index: int) -> None:
    _edit(data.ledger_path, "leaves", _key(index), lambda v: _flip(v, len(v) - 3))
    report = audit_storage(data.ledger_path)
    assert not report.ok
    assert report.first_bad_index == index


@pytest.mark.parametrize("index", [1, 138, SIZE - 1])
def test_flipped_chain_link_is_named(data: DataDir, index: int) -> None:
    _edit(data.ledger_path, "leaves", _key(index), lambda v: _flip(v, 5))
    report = audit_storage(data.ledger_path)
    assert report.first_bad_index == index
    assert report.problem is not None
    assert "chain" in report.problem


@pytest.mark.parametrize(
    ("level", "n", "leaf"), [(0, 42, 42), (1, 20, 41), (3, 4, 39), (7, 1, 255)]
)
def test_flipped_stored_hash_is_named(data: DataDir, level: int, n: int, leaf: int) -> None:
    # The hash at (level, n) is completed by leaf (n + 1) * 2**level - 1.
    assert leaf == (n + 1) * 2**level - 1
    _edit(data.ledger_path, "hashes", _key(stored_hash_index(level, n)), lambda v: _flip(v, 0))
    report = audit_storage(data.ledger_path)
    assert report.first_bad_index == leaf


def test_deleted_leaf_is_named(data: DataDir) -> None:
    with raw_db(data.ledger_path) as db:
        del db.get_column_family("leaves")[_key(200)]
    assert audit_storage(data.ledger_path).first_bad_index == 200


def test_leaf_appended_behind_the_checkpoint_is_named(data: DataDir) -> None:
    with raw_db(data.ledger_path) as db:
        leaves = db.get_column_family("leaves")
        leaves[_key(SIZE)] = _get(leaves, _key(SIZE - 1))
    assert audit_storage(data.ledger_path).first_bad_index == SIZE


def test_redirected_leaf_lookup_is_named(data: DataDir) -> None:
    with raw_db(data.ledger_path) as db:
        lookup = db.get_column_family("leaf_index")
        target = next(k for k, v in lookup.items() if v == _key(77))
        lookup[target] = _key(78)
    assert audit_storage(data.ledger_path).first_bad_index == 77


def test_altered_checkpoint_fails(data: DataDir) -> None:
    with raw_db(data.ledger_path) as db:
        note = _get(db, b"checkpoint")
        db[b"checkpoint"] = note.replace(str(SIZE).encode(), str(SIZE - 1).encode(), 1)
    report = audit_storage(data.ledger_path)
    assert not report.ok
    assert report.problem is not None
    assert "checkpoint" in report.problem


def test_consistently_rewritten_history_fails_on_the_root(data: DataDir) -> None:
    # Rewrite the last leaf and every hash it feeds, as a careful forger would:
    # only the signed checkpoint can still tell.
    with raw_db(data.ledger_path) as db:
        leaves, hashes = db.get_column_family("leaves"), db.get_column_family("hashes")
        last = SIZE - 1
        forged = _get(leaves, _key(last))[:32] + b"forged entry"
        leaves[_key(last)] = forged
        h = leaf_hash(forged)
        hashes[_key(stored_hash_index(0, last))] = h
        n, level = last, 0
        while n & 1:
            level += 1
            n >>= 1
            h = node_hash(_get(hashes, _key(stored_hash_index(level - 1, n * 2))), h)
            hashes[_key(stored_hash_index(level, n))] = h
        lookup = db.get_column_family("leaf_index")
        lookup[leaf_hash(forged)] = _key(last)
    report = audit_storage(data.ledger_path)
    assert not report.ok
    assert report.problem is not None
    assert "root" in report.problem or "does not match" in report.problem


def test_byte_flips_in_sst_files_fail_the_audit(data: DataDir) -> None:
    # Push everything into SST files, then flip bytes in the middle of each.
    with raw_db(data.ledger_path) as db:
        for name in _FAMILIES:
            db.get_column_family(name).flush()
        db.flush()
    ssts = sorted(data.ledger_path.glob("*.sst"), key=lambda p: p.stat().st_size)
    assert ssts, "expected SST files after a flush"
    biggest = ssts[-1]  # the leaves: most bytes
    raw = bytearray(biggest.read_bytes())
    raw[len(raw) // 3] ^= 0x40
    biggest.write_bytes(bytes(raw))
    report = audit_storage(data.ledger_path)
    assert not report.ok
    assert report.first_bad_index is not None, report.problem
    assert report.first_bad_index < SIZE
