"""VerificationService over gRPC: translate requests into policies, reports back.

Open to every caller. A verification that concludes "forged" is a successful call;
only unusable requests (empty or oversized input) fail, with INVALID_ARGUMENT.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from licenceledger.verification.v1 import verification_service_pb2 as pb
from licenceledger.verification.v1 import verification_service_pb2_grpc as pb_grpc
from service.errors import FieldViolation, invalid_argument
from service.region.sealing import SealingPool
from verifier.errors import UnusableInputError
from verifier.licence_checks import as_datetime
from verifier.pdf_signatures import MAX_PDF_BYTES, PdfFindings, inspect_signatures
from verifier.policy import VerificationPolicy
from verifier.verifier import MAX_CREDENTIAL_BYTES, Verifier

Context = grpc.aio.ServicerContext[Any, Any]
MAX_HOLDER_ID = 64


def _input(field: str, data: bytes, limit: int) -> bytes:
    if not data:
        raise invalid_argument(f"{field} is empty", FieldViolation(field, "required"))
    if len(data) > limit:
        raise invalid_argument(
            f"{field} exceeds {limit} bytes", FieldViolation(field, f"at most {limit} bytes")
        )
    return data


def _policy(
    request: pb.VerifyCredentialRequest | pb.VerifyQrCodeRequest | pb.VerifyPdfRequest,
) -> VerificationPolicy:
    holder = request.expected_holder_id_number
    if len(holder) > MAX_HOLDER_ID:
        raise invalid_argument(
            "expected_holder_id_number is too long",
            FieldViolation("expected_holder_id_number", f"at most {MAX_HOLDER_ID} characters"),
        )
    try:
        at = as_datetime(request.validation_time) if request.HasField("validation_time") else None
    except (ValueError, OverflowError) as exc:
        raise invalid_argument(
            "validation_time is out of range", FieldViolation("validation_time", str(exc))
        ) from exc
    return VerificationPolicy(validation_time=at, expected_holder_id_number=holder)


class VerificationServicer(pb_grpc.VerificationServiceServicer):
    def __init__(self, verifier: Verifier, pool: SealingPool | None) -> None:
        self._verifier = verifier
        self._pool = pool

    async def VerifyCredential(
        self, request: pb.VerifyCredentialRequest, context: Context
    ) -> pb.VerifyCredentialResponse:
        envelope = _input("envelope", request.envelope, MAX_CREDENTIAL_BYTES)
        policy = _policy(request)
        return pb.VerifyCredentialResponse(
            report=self._verifier.verify_credential(envelope, policy)
        )

    async def VerifyQrCode(
        self, request: pb.VerifyQrCodeRequest, context: Context
    ) -> pb.VerifyQrCodeResponse:
        payload = _input("payload", request.payload, MAX_CREDENTIAL_BYTES)
        policy = _policy(request)
        return pb.VerifyQrCodeResponse(report=self._verifier.verify_qr_code(payload, policy))

    async def VerifyPdf(
        self, request: pb.VerifyPdfRequest, context: Context
    ) -> pb.VerifyPdfResponse:
        data = _input("pdf", request.pdf, MAX_PDF_BYTES)
        policy = _policy(request)
        findings = await self._inspect(data)
        return pb.VerifyPdfResponse(report=self._verifier.judge_pdf(findings, policy))

    async def _inspect(self, data: bytes) -> PdfFindings:
        try:
            if self._pool is not None:
                return await self._pool.inspect(data)
            return await asyncio.to_thread(inspect_signatures, data)
        except UnusableInputError as exc:
            raise invalid_argument(str(exc), FieldViolation("pdf", str(exc))) from exc
