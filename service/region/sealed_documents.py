"""Using seals: sealing a department's PDF, and sealing the printable licence PDF.

A sealing takes three steps, because signing a PDF takes milliseconds of another
process's time and the region must not hold its single-writer section that long:

1. synchronously check the seal may be used (owner, status, validity, purpose);
2. sign in the worker pool (`service.region.sealing`) and store the result
   durably in the document store;
3. synchronously check again — the seal may have been revoked meanwhile, a retry
   may have landed first — and record DOCUMENT_SEALED with both digests.

A retry with the same request id returns the stored PDF of the first attempt.
"""

from __future__ import annotations

import hashlib

import grpc

from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.record.v1 import record_pb2
from licenceledger.registry.v1 import registry_pb2
from licenceledger.seal.v1 import seal_pb2
from licenceledger.seal.v1 import seal_service_pb2 as pb
from licenceledger.type.v1 import crypto_pb2
from service.authz import Caller
from service.errors import FieldViolation, ServiceError, invalid_argument
from service.region import index, seal_index, sealing
from service.region.common import (
    MAX_TEXT,
    RegionContext,
    actor,
    check_request_id,
    new_record,
    prior_request,
    request_digest,
    require,
    text_problem,
)
from service.region.documents import DocumentStoreError
from service.region.revocations import ValidationDataError
from service.region.seals import PURPOSE, seal_key_name, seal_or_error, usable_problem
from signer import pades

_SERVICE = "/licenceledger.seal.v1.SealService/"
LICENCE_PURPOSE = "licence_issuing"
LICENCE_REASON = "电子证照签发"
_FIELD_FOR_REASON = {
    "PDF_TOO_LARGE": "pdf",
    "PDF_MALFORMED": "pdf",
    "PDF_ENCRYPTED": "pdf",
    "PDF_TOO_MANY_PAGES": "pdf",
    "PAGE_OUT_OF_RANGE": "placement.page",
    "PLACEMENT_OUTSIDE_PAGE": "placement",
    "PLACEMENT_INVALID": "placement",
}


def sha256_digest(data: bytes) -> crypto_pb2.Digest:
    return crypto_pb2.Digest(
        algorithm=crypto_pb2.DIGEST_ALGORITHM_SHA256, value=hashlib.sha256(data).digest()
    )


def _raise_if_unavailable(refused: sealing.Refused) -> None:
    """A timestamp authority that fails, or validation data that are missing or stale,
    are the region's trouble, not the caller's input."""
    if refused.reason in (sealing.TIMESTAMP_UNAVAILABLE, sealing.VALIDATION_DATA_UNAVAILABLE):
        raise ServiceError(refused.message, refused.reason, grpc.StatusCode.UNAVAILABLE)


def _material(seal: seal_pb2.Seal) -> sealing.SealMaterial:
    return sealing.SealMaterial(
        key_name=seal_key_name(seal.certificate.key_id),
        certificate_der=seal.certificate.certificate,
        chain_der=tuple(seal.certificate.chain),
        image_png=seal.image_png,
    )


def _check_request(request: pb.SealDocumentRequest) -> pades.Placement:
    problems: list[FieldViolation] = []
    if not request.seal_id:
        problems.append(FieldViolation("seal_id", "required"))
    if not request.pdf:
        problems.append(FieldViolation("pdf", "required"))
    elif len(request.pdf) > pades.MAX_PDF_BYTES:
        raise invalid_argument(
            f"the PDF has {len(request.pdf)} bytes; at most {pades.MAX_PDF_BYTES} can be sealed",
            FieldViolation("pdf", f"at most {pades.MAX_PDF_BYTES} bytes"),
            reason="PDF_TOO_LARGE",
        )
    if not PURPOSE.fullmatch(request.purpose):
        problems.append(FieldViolation("purpose", "required: a purpose code (a–z 0–9 _)"))
    for field in ("signature_reason", "signature_location"):
        if problem := text_problem(getattr(request, field), MAX_TEXT, required=False):
            problems.append(FieldViolation(field, problem))
    if not request.HasField("placement"):
        problems.append(FieldViolation("placement", "required"))
    elif request.placement.page < 1:
        problems.append(FieldViolation("placement.page", "pages are numbered from 1"))
    require(problems, "the sealing request is invalid")
    p = request.placement
    return pades.Placement(p.page, p.x, p.y, p.width, p.height)


class Sealing:
    def __init__(self, ctx: RegionContext) -> None:
        self._ctx = ctx

    def _stored(self, ledger_index: int) -> tuple[record_pb2.LedgerRecord, bytes]:
        record = self._ctx.entry_record(ledger_index)
        use = record.document_sealed
        returned = use.returned_digest if use.HasField("returned_digest") else use.digest_after
        try:
            pdf = self._ctx.documents().get(returned.value)
        except DocumentStoreError as exc:
            raise ServiceError(str(exc), "DOCUMENT_UNAVAILABLE", grpc.StatusCode.DATA_LOSS) from exc
        return record, pdf

    def _response(self, ledger_index: int) -> pb.SealDocumentResponse:
        record, pdf = self._stored(ledger_index)
        use = record.document_sealed
        return pb.SealDocumentResponse(
            sealed_pdf=pdf,
            digest_before=use.digest_before,
            digest_after=use.digest_after,
            sealed_at=record.recorded_at,
            proof=self._ctx.proof(ledger_index, record.recorded_at),
        )

    def _ltv(self) -> sealing.LtvData | None:
        if self._ctx.ltv is None:
            return None
        try:
            return self._ctx.ltv.material()
        except (OSError, ValidationDataError) as exc:
            raise ServiceError(
                f"the validation data for PAdES B-LT cannot be read: {exc}",
                sealing.VALIDATION_DATA_UNAVAILABLE,
                grpc.StatusCode.UNAVAILABLE,
            ) from exc

    def _usable(self, caller: Caller, seal_id: str, purpose: str) -> seal_pb2.Seal:
        ctx = self._ctx
        seal = seal_or_error(ctx, seal_id)
        if seal.owner_department_code != caller.subject_id:
            raise ServiceError(
                f"seal {seal_id} belongs to department {seal.owner_department_code}",
                "NOT_OWNER",
                grpc.StatusCode.PERMISSION_DENIED,
            )
        if problem := usable_problem(seal, ctx.now()):
            raise problem
        if seal.permitted_purposes and purpose not in seal.permitted_purposes:
            raise ServiceError(
                f"seal {seal_id} may not be used for {purpose!r} "
                f"(permitted: {', '.join(seal.permitted_purposes)})",
                "PURPOSE_NOT_PERMITTED",
                grpc.StatusCode.PERMISSION_DENIED,
            )
        return seal

    def _record(
        self,
        record: record_pb2.LedgerRecord,
        seal: seal_pb2.Seal,
        purpose: str,
        sealed: sealing.Sealed,
        licence_id: str = "",
    ) -> None:
        use = record.document_sealed
        use.seal_id = seal.seal_id
        use.purpose = purpose
        use.digest_before.CopyFrom(
            crypto_pb2.Digest(
                algorithm=crypto_pb2.DIGEST_ALGORITHM_SHA256, value=sealed.digest_before
            )
        )
        use.digest_after.CopyFrom(sha256_digest(sealed.pdf[: sealed.signed_length]))
        if sealed.signed_length < len(sealed.pdf):
            use.returned_digest.CopyFrom(sha256_digest(sealed.pdf))
        use.key_id = seal.certificate.key_id
        use.signature_field = sealed.field_name
        use.licence_id = licence_id
        use.size_after = len(sealed.pdf)

    async def seal_document(
        self, caller: Caller, request: pb.SealDocumentRequest
    ) -> pb.SealDocumentResponse:
        ctx = self._ctx
        check_request_id(request.request_id)
        placement = _check_request(request)
        digest = request_digest(_SERVICE + "SealDocument", request)
        who = actor(caller)
        await ctx.ledger.wait_for_room()
        prior = prior_request(ctx, who, request.request_id, digest)
        if prior is not None:
            await ctx.durable(prior)
            return self._response(prior)
        seal = self._usable(caller, request.seal_id, request.purpose)
        job = sealing.SealJob(
            _material(seal),
            request.pdf,
            placement,
            request.signature_reason,
            request.signature_location,
            self._ltv(),
        )
        sealed = await ctx.pool().seal(job)
        if isinstance(sealed, sealing.Refused):
            _raise_if_unavailable(sealed)
            field = _FIELD_FOR_REASON.get(sealed.reason, "pdf")
            raise invalid_argument(
                sealed.message, FieldViolation(field, sealed.message), reason=sealed.reason
            )
        await ctx.documents().put_async(sealed.pdf)
        await ctx.ledger.wait_for_room()
        # Synchronous from here to submit.
        prior = prior_request(ctx, who, request.request_id, digest)
        if prior is None:
            seal = self._usable(caller, request.seal_id, request.purpose)
            record = new_record(ctx, who, request.request_id, digest)
            self._record(record, seal, request.purpose, sealed)
            prior = await ctx.record(
                record, index.derive(record, ctx.ledger.next_index, ctx.ledger)
            )
        await ctx.durable(prior)
        return self._response(prior)

    async def licence_pdf(
        self,
        caller: Caller,
        licence: lpb.Licence,
        licence_type: registry_pb2.LicenceType,
        qr_payload: str,
        seal: seal_pb2.Seal,
    ) -> tuple[bytes, crypto_pb2.Digest]:
        """The sealed printable PDF of a recorded licence version: made now, or the one
        made before (a retry, or a second request for the same version)."""
        ctx = self._ctx
        existing = seal_index.licence_pdf_entry(ctx.ledger, licence.licence_id)
        if existing is None:
            job = sealing.LicencePdfJob(
                _material(seal),
                licence.SerializeToString(deterministic=True),
                licence_type.SerializeToString(deterministic=True),
                qr_payload,
                ctx.ca.name,
                LICENCE_REASON,
                ctx.ca.name,
                self._ltv(),
            )
            sealed = await ctx.pool().licence(job)
            if isinstance(sealed, sealing.Refused):
                _raise_if_unavailable(sealed)
                # Our own rendering was refused by our own sealer: a bug, not bad input.
                raise ServiceError(
                    f"the licence PDF could not be sealed: {sealed.message}",
                    "LICENCE_PDF_FAILED",
                    grpc.StatusCode.INTERNAL,
                )
            await ctx.documents().put_async(sealed.pdf)
            await ctx.ledger.wait_for_room()
            # Synchronous from here to submit.
            existing = seal_index.licence_pdf_entry(ctx.ledger, licence.licence_id)
            if existing is None:
                record = new_record(ctx, actor(caller), "", b"")
                self._record(record, seal, LICENCE_PURPOSE, sealed, licence.licence_id)
                existing = await ctx.record(
                    record, index.derive(record, ctx.ledger.next_index, ctx.ledger)
                )
        await ctx.durable(existing)
        record, pdf = self._stored(existing)
        return pdf, record.document_sealed.digest_after
