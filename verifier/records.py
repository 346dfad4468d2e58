"""What the verifier needs to know about a region, as one narrow interface.

The service implements it over its ledger and indexes; the verifier never touches
storage and re-checks everything that comes through here that can be checked:
certificates against the region root, ledger entries against a signed checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from cryptography import x509

from ledger.note import NoteVerifier
from licenceledger.index.v1 import index_pb2
from licenceledger.registry.v1 import registry_pb2
from licenceledger.seal.v1 import seal_pb2


@dataclass(frozen=True, slots=True)
class EntryEvidence:
    """A ledger entry as stored, with its inclusion proof for `tree_size`."""

    index: int
    entry: bytes
    prev_hash: bytes
    audit_path: tuple[bytes, ...]
    tree_size: int


@dataclass(frozen=True, slots=True)
class IssuingKey:
    """A department's registered issuing key."""

    department_code: str
    key: registry_pb2.DepartmentKey


class RegionRecords(Protocol):
    @property
    def region_code(self) -> str: ...

    @property
    def root_certificate(self) -> x509.Certificate: ...

    @property
    def checkpoint_verifier(self) -> NoteVerifier: ...

    def latest_checkpoint(self) -> bytes:
        """The ledger's latest signed checkpoint note."""
        ...

    def entry(self, index: int, tree_size: int) -> EntryEvidence | None:
        """The entry at `index` and its proof for `tree_size`; None past the end."""
        ...

    def issuing_key(self, key_id: str) -> IssuingKey | None: ...

    def issuing_keys_by_prefix(self, short_id: bytes) -> list[IssuingKey]:
        """Keys whose id (hex of SHA-256 of the SPKI) starts with these bytes."""
        ...

    def licence_state(self, lineage: str) -> index_pb2.LicenceState | None: ...

    def seal(self, seal_id: str) -> seal_pb2.Seal | None: ...

    def seal_fingerprints(self) -> Mapping[bytes, frozenset[str]]:
        """Image fingerprint (see `verifier.seal_images`) → ids of the seals with that image."""
        ...

    def sealing_entry(self, digest: bytes) -> int | None:
        """Ledger index of the DOCUMENT_SEALED entry whose result has this SHA-256."""
        ...
