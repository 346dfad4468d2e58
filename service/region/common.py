"""What every region operation shares: the runtime, request checks, recording, proofs.

An operation that changes the region follows one shape, so that a check and the
claim it leads to cannot interleave with another caller's:

1. check the request on its own (no state) and compute its digest;
2. ``await ctx.ledger.wait_for_room()`` — the only await before recording;
3. synchronously: look up the caller's request id (a retry replays the first
   result), check the state, sign, build the `LedgerRecord`, derive its index
   writes and submit both — the ledger makes the index writes visible at once;
4. await durability, then answer with the entry's proof.

Issuance alone may await once more, between its checks and its submit, while the
signing worker signs; `in_flight` explains how it keeps step 3's guarantee.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import grpc
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from ledger import Ledger, ProofBundle
from licenceledger.record.v1 import record_pb2
from licenceledger.registry.v1 import registry_pb2
from licenceledger.type.v1 import ledger_pb2 as type_pb
from service.authz import Caller
from service.errors import FieldViolation, ServiceError, invalid_argument
from service.region import index
from service.region.documents import DocumentStore
from service.region.revocations import LtvSource
from service.region.sealing import SealingPool
from service.region.signing_worker import SigningWorker
from signer import dsse, pki
from signer.keystore import FileKeyStore
from verifier.ledger_checks import checkpoint_message

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_REQUEST_ID = 128
MAX_TEXT = 500
_REQUEST_ID = re.compile("[!-~]+")  # printable ASCII, no space
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1


class IdempotentRequest(Protocol):
    """A mutating request: a protobuf message with the caller's idempotency key."""

    @property
    def request_id(self) -> str: ...

    def SerializeToString(self, *, deterministic: bool = ...) -> bytes: ...


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class RegionContext:
    """The running region: its ledger, CA and the departments' signing keys."""

    ledger: Ledger
    ca: pki.RegionCA
    keys: FileKeyStore
    clock: Callable[[], datetime] = utc_now
    signing_worker: SigningWorker | None = None
    sealing_pool: SealingPool | None = None
    document_store: DocumentStore | None = None
    ltv: LtvSource | None = None  # seals are PAdES B-LT when set
    _signers: dict[str, dsse.Signer] = field(default_factory=dict, repr=False)
    # The latest checkpoint as a message: every proof until the next commit carries it.
    _checkpoint: tuple[object, type_pb.SignedCheckpoint] | None = field(default=None, repr=False)

    @property
    def region_code(self) -> str:
        return self.ca.region_code

    def now(self) -> Timestamp:
        return timestamp_of(self.clock())

    def signer(self, key_name: str) -> dsse.Signer:
        """A department key from the key store, decrypted once and kept in memory."""
        cached = self._signers.get(key_name)
        if cached is None:
            key = self.keys.load(key_name)
            if not isinstance(key, Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
                raise ServiceError(
                    f"key {key_name} cannot sign credentials",
                    "KEY_UNUSABLE",
                    grpc.StatusCode.INTERNAL,
                )
            cached = self._signers[key_name] = dsse.Signer(key)
        return cached

    def revocation_recorded(self) -> None:
        """A seal or department key was revoked: B-LT seals must carry a new CRL."""
        if self.ltv is not None:
            self.ltv.revoked()

    def pool(self) -> SealingPool:
        if self.sealing_pool is None:
            raise ServiceError(
                "this server runs without PDF workers",
                "PDF_UNAVAILABLE",
                grpc.StatusCode.UNAVAILABLE,
            )
        return self.sealing_pool

    def documents(self) -> DocumentStore:
        if self.document_store is None:
            raise ServiceError(
                "this server keeps no sealed documents",
                "PDF_UNAVAILABLE",
                grpc.StatusCode.UNAVAILABLE,
            )
        return self.document_store

    async def durable(self, ledger_index: int) -> None:
        """Wait until the entry at `ledger_index` is committed (another call may own it)."""
        while self.ledger.size <= ledger_index:
            if self.ledger.closed:
                raise ServiceError(
                    "the ledger closed before the entry was written",
                    "LEDGER_UNAVAILABLE",
                    grpc.StatusCode.UNAVAILABLE,
                )
            await self.ledger.wait_for_growth(self.ledger.size)

    async def record(
        self, record: record_pb2.LedgerRecord, writes: list[tuple[bytes, bytes | None]]
    ) -> int:
        """Submit `record` with its index writes (synchronously) and await durability."""
        submission = self.ledger.submit([record.SerializeToString(deterministic=True)], writes)
        return await submission.done

    def proof(
        self,
        ledger_index: int,
        recorded_at: Timestamp,
        entry: bytes | None = None,
        *,
        into: type_pb.ProofBundle | None = None,
    ) -> type_pb.ProofBundle:
        """The entry's proof under the latest checkpoint, self-contained for offline checks.

        `entry` may pass the entry's bytes when the caller has just recorded them (a hot
        path): the leaf is then not read back, only its hashes (in memory when recent).
        `into` is an empty bundle inside a response, filled where it is rather than
        copied there.
        """
        signed = self.ledger.checkpoint
        size = signed.checkpoint.size
        if entry is None:
            leaf = self.ledger.leaf(ledger_index)
            entry, prev_hash, leaf_hash = leaf.entry, leaf.prev_hash, leaf.hash
        else:
            prev_hash, leaf_hash = self.ledger.leaf_link(ledger_index)
        inclusion = self.ledger.inclusion_proof(ledger_index, size)
        if self._checkpoint is None or self._checkpoint[0] is not signed:
            self._checkpoint = (signed, checkpoint_message(signed))
        bundle = type_pb.ProofBundle() if into is None else into
        bundle.leaf_index = ledger_index
        bundle.tree_size = size
        bundle.audit_path.extend(inclusion.path)
        bundle.checkpoint.CopyFrom(self._checkpoint[1])
        bundle.entry = entry
        bundle.prev_leaf_hash = prev_hash
        bundle.leaf_hash = leaf_hash
        bundle.tlog_proof = ProofBundle(prev_hash, inclusion, signed).to_text()
        bundle.recorded_at.CopyFrom(recorded_at)
        return bundle

    def entry_record(self, ledger_index: int) -> record_pb2.LedgerRecord:
        return record_pb2.LedgerRecord.FromString(self.ledger.leaf(ledger_index).entry)


def department_key_name(department_code: str, key_id: str) -> str:
    return f"department-{department_code}-{key_id[:16]}"


def actor(caller: Caller) -> str:
    return f"{caller.role.value}:{caller.subject_id}"


def request_digest(method: str, request: Message) -> bytes:
    """What a retry must repeat: the method and every field but the request id."""
    stripped = type(request)()
    stripped.CopyFrom(request)
    stripped.ClearField("request_id")
    body = stripped.SerializeToString(deterministic=True)
    return hashlib.sha256(method.encode() + b"\0" + body).digest()


def check_request_id(request_id: str) -> None:
    if not request_id:
        raise invalid_argument(
            "a mutating call needs a request_id (idempotency key)",
            FieldViolation("request_id", "required: 1–128 printable ASCII characters"),
            reason="REQUEST_ID_MISSING",
        )
    if len(request_id) > MAX_REQUEST_ID or not _REQUEST_ID.fullmatch(request_id):
        raise invalid_argument(
            "request_id is not 1–128 printable ASCII characters",
            FieldViolation("request_id", "must be 1–128 printable ASCII characters, no spaces"),
            reason="FIELD_INVALID",
        )


def prior_request(ctx: RegionContext, who: str, request_id: str, digest: bytes) -> int | None:
    """The ledger index of this caller's earlier request with the same id, if any."""
    prior = index.read_idempotency(ctx.ledger, who, request_id)
    if prior is None:
        return None
    if prior.request_digest != digest:
        raise ServiceError(
            f"request_id {request_id!r} was already used for a different request",
            "IDEMPOTENCY_KEY_REUSED",
            grpc.StatusCode.FAILED_PRECONDITION,
            metadata={"ledger_index": str(prior.ledger_index)},
        )
    return prior.ledger_index


def new_record(
    ctx: RegionContext, who: str, request_id: str, digest: bytes
) -> record_pb2.LedgerRecord:
    return record_pb2.LedgerRecord(
        recorded_at=ctx.now(), actor=who, request_id=request_id, request_digest=digest
    )


async def record_once(
    ctx: RegionContext,
    caller: Caller,
    method: str,
    request: Message,
    request_id: str,
    build: Callable[[record_pb2.LedgerRecord], None],
) -> int:
    """Steps 2–4 above for a change whose record stands on its own: the ledger index of
    this request's record, new, or the first one when the request is a retry.

    `build` runs synchronously on a fresh record: it checks the state, fills the
    change in, or raises to refuse (and then nothing is written).
    """
    digest = request_digest(method, request)
    who = actor(caller)
    await ctx.ledger.wait_for_room()
    prior = prior_request(ctx, who, request_id, digest)
    if prior is not None:
        await ctx.durable(prior)
        return prior
    record = new_record(ctx, who, request_id, digest)
    build(record)
    return await ctx.record(record, index.derive(record, ctx.ledger.next_index, ctx.ledger))


def text_problem(value: str, limit: int, *, required: bool = True) -> str | None:
    """Why `value` cannot be a printed text field, or None."""
    if not value:
        return "required" if required else None
    if value != value.strip():
        return "must not start or end with whitespace"
    if _CONTROL.search(value):
        return "must not contain control characters"
    if len(value) > limit:
        return f"must be at most {limit} characters (has {len(value)})"
    return None


def require(violations: list[FieldViolation], message: str, reason: str = "FIELD_INVALID") -> None:
    if violations:
        raise invalid_argument(message, *violations, reason=reason)


def department_or_error(ctx: RegionContext, code: str) -> registry_pb2.Department:
    department = index.read_department(ctx.ledger, code)
    if department is None:
        raise department_not_found(code)
    return department


def department_not_found(code: str) -> ServiceError:
    return ServiceError(
        f"no department {code} is registered", "DEPARTMENT_NOT_FOUND", grpc.StatusCode.NOT_FOUND
    )


def timestamp_of(at: datetime) -> Timestamp:
    """`at` as a Timestamp (naive means UTC, as in FromDatetime, which costs ~8 µs)."""
    since = (at if at.tzinfo else at.replace(tzinfo=UTC)) - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)
