"""Private keys at rest: encrypted, owner-only, never overwritten, never echoed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from signer.keystore import (
    PASSPHRASE_ENV,
    FileKeyStore,
    KeyStoreError,
    load_or_create_passphrase,
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
    with pytest.raises(KeyStoreError):
        FileKeyStore(tmp_path, b"p").generate_ed25519(name)


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
