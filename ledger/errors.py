"""The one error hierarchy of the ledger.

Callers catch `LedgerError`; the subclasses say which party is at fault, so the
service layer can map them to status codes without parsing messages:

* `InvalidRequestError` — the caller asked for something malformed or out of range
  (nothing was read or written on its behalf);
* `VerificationError` — a proof, note or checkpoint did not verify;
* `StorageError` — the ledger on disk is unusable, locked or inconsistent.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error raised by `ledger`."""


class InvalidRequestError(LedgerError, ValueError):
    """A request is malformed or out of range; nothing was changed."""


class InvalidEntryError(InvalidRequestError):
    """An entry cannot be appended (empty, too large, not bytes)."""


class VerificationError(LedgerError):
    """A proof, signed note or checkpoint failed verification."""


class ProofError(VerificationError):
    """An inclusion or consistency proof does not prove what it claims."""


class NoteError(VerificationError):
    """A signed note is malformed or carries no valid signature from a trusted key."""


class CheckpointError(VerificationError):
    """A checkpoint body is malformed or does not match what it is checked against."""


class StorageError(LedgerError):
    """The ledger's storage cannot be used as asked."""


class LedgerLockedError(StorageError):
    """Another writer holds the ledger open."""


class LedgerNotFoundError(StorageError):
    """No ledger exists at the given location."""


class LedgerCorruptError(StorageError):
    """What is stored contradicts itself (for example the checkpoint and the hashes)."""


class LedgerClosedError(StorageError):
    """The ledger was closed, or stopped accepting writes after a failed commit."""


class LedgerBusyError(LedgerError):
    """The append queue is full; `Ledger.wait_for_room` returns when it is not."""
