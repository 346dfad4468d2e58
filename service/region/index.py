"""The region's indexes: what each ledger record adds to them, and rebuilding them.

The ledger stores records as opaque bytes; these indexes make them findable (a
licence by identifier, a holder's licences, a caller's earlier request). They are
pure functions of the ledger: `derive` maps one record, its ledger index and the
index state before it to the index writes it causes. The live service submits
those writes in the same atomic batch as the record; `rebuild` replays the whole
ledger through the same function, so a rebuilt index equals the live one by
construction, and the test suite checks that it does.

Key layout (ASCII prefixes; codes never contain "/"):

    dept/<code>                          Department
    keyid/<key id hex>                   department code owning that issuing key
    type/<code>                          LicenceType
    lic/<type>.<issuer>.<serial>         LicenceState (every version of one licence)
    num/<type>/<licence number>          lineage holding that printed number
    seq/<type>/<issuer>                  highest serial issued (decimal)
    hold/<holder id>/<order>/<lineage>   listing by holder (newest first)
    iss/<issuer>/<order>/<lineage>       listing by issuer (newest first)
    all/<order>/<lineage>                listing of every licence (newest first)
    idem/<actor>\\0<request id>          IdempotencyRecord
    seal/, sealby/, sealkey/, sealseq, lpdf/, doc/   seals: see `seal_index`

`<order>` is the first issuance's ledger index subtracted from 2^64-1, big-endian,
so a forward scan yields the newest licences first.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from ledger import IndexWrite, LedgerReader, RocksDBStorage
from licenceledger.index.v1 import index_pb2
from licenceledger.licence.v1 import licence_pb2
from licenceledger.record.v1 import record_pb2
from licenceledger.registry.v1 import registry_pb2
from licenceledger.type.v1 import crypto_pb2
from service.region import seal_index
from signer import dsse
from signer.identifiers import LicenceId

_ORDER = struct.Struct(">Q")
_MAX_U64 = (1 << 64) - 1


class IndexView(Protocol):
    def index_get(self, key: bytes) -> bytes | None: ...


# -- keys ------------------------------------------------------------------------


def department_key(code: str) -> bytes:
    return b"dept/" + code.encode()


def key_owner_key(key_id: str) -> bytes:
    return b"keyid/" + key_id.encode()


def licence_type_key(code: str) -> bytes:
    return b"type/" + code.encode()


def licence_key(lineage: str) -> bytes:
    return b"lic/" + lineage.encode()


def number_key(type_code: str, number: str) -> bytes:
    return b"num/" + type_code.encode() + b"/" + number.encode()


def serial_key(type_code: str, issuer: str) -> bytes:
    return b"seq/" + type_code.encode() + b"/" + issuer.encode()


def order(ledger_index: int) -> bytes:
    return _ORDER.pack(_MAX_U64 - ledger_index)


def holder_prefix(holder_id: str) -> bytes:
    return b"hold/" + holder_id.encode() + b"/"


def issuer_prefix(department_code: str) -> bytes:
    return b"iss/" + department_code.encode() + b"/"


ALL_PREFIX = b"all/"


def idempotency_key(actor: str, request_id: str) -> bytes:
    return b"idem/" + actor.encode() + b"\0" + request_id.encode()


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with `prefix` (prefixes end in "/")."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


# -- reading ---------------------------------------------------------------------


def read_department(view: IndexView, code: str) -> registry_pb2.Department | None:
    return _parse(view.index_get(department_key(code)), registry_pb2.Department)


def read_licence_type(view: IndexView, code: str) -> registry_pb2.LicenceType | None:
    return _parse(view.index_get(licence_type_key(code)), registry_pb2.LicenceType)


def read_licence_state(view: IndexView, lineage: str) -> index_pb2.LicenceState | None:
    return _parse(view.index_get(licence_key(lineage)), index_pb2.LicenceState)


def read_idempotency(
    view: IndexView, actor: str, request_id: str
) -> index_pb2.IdempotencyRecord | None:
    return _parse(view.index_get(idempotency_key(actor, request_id)), index_pb2.IdempotencyRecord)


_M = TypeVar(
    "_M",
    registry_pb2.Department,
    registry_pb2.LicenceType,
    index_pb2.LicenceState,
    index_pb2.IdempotencyRecord,
)


def _parse(data: bytes | None, cls: type[_M]) -> _M | None:
    if data is None:
        return None
    message = cls()
    message.ParseFromString(data)
    return message


_T = TypeVar("_T")
_MAX_PARSED = 1024  # values a cache keeps before it starts over


class ParsedCache(Generic[_T]):
    """Index values kept parsed, for hot paths that read the same few again and again.

    Each read still fetches the stored bytes and compares them with the ones parsed,
    so a change is seen at once; only the parsing (and whatever `parse` derives) is
    saved. What it returns is shared between callers: read it, never change it.
    """

    def __init__(self, key: Callable[[str], bytes], parse: Callable[[bytes], _T]) -> None:
        self._key = key
        self._parse = parse
        self._parsed: dict[bytes, tuple[bytes, _T]] = {}

    def get(self, view: IndexView, code: str) -> _T | None:
        key = self._key(code)
        data = view.index_get(key)
        if data is None:
            return None
        kept = self._parsed.get(key)
        if kept is not None and kept[0] == data:
            return kept[1]
        value = self._parse(data)
        if len(self._parsed) >= _MAX_PARSED:
            self._parsed.clear()  # many departments or types at once: start over
        self._parsed[key] = (data, value)
        return value


def number_taken(view: IndexView, type_code: str, number: str) -> bool:
    return view.index_get(number_key(type_code, number)) is not None


def last_serial(view: IndexView, type_code: str, issuer: str) -> int:
    value = view.index_get(serial_key(type_code, issuer))
    return 0 if value is None else int(value)


def envelope_payload(envelope: bytes) -> bytes:
    """The payload of an envelope this region wrote itself (already verified on the way in)."""
    return dsse.parse_envelope(envelope).payload


def licence_of(envelope: bytes) -> licence_pb2.Licence:
    return licence_pb2.Licence.FromString(envelope_payload(envelope))


def statement_of(envelope: bytes) -> licence_pb2.StatusStatement:
    return licence_pb2.StatusStatement.FromString(envelope_payload(envelope))


# -- deriving --------------------------------------------------------------------


class _Writes:
    """Index writes of one record, readable back while they accumulate."""

    def __init__(self, view: IndexView) -> None:
        self._view = view
        self.pending: dict[bytes, bytes | None] = {}

    def index_get(self, key: bytes) -> bytes | None:
        if key in self.pending:
            return self.pending[key]
        return self._view.index_get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.pending[key] = value

    def delete(self, key: bytes) -> None:
        self.pending[key] = None


def derive(
    record: record_pb2.LedgerRecord,
    ledger_index: int,
    view: IndexView,
    *,
    licence: licence_pb2.Licence | None = None,
    licence_id: LicenceId | None = None,
) -> list[IndexWrite]:
    """The index writes `record`, stored at `ledger_index`, causes after `view`'s state.

    `licence` may pass the already-parsed content of a licence version, and
    `licence_id` its identifier (a hot path).
    """
    writes = _Writes(view)
    kind = record.WhichOneof("change")
    if kind == "department_registered":
        department = record.department_registered.department
        writes.put(department_key(department.department_code), _bytes(department))
        for key in department.keys:
            writes.put(key_owner_key(key.certificate.key_id), department.department_code.encode())
    elif kind == "department_key_rotated":
        _key_rotated(record, writes)
    elif kind == "department_key_revoked":
        _key_revoked(record, writes)
    elif kind == "licence_type_registered":
        licence_type = record.licence_type_registered.licence_type
        writes.put(licence_type_key(licence_type.licence_type_code), _bytes(licence_type))
    elif kind == "licence_version_issued":
        content = licence or licence_of(record.licence_version_issued.envelope)
        lid = licence_id or LicenceId.parse(content.licence_id)
        _licence_version(record, ledger_index, content, lid, writes)
    elif kind == "licence_status_changed":
        _status_changed(record, ledger_index, writes)
    elif kind in ("seal_registered", "seal_status_changed", "document_sealed"):
        seal_index.derive_seal(record, ledger_index, writes)
    if record.request_id:
        idem = index_pb2.IdempotencyRecord(
            request_digest=record.request_digest, ledger_index=ledger_index
        )
        writes.put(idempotency_key(record.actor, record.request_id), _bytes(idem))
    return list(writes.pending.items())


def _bytes(
    message: registry_pb2.Department
    | registry_pb2.LicenceType
    | index_pb2.LicenceState
    | index_pb2.IdempotencyRecord,
) -> bytes:
    return message.SerializeToString(deterministic=True)


def _key_rotated(record: record_pb2.LedgerRecord, writes: _Writes) -> None:
    change = record.department_key_rotated
    department = read_department(writes, change.department_code)
    if department is None:
        return
    for key in department.keys:
        if change.rotated_key_id and key.certificate.key_id == change.rotated_key_id:
            key.status = registry_pb2.KEY_STATUS_ROTATED
            key.retired_at.CopyFrom(record.recorded_at)
    department.keys.append(change.key)
    del department.authorized_licence_type_codes[:]
    department.authorized_licence_type_codes.extend(change.authorized_licence_type_codes)
    writes.put(department_key(change.department_code), _bytes(department))
    writes.put(key_owner_key(change.key.certificate.key_id), change.department_code.encode())


def _key_revoked(record: record_pb2.LedgerRecord, writes: _Writes) -> None:
    change = record.department_key_revoked
    department = read_department(writes, change.department_code)
    if department is None:
        return
    for key in department.keys:
        if key.certificate.key_id == change.key_id:
            key.status = registry_pb2.KEY_STATUS_REVOKED
            key.retired_at.CopyFrom(record.recorded_at)
            key.revocation_reason = change.reason
            key.invalid_since.CopyFrom(change.invalid_since)
    writes.put(department_key(change.department_code), _bytes(department))


def _licence_version(
    record: record_pb2.LedgerRecord,
    ledger_index: int,
    licence: licence_pb2.Licence,
    lid: LicenceId,
    writes: _Writes,
) -> None:
    change = record.licence_version_issued
    lineage = lid.lineage
    version = licence_pb2.LicenceVersion(
        licence_id=licence.licence_id,
        version=licence.version,
        kind=change.kind,
        recorded_at=record.recorded_at,
        ledger_index=ledger_index,
        credential_digest=crypto_pb2.Digest(
            algorithm=crypto_pb2.DIGEST_ALGORITHM_SHA256, value=_sha256(change.envelope)
        ),
        reason=change.reason,
    )
    state = read_licence_state(writes, lineage)
    holder_id = licence.holder.id_number
    if state is None:
        state = index_pb2.LicenceState(
            department_code=lid.issuer_code,
            licence_type_code=lid.type_code,
            first_issued_at=record.recorded_at,
        )
        first = order(ledger_index)
        writes.put(holder_prefix(holder_id) + first + lineage.encode(), b"")
        writes.put(issuer_prefix(lid.issuer_code) + first + lineage.encode(), b"")
        writes.put(ALL_PREFIX + first + lineage.encode(), b"")
        serial = writes.index_get(serial_key(lid.type_code, lid.issuer_code))
        if serial is None or int(serial) < lid.serial:
            writes.put(serial_key(lid.type_code, lid.issuer_code), str(lid.serial).encode())
    else:
        first = order(state.versions[0].ledger_index)
        if state.holder_id_number != holder_id:
            writes.delete(holder_prefix(state.holder_id_number) + first + lineage.encode())
            writes.put(holder_prefix(holder_id) + first + lineage.encode(), b"")
        if state.licence_number != licence.licence_number:
            writes.delete(number_key(lid.type_code, state.licence_number))
    state.current_licence_id = licence.licence_id
    state.status = licence.status
    state.versions.append(version)
    state.holder_id_number = holder_id
    state.licence_number = licence.licence_number
    if licence.HasField("valid_until"):
        state.valid_until.CopyFrom(licence.valid_until)
    else:
        state.ClearField("valid_until")
    writes.put(number_key(lid.type_code, licence.licence_number), lineage.encode())
    writes.put(licence_key(lineage), _bytes(state))


def _status_changed(record: record_pb2.LedgerRecord, ledger_index: int, writes: _Writes) -> None:
    statement = statement_of(record.licence_status_changed.envelope)
    lineage = LicenceId.parse(statement.licence_id).lineage
    state = read_licence_state(writes, lineage)
    if state is None:
        return
    change = licence_pb2.StatusChange(
        licence_id=statement.licence_id,
        previous_status=statement.previous_status,
        status=statement.status,
        reason=statement.reason,
        changed_at=statement.changed_at,
        ledger_index=ledger_index,
    )
    if statement.HasField("suspended_until"):
        change.suspended_until.CopyFrom(statement.suspended_until)
    state.status = statement.status
    state.status_history.append(change)
    if statement.successor_licence_id:
        state.successor_licence_id = statement.successor_licence_id
    writes.put(licence_key(lineage), _bytes(state))


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- rebuilding ------------------------------------------------------------------


class _DictView:
    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}

    def index_get(self, key: bytes) -> bytes | None:
        return self.values.get(key)


def replay(
    reader: LedgerReader, *, progress: Callable[[int], None] | None = None
) -> dict[bytes, bytes]:
    """The whole index as the ledger's records define it, computed from scratch."""
    view = _DictView()
    chunk = reader.max_read_range
    for start in range(0, reader.size, chunk):
        for leaf in reader.leaves(start, min(start + chunk, reader.size)):
            record = record_pb2.LedgerRecord.FromString(leaf.entry)
            for key, value in derive(record, leaf.index, view):
                if value is None:
                    view.values.pop(key, None)
                else:
                    view.values[key] = value
        if progress is not None:
            progress(min(start + chunk, reader.size))
    return view.values


def scan_all(reader: LedgerReader) -> Iterator[tuple[bytes, bytes]]:
    """Every stored index pair, in key order."""
    return reader.index_scan(b"", b"\xff")


@dataclass(frozen=True)
class ReindexReport:
    entries: int
    keys: int
    differences: int  # keys missing, extra or different in the stored index
    rewritten: bool


def reindex(
    path: Path, *, check_only: bool = False, progress: Callable[[int, int], None] | None = None
) -> ReindexReport:
    """Rebuild the index of the ledger at `path` from its records (the writer's lock is taken)."""
    storage = RocksDBStorage(path)
    try:
        reader = LedgerReader(storage)
        size = reader.size
        rebuilt = replay(reader, progress=None if progress is None else lambda n: progress(n, size))
        stored = dict(scan_all(reader))
        differences = sum(1 for k, v in rebuilt.items() if stored.get(k) != v) + sum(
            1 for k in stored if k not in rebuilt
        )
        rewrite = differences > 0 and not check_only
        if rewrite:
            storage.replace_index(iter(sorted(rebuilt.items())))
        return ReindexReport(size, len(rebuilt), differences, rewrite)
    finally:
        storage.close()
