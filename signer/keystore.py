"""Private keys at rest: encrypted PKCS#8 files, one per named key.

A key never touches disk unencrypted. The passphrase comes from the environment
(``LICENCE_LEDGER_KEY_PASSPHRASE``) when an operator provides one; otherwise a
random passphrase is generated once into a file only the owner can read — good
enough for a development region, and the file can be moved to a secret store later.
Files are created with ``O_EXCL`` so an existing key is never overwritten: replacing
an issuing key would orphan every certificate and licence it signed.

A store holds Ed25519 keys (checkpoints, licence signing) and ECDSA P-256 keys
(licence signing, TLS). Loading decrypts PKCS#8, which is deliberately slow; the
store does not cache, so callers that sign often keep the loaded key in memory.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Literal, Protocol, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

PrivateKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey
KeyAlgorithm = Literal["ed25519", "p256"]

PASSPHRASE_ENV = "LICENCE_LEDGER_KEY_PASSPHRASE"  # noqa: S105 — a variable name, not a secret


class KeyStoreError(Exception):
    """A key cannot be created, found or decrypted."""


class KeyStore(Protocol):
    """Where signing keys live. Files by default; an HSM can implement the same."""

    def has_key(self, name: str) -> bool: ...

    def generate(self, name: str, algorithm: KeyAlgorithm) -> PrivateKey: ...

    def store(self, name: str, key: PrivateKey) -> None: ...

    def load(self, name: str) -> PrivateKey: ...

    def generate_ed25519(self, name: str) -> Ed25519PrivateKey: ...

    def load_ed25519(self, name: str) -> Ed25519PrivateKey: ...


def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise KeyStoreError(f"invalid key name {name!r}")


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        # O_EXCL made the file ours; a partial one would block every later attempt.
        path.unlink(missing_ok=True)
        raise
    # The new name must survive a crash too: a key that signed something and then
    # vanished on reboot would orphan the signatures just as surely as replacing it.
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_or_create_passphrase(path: Path) -> bytes:
    """The key passphrase: from the environment, else from (a newly made) owner-only file."""
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env.encode()
    if path.exists():
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyStoreError(f"{path} must be readable by its owner only (chmod 600)")
        value = path.read_bytes().strip()
        if not value:
            raise KeyStoreError(f"{path} is empty")
        return value
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = secrets.token_urlsafe(32).encode()
    _write_private(path, value + b"\n")
    return value


def write_encrypted_pkcs8(path: Path, key: PrivateKey, passphrase: bytes) -> None:
    """Store `key` as encrypted PKCS#8 PEM, created 0600 with O_EXCL (never replaced)."""
    if not passphrase:
        raise KeyStoreError("an empty passphrase would leave the key unprotected")
    # PKCS#8 keeps the files readable by standard tools (openssl pkcs8). Its PBKDF2 work
    # factor is fixed by cryptography, so operator passphrases must be long random
    # secrets, as the generated one (256 bits) is.
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        _write_private(path, pem)
    except FileExistsError as exc:
        raise KeyStoreError(f"a key already exists at {path}") from exc


def load_encrypted_pkcs8(path: Path, passphrase: bytes) -> PrivateKey:
    """Load a key written by `write_encrypted_pkcs8`; an unencrypted key file is refused."""
    try:
        pem = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyStoreError(f"no key at {path}") from exc
    if not pem.lstrip().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----"):
        # An unencrypted key on disk is a finding, not something to load quietly.
        raise KeyStoreError(f"{path} is not an encrypted PKCS#8 PEM key")
    try:
        key = serialization.load_pem_private_key(pem, passphrase)
    except (ValueError, TypeError) as exc:
        # Never echo the passphrase; say which file and what to check.
        raise KeyStoreError(
            f"cannot decrypt {path}: wrong passphrase ({PASSPHRASE_ENV}) or damaged file"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey | Ed25519PrivateKey):
        raise KeyStoreError(f"{path} holds neither an EC nor an Ed25519 key")
    return key


class FileKeyStore:
    """Encrypted PKCS#8 PEM files in a directory (``<name>.key.pem``, mode 0600)."""

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        if not passphrase:
            raise KeyStoreError("an empty passphrase would leave keys unprotected")
        self.directory = directory
        self._passphrase = passphrase

    def _path(self, name: str) -> Path:
        _check_name(name)
        return self.directory / f"{name}.key.pem"

    def has_key(self, name: str) -> bool:
        return self._path(name).exists()

    def generate(self, name: str, algorithm: KeyAlgorithm) -> PrivateKey:
        """A new key stored as `name`; KeyStoreError if `name` already exists."""
        path = self._path(name)
        key: PrivateKey
        if algorithm == "ed25519":
            key = Ed25519PrivateKey.generate()
        elif algorithm == "p256":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            allowed = ", ".join(get_args(KeyAlgorithm))
            raise KeyStoreError(f"unknown key algorithm {algorithm!r} (use {allowed})")
        write_encrypted_pkcs8(path, key, self._passphrase)
        return key

    def store(self, name: str, key: PrivateKey) -> None:
        """Keep a key made elsewhere as `name`; KeyStoreError if `name` already exists.

        For names derived from the key itself (e.g. its key id), which `generate`
        cannot know beforehand.
        """
        path = self._path(name)
        if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
            raise KeyStoreError(f"an EC key on {key.curve.name} is not P-256")
        if not isinstance(key, ec.EllipticCurvePrivateKey | Ed25519PrivateKey):
            raise KeyStoreError(f"cannot store a {type(key).__name__}: Ed25519 or P-256 only")
        write_encrypted_pkcs8(path, key, self._passphrase)

    def load(self, name: str) -> PrivateKey:
        """The key stored as `name`, Ed25519 or P-256 (decrypting it each time)."""
        path = self._path(name)
        key = load_encrypted_pkcs8(path, self._passphrase)
        if isinstance(key, ec.EllipticCurvePrivateKey) and not isinstance(key.curve, ec.SECP256R1):
            raise KeyStoreError(f"{path} holds an EC key on {key.curve.name}, not P-256")
        return key

    def generate_ed25519(self, name: str) -> Ed25519PrivateKey:
        key = Ed25519PrivateKey.generate()
        write_encrypted_pkcs8(self._path(name), key, self._passphrase)
        return key

    def load_ed25519(self, name: str) -> Ed25519PrivateKey:
        path = self._path(name)
        key = load_encrypted_pkcs8(path, self._passphrase)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"{path} does not hold an Ed25519 key")
        return key
