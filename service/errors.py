"""Errors as callers see them: a gRPC status code, a message, and google.rpc details.

Servicers raise `ServiceError` subclasses (or let `ledger`, `signer` and `verifier`
errors escape); one translation, `to_rpc_status`, turns any of them into a
`google.rpc.Status` with an `ErrorInfo` whose `reason` is stable (clients branch on
it, never on the message) and, for bad input, a `BadRequest` listing each field
violation. Unexpected exceptions become INTERNAL without their text, so no secret or
internal detail can leak into a response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2  # type: ignore[import-untyped]

from ledger import errors as ledger_errors

ERROR_DOMAIN = "licence-ledger"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass
class ServiceError(Exception):
    """An error meant for the caller: code, stable reason, message and details."""

    message: str
    reason: str
    code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION
    violations: Sequence[FieldViolation] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def invalid_argument(
    message: str, *violations: FieldViolation, reason: str = "INVALID_ARGUMENT"
) -> ServiceError:
    return ServiceError(message, reason, grpc.StatusCode.INVALID_ARGUMENT, violations)


def not_found(message: str, reason: str = "NOT_FOUND") -> ServiceError:
    return ServiceError(message, reason, grpc.StatusCode.NOT_FOUND)


def permission_denied(message: str, reason: str = "PERMISSION_DENIED") -> ServiceError:
    return ServiceError(message, reason, grpc.StatusCode.PERMISSION_DENIED)


def unauthenticated(message: str, reason: str = "UNAUTHENTICATED") -> ServiceError:
    return ServiceError(message, reason, grpc.StatusCode.UNAUTHENTICATED)


def unimplemented(capability: str) -> ServiceError:
    return ServiceError(
        f"{capability} is not available yet in this deployment",
        "CAPABILITY_NOT_YET_AVAILABLE",
        grpc.StatusCode.UNIMPLEMENTED,
        metadata={"capability": capability},
    )


def _from_exception(exc: BaseException) -> ServiceError:
    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, ledger_errors.InvalidRequestError):
        return invalid_argument(str(exc), reason="LEDGER_INVALID_REQUEST")
    if isinstance(exc, ledger_errors.VerificationError):
        return ServiceError(str(exc), "VERIFICATION_FAILED", grpc.StatusCode.FAILED_PRECONDITION)
    if isinstance(exc, ledger_errors.LedgerClosedError):
        return ServiceError(
            "the ledger is not accepting writes", "LEDGER_UNAVAILABLE", grpc.StatusCode.UNAVAILABLE
        )
    if isinstance(exc, ledger_errors.StorageError):
        return ServiceError("ledger storage failed", "LEDGER_STORAGE", grpc.StatusCode.INTERNAL)
    return ServiceError("internal error", "INTERNAL", grpc.StatusCode.INTERNAL)


def to_rpc_status(exc: BaseException) -> status_pb2.Status:
    """The google.rpc.Status a caller receives for `exc`."""
    error = _from_exception(exc)
    details = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=dict(error.metadata)
        )
    ]
    if error.violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.violations
                ]
            )
        )
    packed = []
    for detail in details:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    code: int = error.code.value[0]
    assert code_pb2.Code.Name(code)  # noqa: S101 — every grpc.StatusCode has a google.rpc code
    return status_pb2.Status(code=code, message=error.message, details=packed)
