"""`licence-ledger verify`: input kinds, options, exit codes and errors.

The server side is a stand-in VerificationService on TLS in this process, answering
canned reports, so the command is tested whole (TLS, the request it sends, output and
exit code) without depending on the real verification logic.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc_status import rpc_status

from ledger.errors import InvalidRequestError
from licenceledger.licence.v1 import licence_pb2
from licenceledger.type.v1 import ledger_pb2
from licenceledger.verification.v1 import (
    report_pb2,
    verification_service_pb2,
    verification_service_pb2_grpc,
)
from service.bootstrap import unencrypted_pem
from service.cli import main
from service.errors import FieldViolation, invalid_argument, to_rpc_status
from service.verify_cli import InputKind, detect_input, exit_code, parse_time
from signer import pki
from tests.serverproc import free_port

ENVELOPE = (
    b'{"payload": "eyJ4IjoxfQ==", "payloadType": "application/vnd.licence-ledger.licence+json",'
    b' "signatures": [{"keyid": "ab", "sig": "AAAA"}]}'
)


def sample_proof() -> ledger_pb2.ProofBundle:
    proof = ledger_pb2.ProofBundle(leaf_index=3, tree_size=9, audit_path=[b"\x01" * 32])
    proof.checkpoint.origin = "licence-ledger.localhost/310000"
    proof.checkpoint.tree_size = 9
    return proof


# --- input kinds -------------------------------------------------------------------


def test_pdf_is_detected_by_its_header() -> None:
    pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
    found = detect_input(pdf)
    assert found.kind is InputKind.PDF
    assert found.data == pdf


def test_pdf_may_have_bytes_before_its_header() -> None:
    pdf = b"\x00junk from a mail gateway\r\n" * 30 + b"%PDF-1.4\n"
    assert len(pdf) < 1024
    found = detect_input(pdf)
    assert (found.kind, found.data) == (InputKind.PDF, pdf)  # sent untouched
    with pytest.raises(InvalidRequestError, match="not a PDF"):
        detect_input(b"x" * 1024 + b"%PDF-1.4\n")


def test_qr_payload_is_sent_without_surrounding_whitespace() -> None:
    found = detect_input(b"\xef\xbb\xbf  LL1:6BFOXN*TS0BI$ZDFRH%PDF-\r\n")
    assert found.kind is InputKind.QR_CODE  # Base45 can spell %PDF-; the prefix decides
    assert found.data == b"LL1:6BFOXN*TS0BI$ZDFRH%PDF-"


def test_envelope_is_sent_as_read() -> None:
    found = detect_input(ENVELOPE + b"\n")
    assert found.kind is InputKind.ENVELOPE
    assert found.data == ENVELOPE
    assert found.proof is None


def test_credential_json_sends_its_envelope_and_proof() -> None:
    credential = licence_pb2.LicenceCredential(
        envelope=ENVELOPE, qr_payload=b"LL1:ABC", proof=sample_proof()
    )
    credential.licence.licence_id = "1.2.156.3005.2.SPJY.310000.001.X"
    text = json_format.MessageToJson(credential).encode()
    found = detect_input(text)
    assert found.kind is InputKind.CREDENTIAL
    assert found.data == ENVELOPE
    assert found.proof == sample_proof()

    # As grpcurl prints an IssueLicence answer; a newer server's extra fields are ignored.
    wrapped = {"credential": {**json.loads(text), "someFutureField": 1}}
    found = detect_input(json.dumps(wrapped).encode())
    assert (found.kind, found.data, found.proof) == (
        InputKind.CREDENTIAL,
        ENVELOPE,
        sample_proof(),
    )

    bare = json_format.MessageToJson(licence_pb2.LicenceCredential(envelope=ENVELOPE))
    assert detect_input(bare.encode()).proof is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a PDF, a QR payload"),
        (b"hello world\n", "not a PDF, a QR payload"),
        (b"\x89PNG\r\n\x1a\n", "not a PDF, a QR payload"),
        (b"{not json", "not valid JSON"),
        (b'{"licence": {}}', "neither a DSSE envelope"),
        (b'{"envelope": "!!not base64!!"}', "not a licence credential"),
        (b'{"envelope": ""}', "empty envelope"),
    ],
)
def test_unusable_input_is_rejected(data: bytes, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        detect_input(data)


# --- options -----------------------------------------------------------------------


def test_at_is_iso_8601_and_naive_means_utc() -> None:
    assert parse_time("2026-11-21T10:00:00") == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert parse_time("2026-11-21T18:00:00+08:00") == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert parse_time("2026-11-21T10:00:00Z") == datetime(2026, 11, 21, 10, tzinfo=UTC)
    assert parse_time("2026-11-21") == datetime(2026, 11, 21, tzinfo=UTC)
    with pytest.raises(InvalidRequestError, match="ISO 8601"):
        parse_time("yesterday")


def test_exit_codes_follow_the_indication() -> None:
    def code(indication: report_pb2.Indication.ValueType) -> int:
        return exit_code(report_pb2.VerificationReport(indication=indication))

    assert code(report_pb2.INDICATION_TOTAL_PASSED) == 0
    assert code(report_pb2.INDICATION_TOTAL_FAILED) == 1
    assert code(report_pb2.INDICATION_INDETERMINATE) == 3
    assert code(report_pb2.INDICATION_UNSPECIFIED) == 3  # no conclusion is not a pass


# --- the command against a stand-in server -----------------------------------------


@dataclass
class FakeVerification(verification_service_pb2_grpc.VerificationServiceServicer):
    report: report_pb2.VerificationReport = field(default_factory=report_pb2.VerificationReport)
    error: BaseException | None = None
    requests: list[Message] = field(default_factory=list)

    def _answer(self, request: Message, context: grpc.ServicerContext) -> None:
        self.requests.append(request)
        if self.error is not None:
            context.abort_with_status(rpc_status.to_status(to_rpc_status(self.error)))

    def VerifyCredential(
        self,
        request: verification_service_pb2.VerifyCredentialRequest,
        context: grpc.ServicerContext,
    ) -> verification_service_pb2.VerifyCredentialResponse:
        self._answer(request, context)
        return verification_service_pb2.VerifyCredentialResponse(report=self.report)

    def VerifyQrCode(
        self, request: verification_service_pb2.VerifyQrCodeRequest, context: grpc.ServicerContext
    ) -> verification_service_pb2.VerifyQrCodeResponse:
        self._answer(request, context)
        return verification_service_pb2.VerifyQrCodeResponse(report=self.report)

    def VerifyPdf(
        self, request: verification_service_pb2.VerifyPdfRequest, context: grpc.ServicerContext
    ) -> verification_service_pb2.VerifyPdfResponse:
        self._answer(request, context)
        return verification_service_pb2.VerifyPdfResponse(report=self.report)


@dataclass
class Stand:
    service: FakeVerification
    address: str
    ca: Path

    def args(self, file: str, *extra: str) -> list[str]:
        return ["verify", file, "--server", self.address, "--ca", str(self.ca), *extra]


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[Stand]:
    ca = pki.create_region_ca("310000", "Test Region")
    leaf = pki.issue_server_certificate(ca, ["localhost"])
    assert leaf.key is not None
    ca_file = tmp_path / "region-ca.pem"
    ca_file.write_bytes(pki.certificate_pem(ca.certificate))
    service = FakeVerification()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    verification_service_pb2_grpc.add_VerificationServiceServicer_to_server(service, server)
    credentials = grpc.ssl_server_credentials(
        [(unencrypted_pem(leaf.key), leaf.certificate_chain_pem())]
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        # The name the development server certificate carries, as the default uses.
        yield Stand(service, f"localhost:{port}", ca_file)
    finally:
        server.stop(grace=None)


def failed_report() -> report_pb2.VerificationReport:
    return report_pb2.VerificationReport(
        indication=report_pb2.INDICATION_TOTAL_FAILED,
        sub_indication=report_pb2.SUB_INDICATION_REVOKED,
        reason_code="LICENCE_REVOKED",
        checks=[
            report_pb2.Check(
                name="licence.status",
                result=report_pb2.CHECK_RESULT_FAILED,
                reason_code="LICENCE_REVOKED",
                message_zh="证照已被吊销",
                message_en="the licence was revoked",
            )
        ],
    )


def test_pdf_is_verified_and_the_report_printed(
    stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes(b"%PDF-1.7\nbody")
    stand.service.report = report_pb2.VerificationReport(
        indication=report_pb2.INDICATION_TOTAL_PASSED
    )
    args = stand.args(str(pdf), "--holder", "91310000MA1K000001", "--at", "2026-11-21T18:00+08:00")
    assert main(args) == 0
    (request,) = stand.service.requests
    assert isinstance(request, verification_service_pb2.VerifyPdfRequest)
    assert request.pdf == b"%PDF-1.7\nbody"
    assert request.expected_holder_id_number == "91310000MA1K000001"
    assert request.validation_time.ToDatetime(tzinfo=UTC) == datetime(2026, 11, 21, 10, tzinfo=UTC)
    out = capsys.readouterr().out
    assert out == "结论 Conclusion: 通过 TOTAL_PASSED\n"


def test_failed_credential_exits_1_in_the_chosen_language(
    stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    credential = licence_pb2.LicenceCredential(envelope=ENVELOPE, proof=sample_proof())
    file = tmp_path / "credential.json"
    file.write_text(json_format.MessageToJson(credential))
    stand.service.report = failed_report()
    assert main(stand.args(str(file), "--lang", "en")) == 1
    (request,) = stand.service.requests
    assert isinstance(request, verification_service_pb2.VerifyCredentialRequest)
    assert request.envelope == ENVELOPE
    assert request.proof == sample_proof()
    assert not request.HasField("validation_time")  # now, as the server sees it
    assert request.expected_holder_id_number == ""
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "Conclusion: TOTAL_FAILED — LICENCE_REVOKED (the licence was revoked)"
    )
    assert "证照" not in out


def test_qr_from_stdin_indeterminate_as_json(
    stand: Stand, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"LL1:ABC123\n")))
    stand.service.report = report_pb2.VerificationReport(
        indication=report_pb2.INDICATION_INDETERMINATE, reason_code="TRUST_LIST_STALE"
    )
    assert main(stand.args("-", "--json")) == 3
    (request,) = stand.service.requests
    assert isinstance(request, verification_service_pb2.VerifyQrCodeRequest)
    assert request.payload == b"LL1:ABC123"
    out = capsys.readouterr().out
    assert json_format.Parse(out, report_pb2.VerificationReport()) == stand.service.report


def test_rpc_error_exits_2_with_its_status_and_details(
    stand: Stand, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "envelope.json"
    file.write_bytes(ENVELOPE)
    stand.service.error = invalid_argument(
        "the envelope is too large",
        FieldViolation("envelope", "at most 1 MiB"),
        reason="INPUT_TOO_LARGE",
    )
    assert main(stand.args(str(file))) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"error: {stand.address}: INVALID_ARGUMENT: the envelope is too large",
        "  reason: INPUT_TOO_LARGE",
        "  envelope: at most 1 MiB",
    ]


def test_unreachable_server_exits_2_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = tmp_path / "region-ca.pem"
    ca.write_bytes(pki.certificate_pem(pki.create_region_ca("310000", "Test Region").certificate))
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    server = f"127.0.0.1:{free_port()}"  # bound once, then closed: nothing listens
    args = ["verify", str(pdf), "--server", server, "--ca", str(ca), "--timeout", "2"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {server}: UNAVAILABLE: ")
    assert "Traceback" not in captured.err


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (b"hello", [], "error: not a PDF, a QR payload (LL1:…), a DSSE envelope"),
        (b"%PDF-1.7\n", ["--at", "tomorrow"], "error: --at 'tomorrow' is not an ISO 8601 time"),
        (b"%PDF-1.7\n", ["--timeout", "0"], "error: --timeout must be a positive number"),
    ],
)
def test_unusable_requests_exit_2_before_any_call(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    extra: list[str],
    message: str,
) -> None:
    file = tmp_path / "input"
    file.write_bytes(content)
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"unused")
    args = ["verify", str(file), "--server", "127.0.0.1:1", "--ca", str(ca), *extra]
    assert main(args) == 2
    assert capsys.readouterr().err.startswith(message)


def test_missing_file_and_missing_ca_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(tmp_path / "absent.pdf")]) == 2
    assert "cannot read" in capsys.readouterr().err
    pdf = tmp_path / "a.pdf"
    pdf.write_bytes(b"%PDF-1.7\n")
    assert main(["verify", str(pdf), "--data", str(tmp_path / "nodata")]) == 2
    err = capsys.readouterr().err
    assert f"cannot read the region CA certificate {tmp_path / 'nodata'}/pki/region-ca.pem" in err
    assert "--ca" in err
