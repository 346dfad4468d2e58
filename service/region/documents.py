"""The region's store of the PDFs it sealed, by SHA-256, beside the ledger.

The ledger records a sealed document's digests, not its bytes (a document may be
megabytes, and it is the owner's, not the public's). The bytes are kept here so a
retried request returns exactly the PDF the first attempt produced — a second
signature would be a second, different document — and so an operator can produce
what was sealed. A file is written and synced before its ledger entry is submitted;
a crash in between leaves an orphan file, never an entry without its document.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path


class DocumentStoreError(Exception):
    """A stored document is missing or does not match its digest."""


class DocumentStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, digest: bytes) -> Path:
        name = digest.hex()
        return self.root / name[:2] / f"{name}.pdf"

    def put(self, data: bytes) -> bytes:
        """Store `data` durably; returns its SHA-256. Storing the same bytes again is a no-op."""
        digest = hashlib.sha256(data).digest()
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.{id(data):x}.tmp")
        with open(temporary, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        return digest

    async def put_async(self, data: bytes) -> bytes:
        return await asyncio.to_thread(self.put, data)

    def get(self, digest: bytes) -> bytes:
        """The document with SHA-256 `digest`; DocumentStoreError if missing or altered."""
        try:
            data = self._path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise DocumentStoreError(f"sealed document {digest.hex()} is not stored") from exc
        if hashlib.sha256(data).digest() != digest:
            raise DocumentStoreError(f"sealed document {digest.hex()} was altered on disk")
        return data
