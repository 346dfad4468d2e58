"""What seal records add to the region's indexes (see `service.region.index`).

Key layout (ASCII prefixes; seal ids never contain "/"):

    seal/<seal id>                  Seal (current state, image and certificate)
    sealby/<department>/<seal id>   listing by owner
    sealkey/<key id>                seal id certified for that signing key
    sealseq                         last number used for an assigned seal id
    lpdf/<licence id>               ledger index of the sealing of that licence's PDF
    doc/<sha256 hex>                ledger index of the sealing that produced that PDF

The sealed PDFs themselves are not indexed here: the ledger records their digests
and the region's document store (`service.region.documents`) keeps the bytes.
"""

from __future__ import annotations

import struct
from typing import Protocol

from licenceledger.record.v1 import record_pb2
from licenceledger.seal.v1 import seal_pb2

_INDEX = struct.Struct(">Q")
SEAL_PREFIX = b"seal/"
SEQUENCE_KEY = b"sealseq"


class IndexWriter(Protocol):
    def index_get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...


class IndexView(Protocol):
    def index_get(self, key: bytes) -> bytes | None: ...


def seal_key(seal_id: str) -> bytes:
    return SEAL_PREFIX + seal_id.encode()


def owner_prefix(department_code: str) -> bytes:
    return b"sealby/" + department_code.encode() + b"/"


def seal_key_id_key(key_id: str) -> bytes:
    return b"sealkey/" + key_id.encode()


def licence_pdf_key(licence_id: str) -> bytes:
    return b"lpdf/" + licence_id.encode()


def document_key(digest: bytes) -> bytes:
    return b"doc/" + digest.hex().encode()


# -- reading ---------------------------------------------------------------------


def read_seal(view: IndexView, seal_id: str) -> seal_pb2.Seal | None:
    data = view.index_get(seal_key(seal_id))
    return None if data is None else seal_pb2.Seal.FromString(data)


def last_seal_number(view: IndexView) -> int:
    value = view.index_get(SEQUENCE_KEY)
    return 0 if value is None else int(value)


def _ledger_index(value: bytes | None) -> int | None:
    return None if value is None else int(_INDEX.unpack(value)[0])


def licence_pdf_entry(view: IndexView, licence_id: str) -> int | None:
    """Ledger index of the DocumentSealed record of that licence version's PDF, if any."""
    return _ledger_index(view.index_get(licence_pdf_key(licence_id)))


def document_entry(view: IndexView, digest: bytes) -> int | None:
    """Ledger index of the sealing whose result has SHA-256 `digest`, if any."""
    return _ledger_index(view.index_get(document_key(digest)))


def seal_of_key(view: IndexView, key_id: str) -> str | None:
    value = view.index_get(seal_key_id_key(key_id))
    return None if value is None else value.decode()


# -- deriving --------------------------------------------------------------------


def derive_seal(record: record_pb2.LedgerRecord, ledger_index: int, writes: IndexWriter) -> None:
    """The index writes of a seal record (registration, status change or use)."""
    kind = record.WhichOneof("change")
    if kind == "seal_registered":
        seal = seal_pb2.Seal()
        seal.CopyFrom(record.seal_registered.seal)
        seal.registered_at.CopyFrom(record.recorded_at)
        seal.registration_ledger_index = ledger_index
        writes.put(seal_key(seal.seal_id), _bytes(seal))
        writes.put(owner_prefix(seal.owner_department_code) + seal.seal_id.encode(), b"")
        writes.put(seal_key_id_key(seal.certificate.key_id), seal.seal_id.encode())
        number = assigned_number(seal.seal_id)
        if number is not None and number > last_seal_number(writes):
            writes.put(SEQUENCE_KEY, str(number).encode())
    elif kind == "seal_status_changed":
        change = record.seal_status_changed
        current = read_seal(writes, change.seal_id)
        if current is None:
            return
        current.status = change.status
        current.status_changed_at.CopyFrom(record.recorded_at)
        current.status_reason = change.reason
        if change.HasField("invalid_since"):
            current.invalid_since.CopyFrom(change.invalid_since)
        writes.put(seal_key(change.seal_id), _bytes(current))
    elif kind == "document_sealed":
        use = record.document_sealed
        at = _INDEX.pack(ledger_index)
        writes.put(document_key(use.digest_after.value), at)
        if use.licence_id:
            writes.put(licence_pdf_key(use.licence_id), at)


# Assigned seal ids follow the public security seal code's shape: the six-digit
# region code, then an eight-digit sequence number.
ASSIGNED_DIGITS = 8


def assigned_seal_id(region_code: str, number: int) -> str:
    return f"{region_code}{number:0{ASSIGNED_DIGITS}d}"


def assigned_number(seal_id: str) -> int | None:
    """The sequence number of an id shaped like an assigned one (any region), else None."""
    if len(seal_id) == 6 + ASSIGNED_DIGITS and seal_id.isascii() and seal_id.isdigit():
        return int(seal_id[6:])
    return None


def _bytes(seal: seal_pb2.Seal) -> bytes:
    return seal.SerializeToString(deterministic=True)
