"""Private keys at rest: encrypted, owner-only, never overwritten, never echoed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from signer.keystore import (
    PASSPHRASE_ENV,
    FileKeyStore,
    KeyAlgorithm,
    KeyStoreError,
    load_or_create_passphrase,
    write_encrypted_pkcs8,
)


def test_keys_are_encrypted_and_owner_only(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "keys", b"correct horse")
    key = store.generate_ed25519("checkpoint")
    path = tmp_path / "keys" / "checkpoint.key.pem"
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = store.load_ed25519("checkpoint")
    assert loaded.public_key() == key.public_key()


def test_wrong_passphrase_is_refused_without_echoing_it(tmp_path: Path) -> None:
    FileKeyStore(tmp_path, b"right one").generate_ed25519("k")
    with pytest.raises(KeyStoreError) as caught:
        FileKeyStore(tmp_path, b"guess-123").load_ed25519("k")
    assert "guess-123" not in str(caught.value)
    assert PASSPHRASE_ENV in str(caught.value)


def test_existing_key_is_never_overwritten(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, b"p")
    key = store.generate_ed25519("k")
    with pytest.raises(KeyStoreError, match="already exists"):
        store.generate_ed25519("k")
    assert store.load_ed25519("k").public_key() == key.public_key()


@pytest.mark.parametrize("name", ["", "../escape", ".hidden", "a/b", "with space"])
def test_key_names_cannot_escape_the_directory(tmp_path: Path, name: str) -> None:
    store = FileKeyStore(tmp_path, b"p")
    with pytest.raises(KeyStoreError, match="invalid key name"):
        store.generate_ed25519(name)
    with pytest.raises(KeyStoreError, match="invalid key name"):
        store.generate(name, "p256")
    with pytest.raises(KeyStoreError, match="invalid key name"):
        store.load(name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [("ed25519", Ed25519PrivateKey), ("p256", ec.EllipticCurvePrivateKey)],
)
def test_generate_and_load_either_algorithm(
    tmp_path: Path, algorithm: KeyAlgorithm, kind: type[object]
) -> None:
    store = FileKeyStore(tmp_path, b"correct horse")
    assert not store.has_key("department-issuer")
    key = store.generate("department-issuer", algorithm)
    assert isinstance(key, kind)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        assert isinstance(key.curve, ec.SECP256R1)
    assert store.has_key("department-issuer")
    path = tmp_path / "department-issuer.key.pem"
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # A fresh store, as after a restart, reads the same key back.
    loaded = FileKeyStore(tmp_path, b"correct horse").load("department-issuer")
    assert isinstance(loaded, kind)
    assert loaded.public_key() == key.public_key()


def test_generate_never_overwrites_whatever_the_algorithm(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, b"p")
    first = store.generate("issuer", "p256")
    before = (tmp_path / "issuer.key.pem").read_bytes()
    for algorithm in ("p256", "ed25519"):
        with pytest.raises(KeyStoreError, match="already exists"):
            store.generate("issuer", algorithm)
    with pytest.raises(KeyStoreError, match="already exists"):
        store.generate_ed25519("issuer")
    assert (tmp_path / "issuer.key.pem").read_bytes() == before
    assert store.load("issuer").public_key() == first.public_key()


@pytest.mark.parametrize("algorithm", ["ed25519", "p256"])
def test_load_with_a_wrong_passphrase_fails(tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    FileKeyStore(tmp_path, b"right one").generate("k", algorithm)
    with pytest.raises(KeyStoreError, match="wrong passphrase") as caught:
        FileKeyStore(tmp_path, b"guess-123").load("k")
    assert "guess-123" not in str(caught.value)


@pytest.mark.parametrize(
    "key", [Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())]
)
def test_store_keeps_a_key_made_elsewhere(
    tmp_path: Path, key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey
) -> None:
    store = FileKeyStore(tmp_path, b"p")
    store.store("by-key-id", key)
    assert store.load("by-key-id").public_key() == key.public_key()
    with pytest.raises(KeyStoreError, match="already exists"):
        store.store("by-key-id", Ed25519PrivateKey.generate())
    assert store.load("by-key-id").public_key() == key.public_key()


def test_store_refuses_other_kinds_of_key(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, b"p")
    with pytest.raises(KeyStoreError, match="secp384r1 is not P-256"):
        store.store("k", ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(KeyStoreError, match="Ed25519 or P-256 only"):
        store.store("k", X25519PrivateKey.generate())  # type: ignore[arg-type]
    assert not store.has_key("k")


def test_unknown_algorithm_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, b"p")
    with pytest.raises(KeyStoreError, match="unknown key algorithm 'rsa'"):
        store.generate("k", "rsa")  # type: ignore[arg-type]
    assert not store.has_key("k")


def test_load_refuses_missing_keys_and_other_kinds(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, b"p")
    with pytest.raises(KeyStoreError, match="no key"):
        store.load("absent")
    store.generate("tls", "p256")
    with pytest.raises(KeyStoreError, match="does not hold an Ed25519 key"):
        store.load_ed25519("tls")
    p384 = ec.generate_private_key(ec.SECP384R1())
    write_encrypted_pkcs8(tmp_path / "p384.key.pem", p384, b"p")
    with pytest.raises(KeyStoreError, match="secp384r1, not P-256"):
        store.load("p384")


def test_failed_write_leaves_no_partial_key_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileKeyStore(tmp_path, b"p")

    def disk_full(fd: int) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_full)
        with pytest.raises(OSError, match="disk full"):
            store.generate("issuer", "ed25519")
    # Otherwise O_EXCL would refuse every retry on account of a file holding nothing.
    assert not store.has_key("issuer")
    key = store.generate("issuer", "ed25519")
    assert store.load("issuer").public_key() == key.public_key()


def test_empty_passphrase_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError):
        FileKeyStore(tmp_path, b"")


def test_generated_passphrase_file_is_owner_only_and_stable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV)
    path = tmp_path / "keys" / "passphrase"
    first = load_or_create_passphrase(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_passphrase(path) == first


def test_group_readable_passphrase_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(PASSPHRASE_ENV)
    path = tmp_path / "passphrase"
    path.write_text("secret\n")
    path.chmod(0o644)
    with pytest.raises(KeyStoreError, match="owner only"):
        load_or_create_passphrase(path)


def test_environment_passphrase_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "from the environment")
    assert load_or_create_passphrase(tmp_path / "unused") == b"from the environment"
    assert not (tmp_path / "unused").exists()
