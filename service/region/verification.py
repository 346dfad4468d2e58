"""The region's records as the verifier sees them (`verifier.records.RegionRecords`).

Reads go straight to the ledger and its indexes; nothing here is trusted by the
verifier beyond what it re-checks (certificates against the root, entries against
the signed checkpoint).
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography import x509

from ledger import Ledger
from ledger.errors import LedgerError
from ledger.note import NoteVerifier
from licenceledger.index.v1 import index_pb2
from licenceledger.seal.v1 import seal_pb2
from service.region import index, seal_index
from signer import pki
from verifier.records import EntryEvidence, IssuingKey
from verifier.seal_images import png_fingerprint


class LedgerRecords:
    def __init__(self, ledger: Ledger, ca: pki.RegionCA) -> None:
        self._ledger = ledger
        self._ca = ca
        self._note: tuple[object, bytes] | None = None
        # seal id → (image digest, fingerprint); refreshed when the ledger grows.
        self._fingerprints: dict[str, tuple[bytes, bytes]] = {}
        self._fingerprints_at = -1
        self._by_fingerprint: dict[bytes, frozenset[str]] = {}

    @property
    def region_code(self) -> str:
        return self._ca.region_code

    @property
    def root_certificate(self) -> x509.Certificate:
        return self._ca.certificate

    @property
    def checkpoint_verifier(self) -> NoteVerifier:
        return self._ledger.verifier

    def latest_checkpoint(self) -> bytes:
        signed = self._ledger.checkpoint
        if self._note is None or self._note[0] is not signed:
            self._note = (signed, signed.to_bytes())
        return self._note[1]

    def entry(self, index_: int, tree_size: int) -> EntryEvidence | None:
        try:
            leaf = self._ledger.leaf(index_)
            proof = self._ledger.inclusion_proof(index_, tree_size)
        except LedgerError:
            return None
        return EntryEvidence(index_, leaf.entry, leaf.prev_hash, tuple(proof.path), tree_size)

    def _key_of(self, department_code: str, key_id: str) -> IssuingKey | None:
        department = index.read_department(self._ledger, department_code)
        if department is None:
            return None
        for key in department.keys:
            if key.certificate.key_id == key_id:
                return IssuingKey(department_code, key)
        return None

    def issuing_key(self, key_id: str) -> IssuingKey | None:
        owner = self._ledger.index_get(index.key_owner_key(key_id))
        return None if owner is None else self._key_of(owner.decode(), key_id)

    def issuing_keys_by_prefix(self, short_id: bytes) -> list[IssuingKey]:
        start = index.key_owner_key(short_id.hex())
        found = []
        for key, owner in self._ledger.index_scan(start, index.prefix_end(start)):
            key_id = key.removeprefix(b"keyid/").decode()
            issuing = self._key_of(owner.decode(), key_id)
            if issuing is not None:
                found.append(issuing)
        return found

    def licence_state(self, lineage: str) -> index_pb2.LicenceState | None:
        return index.read_licence_state(self._ledger, lineage)

    def seal(self, seal_id: str) -> seal_pb2.Seal | None:
        return seal_index.read_seal(self._ledger, seal_id)

    def seal_fingerprints(self) -> Mapping[bytes, frozenset[str]]:
        size = self._ledger.size
        if size != self._fingerprints_at:
            prefix = seal_index.SEAL_PREFIX
            for _, value in self._ledger.index_scan(prefix, index.prefix_end(prefix)):
                seal = seal_pb2.Seal.FromString(value)
                digest = seal.image_digest.value
                known = self._fingerprints.get(seal.seal_id)
                if known is None or known[0] != digest:
                    self._fingerprints[seal.seal_id] = (digest, png_fingerprint(seal.image_png))
            by_fingerprint: dict[bytes, set[str]] = {}
            for seal_id, (_, fingerprint) in self._fingerprints.items():
                by_fingerprint.setdefault(fingerprint, set()).add(seal_id)
            self._by_fingerprint = {fp: frozenset(ids) for fp, ids in by_fingerprint.items()}
            self._fingerprints_at = size
        return self._by_fingerprint

    def sealing_entry(self, digest: bytes) -> int | None:
        return seal_index.document_entry(self._ledger, digest)
