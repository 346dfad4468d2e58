"""Proving that an entry is in the region's ledger, under a checkpoint the region signed.

Nothing read through `RegionRecords` is taken on trust: the checkpoint's signature is
checked with the region's checkpoint key, and the entry's leaf hash (predecessor link
and entry bytes) is walked up its audit path to the checkpoint's root. A ledger whose
files were altered on disk fails here, at the entry it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf.message import DecodeError

from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.errors import LedgerError
from ledger.hashing import leaf_hash
from ledger.proof import verify_inclusion
from licenceledger.record.v1 import record_pb2
from licenceledger.type.v1 import ledger_pb2 as type_pb
from verifier.records import RegionRecords


def checkpoint_message(signed: SignedCheckpoint) -> type_pb.SignedCheckpoint:
    cp = signed.checkpoint
    return type_pb.SignedCheckpoint(
        note=signed.to_bytes(),
        origin=cp.origin,
        tree_size=cp.size,
        root_hash=cp.root_hash,
        signatures=[
            type_pb.NoteSignature(name=s.name, key_id=s.key_id, signature=s.signature)
            for s in signed.note.signatures
        ],
    )


class CheckpointCache:
    """The last checkpoint verified: every verification between two appends shares it."""

    def __init__(self) -> None:
        self._note = b""
        self._opened: tuple[SignedCheckpoint, type_pb.SignedCheckpoint] | None = None

    def open(
        self, records: RegionRecords
    ) -> tuple[SignedCheckpoint, type_pb.SignedCheckpoint] | str:
        """The latest checkpoint, verified; or what is wrong with it."""
        note = records.latest_checkpoint()
        if note == self._note and self._opened is not None:
            return self._opened
        try:
            signed = open_checkpoint(note, records.checkpoint_verifier)
        except LedgerError as exc:
            return f"the ledger's checkpoint does not verify: {exc}"
        self._note, self._opened = note, (signed, checkpoint_message(signed))
        return self._opened


@dataclass(frozen=True, slots=True)
class ProvenEntry:
    index: int
    record: record_pb2.LedgerRecord


@dataclass(frozen=True, slots=True)
class ProofFailure:
    message: str


def prove_entry(
    records: RegionRecords, checkpoint: SignedCheckpoint, index: int
) -> ProvenEntry | ProofFailure | None:
    """The record at `index`, proven under `checkpoint`; None when it is not in the tree."""
    size = checkpoint.checkpoint.size
    if index >= size:
        return None
    evidence = records.entry(index, size)
    if evidence is None:
        return ProofFailure(f"ledger entry {index} is missing from storage")
    leaf = leaf_hash(evidence.prev_hash + evidence.entry)
    try:
        verify_inclusion(index, size, leaf, evidence.audit_path, checkpoint.checkpoint.root_hash)
    except LedgerError as exc:
        return ProofFailure(f"ledger entry {index} is not under the signed checkpoint: {exc}")
    try:
        record = record_pb2.LedgerRecord.FromString(evidence.entry)
    except DecodeError:
        return ProofFailure(f"ledger entry {index} is not a ledger record")
    return ProvenEntry(index, record)
