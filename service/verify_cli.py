"""`licence-ledger verify FILE`: have a region's server verify what someone holds.

The file can be a licence or sealed PDF, a scanned QR payload, a DSSE envelope or a
licence credential in protobuf JSON; its kind is read from its bytes, not its name,
because files people are handed rarely keep a meaningful one. Verification is public:
the command talks to the server's TLS port without a client certificate.

Exit codes: 0 TOTAL_PASSED, 1 TOTAL_FAILED, 3 INDETERMINATE, 2 the file or the call
was unusable (bad input, server unreachable, RPC error).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import grpc
from google.protobuf import any_pb2, json_format
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status

from ledger.errors import InvalidRequestError
from licenceledger.licence.v1 import licence_pb2
from licenceledger.type.v1 import ledger_pb2
from licenceledger.verification.v1 import (
    report_pb2,
    verification_service_pb2,
    verification_service_pb2_grpc,
)
from service.bootstrap import RegionFiles
from service.config import ServerSettings
from service.datadir import DataDir
from signer.qr import QR_PREFIX
from verifier.render import Language, render_report, report_json

DEFAULT_SERVER = f"localhost:{ServerSettings.port}"
DEFAULT_TIMEOUT_SECONDS = 30.0

_PDF_MAGIC = b"%PDF-"
# Mail and download tools sometimes prepend bytes to a PDF; readers, following
# Acrobat, still open it if the header starts within the first 1024 bytes.
_PDF_HEADER_WINDOW = 1024
_BOM = b"\xef\xbb\xbf"
# A report carries seal images and certificates; gRPC's 4 MiB default could refuse
# a report for a PDF with several seals. Matches the server's default limit.
_MAX_RESPONSE_BYTES = ServerSettings.max_message_bytes

_EXIT_CODES = {
    report_pb2.INDICATION_TOTAL_PASSED: 0,
    report_pb2.INDICATION_TOTAL_FAILED: 1,
}
EXIT_INDETERMINATE = 3
EXIT_UNUSABLE = 2


class InputKind(StrEnum):
    PDF = "pdf"
    QR_CODE = "qr"
    ENVELOPE = "envelope"
    CREDENTIAL = "credential"


@dataclass(frozen=True)
class VerifyInput:
    """What to send: PDF bytes, QR payload or envelope, and a credential's proof."""

    kind: InputKind
    data: bytes
    proof: ledger_pb2.ProofBundle | None = None


@dataclass(frozen=True)
class VerifyOptions:
    file: str  # "-" reads stdin
    server: str = DEFAULT_SERVER
    ca: Path | None = None  # None: the region CA of `data_dir`
    data_dir: Path = ServerSettings.data_dir
    holder: str = ""
    at: str | None = None  # ISO 8601
    language: Language = "both"
    as_json: bool = False
    timeout: float = DEFAULT_TIMEOUT_SECONDS


def detect_input(data: bytes) -> VerifyInput:
    """Tell a PDF, a QR payload, an envelope and a credential JSON apart by their bytes."""
    text = data.removeprefix(_BOM).strip()
    # Strict prefixes first: Base45 can spell "%PDF-", so a QR payload could contain it.
    if text.startswith(_PDF_MAGIC):
        return VerifyInput(InputKind.PDF, data)
    if text.startswith(QR_PREFIX.encode()):
        return VerifyInput(InputKind.QR_CODE, text)
    if text.startswith(b"{"):
        return _detect_json(text)
    if _PDF_MAGIC in data[: _PDF_HEADER_WINDOW + len(_PDF_MAGIC) - 1]:
        return VerifyInput(InputKind.PDF, data)
    raise InvalidRequestError(
        "not a PDF, a QR payload (LL1:…), a DSSE envelope or a licence credential JSON"
    )


def _detect_json(text: bytes) -> VerifyInput:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequestError(
            f"the file starts with '{{' but is not valid JSON: {exc}"
        ) from exc
    if not isinstance(document, dict):
        raise InvalidRequestError("the JSON is not an object")
    if "payloadType" in document:
        # Sent as read (less a BOM and surrounding whitespace, which JSON does not
        # count): the server is the one to judge the envelope, malformed or not.
        return VerifyInput(InputKind.ENVELOPE, text)
    # grpcurl prints IssueLicence/GetLicence answers with the credential one level down.
    if "envelope" not in document and isinstance(document.get("credential"), dict):
        document = document["credential"]
    if "envelope" not in document:
        raise InvalidRequestError(
            "the JSON is neither a DSSE envelope (payloadType) nor a licence credential (envelope)"
        )
    credential = licence_pb2.LicenceCredential()
    try:
        # Fields a newer server added do not stop an older client from verifying.
        json_format.ParseDict(document, credential, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise InvalidRequestError(f"not a licence credential: {exc}") from exc
    if not credential.envelope:
        raise InvalidRequestError("the licence credential has an empty envelope")
    proof = credential.proof if credential.HasField("proof") else None
    return VerifyInput(InputKind.CREDENTIAL, credential.envelope, proof)


def parse_time(text: str) -> datetime:
    """ISO 8601; a time without a zone is taken as UTC."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidRequestError(f"--at {text!r} is not an ISO 8601 time") from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def exit_code(report: report_pb2.VerificationReport) -> int:
    return _EXIT_CODES.get(report.indication, EXIT_INDETERMINATE)


def _read(file: str) -> bytes:
    if file == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(file).read_bytes()
    except OSError as exc:
        raise InvalidRequestError(f"cannot read {file}: {exc.strerror or exc}") from exc


def _root_certificates(options: VerifyOptions) -> bytes:
    path = options.ca or RegionFiles(DataDir(options.data_dir)).ca_cert
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidRequestError(
            f"cannot read the region CA certificate {path}: {exc.strerror or exc} "
            "(give --ca, or --data for the server's data directory)"
        ) from exc


def _call(
    stub: verification_service_pb2_grpc.VerificationServiceStub,
    request: VerifyInput,
    options: VerifyOptions,
    at: Timestamp | None,
) -> report_pb2.VerificationReport:
    holder, timeout = options.holder, options.timeout
    if request.kind is InputKind.PDF:
        pdf = verification_service_pb2.VerifyPdfRequest(
            pdf=request.data, expected_holder_id_number=holder, validation_time=at
        )
        return stub.VerifyPdf(pdf, timeout=timeout).report
    if request.kind is InputKind.QR_CODE:
        qr = verification_service_pb2.VerifyQrCodeRequest(
            payload=request.data, expected_holder_id_number=holder, validation_time=at
        )
        return stub.VerifyQrCode(qr, timeout=timeout).report
    credential = verification_service_pb2.VerifyCredentialRequest(
        envelope=request.data,
        proof=request.proof,
        expected_holder_id_number=holder,
        validation_time=at,
    )
    return stub.VerifyCredential(credential, timeout=timeout).report


def describe_rpc_error(error: grpc.RpcError, server: str) -> str:
    """Readable lines: status code, message, and the google.rpc details."""
    if not isinstance(error, grpc.Call):  # every error of a unary call is one
        return f"error: {server}: {error}"
    code = error.code()
    lines = [f"error: {server}: {code.name}: {error.details() or 'no details'}"]
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        status = None  # details that contradict the status code: show the code alone
    details: list[any_pb2.Any] = list(status.details) if status is not None else []
    for detail in details:
        info = error_details_pb2.ErrorInfo()
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(info):
            lines.append(f"  reason: {info.reason}")
        elif detail.Unpack(bad):
            lines.extend(f"  {v.field}: {v.description}" for v in bad.field_violations)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        lines.append(f"  is the server running at {server}, and is --ca its region CA?")
    return "\n".join(lines)


def verify(options: VerifyOptions) -> int:
    """Verify `options.file` on the server, print the report; the exit code."""
    if not options.timeout > 0:
        raise InvalidRequestError("--timeout must be a positive number of seconds")
    at: Timestamp | None = None
    if options.at is not None:
        at = Timestamp()
        at.FromDatetime(parse_time(options.at))
    request = detect_input(_read(options.file))
    credentials = grpc.ssl_channel_credentials(root_certificates=_root_certificates(options))
    channel_options = [("grpc.max_receive_message_length", _MAX_RESPONSE_BYTES)]
    try:
        with grpc.secure_channel(options.server, credentials, channel_options) as channel:
            stub = verification_service_pb2_grpc.VerificationServiceStub(channel)
            report = _call(stub, request, options, at)
    except grpc.RpcError as error:
        print(describe_rpc_error(error, options.server), file=sys.stderr)
        return EXIT_UNUSABLE
    if options.as_json:
        print(report_json(report))
    else:
        print(render_report(report, language=options.language), end="")
    return exit_code(report)
