"""The layout of a data directory, and opening the ledger that lives in it.

DATA/
  ledger/               RocksDB: leaves, stored hashes, lookups, latest checkpoint
  keys/                 0700
    passphrase          0600, only when LICENCE_LEDGER_KEY_PASSPHRASE is unset
    checkpoint.key.pem  encrypted PKCS#8: the key that signs checkpoints
  checkpoint.vkey       public: the verifier key clients pin (C2SP vkey text)
  documents/            the PDFs the region sealed, by SHA-256 (ledger entries hold digests)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger import (
    Ed25519NoteSigner,
    Ledger,
    LedgerReader,
    LedgerSettings,
    create_ledger,
    open_ledger,
    open_reader,
)
from ledger.errors import LedgerNotFoundError
from signer.keystore import FileKeyStore, load_or_create_passphrase

DEFAULT_REGION = "310000"
CHECKPOINT_KEY = "checkpoint"


def default_origin(region: str = DEFAULT_REGION) -> str:
    return f"licence-ledger.localhost/{region}"


@dataclass(frozen=True)
class DataDir:
    root: Path

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger"

    @property
    def keys_path(self) -> Path:
        return self.root / "keys"

    @property
    def documents_path(self) -> Path:
        """Sealed PDFs by digest (see service.region.documents)."""
        return self.root / "documents"

    @property
    def vkey_path(self) -> Path:
        return self.root / "checkpoint.vkey"

    def exists(self) -> bool:
        return (self.ledger_path / "CURRENT").exists()

    def passphrase(self) -> bytes:
        """The passphrase protecting this directory's private keys."""
        return load_or_create_passphrase(self.keys_path / "passphrase")

    def key_store(self) -> FileKeyStore:
        return FileKeyStore(self.keys_path, self.passphrase())

    def _signer(self, origin: str | None = None) -> Ed25519NoteSigner:
        store = self.key_store()
        if store.has_key(CHECKPOINT_KEY):
            key = store.load_ed25519(CHECKPOINT_KEY)
        else:
            key = store.generate_ed25519(CHECKPOINT_KEY)
        if origin is None:
            origin = open_reader_origin(self)
        return Ed25519NoteSigner(origin, key)

    def create(self, origin: str, settings: LedgerSettings | None = None) -> Ledger:
        """Create the ledger and its checkpoint key; refuses if a ledger exists."""
        self.root.mkdir(parents=True, exist_ok=True)
        signer = self._signer(origin)
        ledger = create_ledger(self.ledger_path, origin, signer, settings)
        self.vkey_path.write_text(signer.vkey() + "\n")
        return ledger

    def open(self, settings: LedgerSettings | None = None) -> Ledger:
        """Open the ledger for writing (the single writer)."""
        self._require()
        return open_ledger(self.ledger_path, self._signer(), settings)

    def open_reader(self) -> LedgerReader:
        """Open the ledger read-only; needs no key and works beside the writer."""
        self._require()
        return open_reader(self.ledger_path)

    def _require(self) -> None:
        if not self.exists():
            raise LedgerNotFoundError(
                f"no ledger in {self.root} "
                f"(create one with: licence-ledger ledger init {self.root})"
            )


def open_reader_origin(data: DataDir) -> str:
    reader = data.open_reader()
    try:
        return reader.origin
    finally:
        reader.close()
