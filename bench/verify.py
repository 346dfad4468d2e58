"""Verification over gRPC against a real server, beside the raw work it is built on.

Both figures drive a real `licence-ledger serve` process (as `bench.pdf` starts it)
from a client in another process, on the server's public TLS port with no client
certificate, as the public would. The inputs are genuine: licences issued by a
department of the same server just before, verified round-robin. Every reply must be
a TOTAL_PASSED report: the first few are checked in detail before the timed part and
any other conclusion during it fails the figure, so a broken server cannot be fast.

The raw primitives beside them, measured in the same run: signature verification of
the department's algorithm over a message as long as the credentials' signed bytes
(`bench.primitives`), and pyHanko's own validation (`validate_pdf_signature`, chain
to a trusted root included) of a PDF signed by bare pyHanko as in `bench.pdf`'s
baseline, in two processes and in one.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography.hazmat.primitives import serialization

from bench.pdf import (
    PDF_IN_FLIGHT,
    _bare_material,
    _register_licence_seal,
    _ServerProcess,
    _start_server,
)
from bench.rpc import IN_FLIGHT, _issue_request, _round_trips_per_s, _setup_department
from licenceledger.licence.v1 import licence_service_pb2_grpc as lpb_grpc
from licenceledger.type.v1 import crypto_pb2
from licenceledger.verification.v1 import report_pb2 as rp
from licenceledger.verification.v1 import verification_service_pb2 as vpb
from licenceledger.verification.v1 import verification_service_pb2_grpc as vpb_grpc
from service.bootstrap import RegionFiles
from service.datadir import DataDir
from signer import dsse

CREDENTIALS = 200  # genuine licences issued, then verified round-robin
PDFS = 32  # genuine licence PDFs sealed, then verified round-robin
CHECKED = 8  # replies checked in detail before the timed part
_ISSUE_IN_FLIGHT = 64
_PDF_ISSUE_IN_FLIGHT = 8
_TIMEOUT = 120.0


class NotPassedError(RuntimeError):
    """A genuine input did not verify: the server is broken, the figure meaningless."""


def _require_passed(report: rp.VerificationReport, what: str) -> None:
    if report.indication == rp.INDICATION_TOTAL_PASSED:
        return
    failed = [
        f"{c.name}: {c.reason_code or rp.CheckResult.Name(c.result)} ({c.message_en})"
        for c in report.checks
        if c.result != rp.CHECK_RESULT_PASSED
    ]
    raise NotPassedError(
        f"{what} verified {rp.Indication.Name(report.indication)} "
        f"({report.reason_code or 'no reason'}), not TOTAL_PASSED: " + "; ".join(failed)
    )


# -- genuine inputs, issued by the server under test --------------------------------


@dataclass(frozen=True, slots=True)
class _Issued:
    envelopes: list[bytes]
    pdfs: list[bytes]
    algorithms: set[crypto_pb2.SignatureAlgorithm.ValueType]


async def _issue(
    port: int,
    ca_pem: bytes,
    identity: tuple[bytes, bytes],
    count: int,
    *,
    want_pdf: bool,
    in_flight: int,
) -> _Issued:
    """`count` licences issued over mutual TLS, `in_flight` at a time."""
    creds = grpc.ssl_channel_credentials(ca_pem, *identity)
    issued = _Issued([], [], set())
    numbers = iter(range(count))
    async with grpc.aio.secure_channel(f"localhost:{port}", creds) as channel:
        licences: Any = lpb_grpc.LicenceServiceStub(channel)

        async def issuer() -> None:
            for n in numbers:
                request = _issue_request(n)
                request.want_pdf = want_pdf
                reply = await licences.IssueLicence(request, timeout=_TIMEOUT)
                issued.envelopes.append(reply.credential.envelope)
                issued.algorithms.add(reply.credential.signature_algorithm)
                if want_pdf:
                    issued.pdfs.append(reply.credential.pdf)

        await asyncio.gather(*(issuer() for _ in range(in_flight)))
    return issued


async def _check_some(port: int, ca_pem: bytes, kind: str, inputs: Sequence[bytes]) -> None:
    """Verify the first few inputs on the public port; each must be TOTAL_PASSED."""
    async with grpc.aio.secure_channel(
        f"localhost:{port}", grpc.ssl_channel_credentials(ca_pem)
    ) as channel:
        stub: Any = vpb_grpc.VerificationServiceStub(channel)
        for n, data in enumerate(inputs[:CHECKED]):
            if kind == "pdf":
                reply = await stub.VerifyPdf(vpb.VerifyPdfRequest(pdf=data), timeout=_TIMEOUT)
                _require_passed(reply.report, f"genuine licence PDF #{n}")
                if len(reply.report.signatures) != 1:
                    raise NotPassedError(
                        f"genuine licence PDF #{n}: {len(reply.report.signatures)} signature "
                        "reports, expected 1"
                    )
            else:
                reply = await stub.VerifyCredential(
                    vpb.VerifyCredentialRequest(envelope=data), timeout=_TIMEOUT
                )
                _require_passed(reply.report, f"genuine credential #{n}")
            if not reply.report.licence.licence_id:
                raise NotPassedError(f"the report on {kind} #{n} names no licence")


def _verify_client(
    kind: str, port: int, ca_pem: bytes, inputs: list[bytes], seconds: float, in_flight: int
) -> tuple[float, int, int]:
    """Runs in a separate process: (verifications/s, calls made with warm-up, not TOTAL_PASSED)."""

    async def go() -> tuple[float, int, int]:
        creds = grpc.ssl_channel_credentials(ca_pem)  # public port: no client certificate
        async with grpc.aio.secure_channel(f"localhost:{port}", creds) as channel:
            stub: Any = vpb_grpc.VerificationServiceStub(channel)
            requests: list[Any]
            if kind == "pdf":
                method = stub.VerifyPdf
                requests = [vpb.VerifyPdfRequest(pdf=data) for data in inputs]
            else:
                method = stub.VerifyCredential
                requests = [vpb.VerifyCredentialRequest(envelope=data) for data in inputs]
            calls = failures = 0

            async def verify() -> None:
                nonlocal calls, failures
                request = requests[calls % len(requests)]
                calls += 1
                reply = await method(request, timeout=_TIMEOUT)
                if reply.report.indication != rp.INDICATION_TOTAL_PASSED:
                    failures += 1

            warm_up = len(requests) if kind != "pdf" else in_flight
            rate = await _round_trips_per_s(verify, seconds, in_flight=in_flight, warm_up=warm_up)
            return rate, calls, failures

    return asyncio.run(go())


def _rate_from_client(
    kind: str, server: _ServerProcess, ca_pem: bytes, inputs: list[bytes], seconds: float
) -> tuple[float, int]:
    in_flight = PDF_IN_FLIGHT if kind == "pdf" else IN_FLIGHT
    context = multiprocessing.get_context("spawn")  # no forked gRPC state
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(_verify_client, kind, server.port, ca_pem, inputs, seconds, in_flight)
        rate, calls, failures = future.result()
    if failures:
        raise NotPassedError(f"{failures} of {calls} {kind} verifications were not TOTAL_PASSED")
    return rate, calls


# -- credentials --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CredentialVerification:
    per_s: float
    calls: int
    credentials: int
    envelope_bytes: int  # mean
    signed_bytes: int  # mean length of what the signature covers (DSSE PAE)
    algorithm: str  # the department's, e.g. "SIGNATURE_ALGORITHM_ED25519"


def measure_credential_verification(scratch: Path, seconds: float) -> CredentialVerification:
    """VerifyCredential calls/s, 64 in flight, over CREDENTIALS genuine envelopes."""
    data = DataDir(scratch)
    server = _start_server(data)
    try:
        ca_pem = RegionFiles(data).ca_cert.read_bytes()
        identity = asyncio.run(_setup_department(server.mtls_port, data, ca_pem))
        issued = asyncio.run(
            _issue(
                server.mtls_port,
                ca_pem,
                identity,
                CREDENTIALS,
                want_pdf=False,
                in_flight=_ISSUE_IN_FLIGHT,
            )
        )
        asyncio.run(_check_some(server.port, ca_pem, "credential", issued.envelopes))
        rate, calls = _rate_from_client("credential", server, ca_pem, issued.envelopes, seconds)
    finally:
        server.stop()
    if len(issued.algorithms) != 1:
        raise RuntimeError(f"the department signed with several algorithms: {issued.algorithms}")
    parsed = [dsse.parse_envelope(e) for e in issued.envelopes]
    signed = sum(len(dsse.pae(p.payload_type, p.payload)) for p in parsed) // len(parsed)
    return CredentialVerification(
        per_s=rate,
        calls=calls,
        credentials=len(issued.envelopes),
        envelope_bytes=sum(map(len, issued.envelopes)) // len(issued.envelopes),
        signed_bytes=signed,
        algorithm=crypto_pb2.SignatureAlgorithm.Name(issued.algorithms.pop()),
    )


# -- sealed PDFs --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PdfVerification:
    per_s: float
    calls: int
    pdfs: int
    pdf_bytes: int  # mean


def measure_pdf_verification(scratch: Path, seconds: float) -> PdfVerification:
    """VerifyPdf calls/s, 16 in flight, over PDFS genuine sealed licence PDFs."""
    data = DataDir(scratch)
    server = _start_server(data)
    try:
        ca_pem = RegionFiles(data).ca_cert.read_bytes()
        identity = asyncio.run(_setup_department(server.mtls_port, data, ca_pem))
        asyncio.run(_register_licence_seal(server, ca_pem))
        issued = asyncio.run(
            _issue(
                server.mtls_port,
                ca_pem,
                identity,
                PDFS,
                want_pdf=True,
                in_flight=_PDF_ISSUE_IN_FLIGHT,
            )
        )
        asyncio.run(_check_some(server.port, ca_pem, "pdf", issued.pdfs))
        rate, calls = _rate_from_client("pdf", server, ca_pem, issued.pdfs, seconds)
    finally:
        server.stop()
    return PdfVerification(
        per_s=rate,
        calls=calls,
        pdfs=len(issued.pdfs),
        pdf_bytes=sum(map(len, issued.pdfs)) // len(issued.pdfs),
    )


# -- the baseline: bare pyHanko validation ------------------------------------------


def _bare_sealed_pdf(key_pem: bytes, cert_der: bytes, ca_der: bytes) -> bytes:
    """A one-page PDF signed exactly as `bench.pdf`'s bare pyHanko baseline signs it."""
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, invariant=True)
    page.drawString(72, 760, "bench document")
    page.showPage()
    page.save()
    key = serialization.load_pem_private_key(key_pem, None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        asn1_x509.Certificate.load(cert_der),
        asn1_keys.PrivateKeyInfo.load(pkcs8),
        SimpleCertificateStore.from_certs([asn1_x509.Certificate.load(ca_der)]),  # type: ignore[no-untyped-call]
    )
    meta = signers.PdfSignatureMetadata(
        field_name="Sig1", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(out.getvalue()))
    sealed = signers.PdfSigner(meta, signer).sign_pdf(writer, bytes_reserved=8192)
    pdf: bytes = sealed.getvalue()
    return pdf


def _bare_validator(pdf: bytes, ca_der: bytes, seconds: float) -> int:
    """Runs in its own process: full pyHanko validations of `pdf` made in `seconds`.

    Each validation reads the document afresh and validates its one signature with a
    fresh ValidationContext trusting only the root (no cached path), as a verifier
    meeting the document for the first time would. The baseline's certificate has no
    key usage extension (as `bench.pdf` makes it), so no key usage is required.
    """
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.settings import KeyUsageConstraints
    from pyhanko_certvalidator import ValidationContext

    from verifier import _hex_strings

    # Bare pyHanko: this process imported the service, which installs our faster
    # hex-string reader into pyHanko's parser; the baseline runs pyHanko's own.
    generic.read_hex_string_from_stream = _hex_strings._ORIGINAL
    root = asn1_x509.Certificate.load(ca_der)
    any_usage = KeyUsageConstraints(key_usage=set())

    def validate() -> None:
        reader = PdfFileReader(io.BytesIO(pdf), strict=True)
        (embedded,) = reader.embedded_signatures
        status = validate_pdf_signature(
            embedded, ValidationContext(trust_roots=[root]), key_usage_settings=any_usage
        )
        if not status.bottom_line:
            raise NotPassedError(f"bare pyHanko did not validate its own signature: {status}")

    for _ in range(3):
        validate()
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        validate()
        count += 1
    return count


def bare_pyhanko_validations_per_s(processes: int, seconds: float) -> tuple[float, int]:
    """(validations/s of `processes` bare pyHanko validators at once, PDF bytes)."""
    key_pem, cert_der, ca_der = _bare_material()
    pdf = _bare_sealed_pdf(key_pem, cert_der, ca_der)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        # Warm every process (imports) before the timed part starts.
        list(pool.map(_bare_validator, *zip(*[(pdf, ca_der, 0.2)] * processes, strict=True)))
        start = time.perf_counter()
        futures = [pool.submit(_bare_validator, pdf, ca_der, seconds) for _ in range(processes)]
        total = sum(f.result() for f in futures)
    return total / (time.perf_counter() - start), len(pdf)
