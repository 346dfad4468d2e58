"""PDF licences over gRPC on both cores, beside bare pyHanko signing in one and two processes.

The server is a real `licence-ledger serve` process (its PDF workers fork before it
opens RocksDB, as in production); the client drives it from another process. The
baseline is pyHanko's own PAdES signing of a one-page PDF with a P-256 key and a
chain from a CA, invisible, with the signature space reserved up front (no dry
run): what a bare sealing service would do, with no rendering, seal image, QR
code, ledger or gRPC. Both are measured in the same run.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf.timestamp_pb2 import Timestamp

from bench.rpc import BENCH_DEPARTMENT, _issue_request, _round_trips_per_s, _setup_department
from licenceledger.licence.v1 import licence_service_pb2_grpc as lpb_grpc
from licenceledger.seal.v1 import seal_pb2
from licenceledger.seal.v1 import seal_service_pb2 as sp
from licenceledger.seal.v1 import seal_service_pb2_grpc as sp_grpc
from service.bootstrap import RegionFiles, client_credentials_pem
from service.datadir import DataDir
from signer import sealimage

PDF_IN_FLIGHT = 16
_BENCH_TYPE = "BENCH"


# -- the baseline: bare pyHanko ------------------------------------------------------


def _bare_material() -> tuple[bytes, bytes, bytes]:
    """(signer key PEM, signer cert DER, CA cert DER): a P-256 chain made for the baseline."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Root CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench Seal")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = serialization.Encoding.DER
    return key_pem, cert.public_bytes(der), ca.public_bytes(der)


def _bare_signer(key_pem: bytes, cert_der: bytes, ca_der: bytes, seconds: float) -> int:
    """Runs in its own process: PAdES signatures made in `seconds`."""
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
    document = out.getvalue()
    key = serialization.load_pem_private_key(key_pem, None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    ca = asn1_x509.Certificate.load(ca_der)
    signer = signers.SimpleSigner(
        asn1_x509.Certificate.load(cert_der),
        asn1_keys.PrivateKeyInfo.load(pkcs8),
        SimpleCertificateStore.from_certs([ca]),  # type: ignore[no-untyped-call]
    )
    meta = signers.PdfSignatureMetadata(
        field_name="Sig1", md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES
    )

    def sign() -> None:
        writer = IncrementalPdfFileWriter(io.BytesIO(document))
        signers.PdfSigner(meta, signer).sign_pdf(writer, bytes_reserved=8192)

    for _ in range(5):
        sign()
    count = 0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        sign()
        count += 1
    return count


def bare_pyhanko_per_s(processes: int, seconds: float) -> float:
    """Signatures/s of `processes` bare pyHanko signers running at once."""
    material = _bare_material()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        # Warm every process (imports) before the timed part starts.
        list(pool.map(_bare_signer, *zip(*[(*material, 0.2)] * processes, strict=True)))
        start = time.perf_counter()
        futures = [pool.submit(_bare_signer, *material, seconds) for _ in range(processes)]
        total = sum(f.result() for f in futures)
    return total / (time.perf_counter() - start)


# -- the service -------------------------------------------------------------------


@dataclass
class _ServerProcess:
    data: DataDir
    port: int
    mtls_port: int
    process: subprocess.Popen[str]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def _start_server(data: DataDir) -> _ServerProcess:
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "service.cli", "serve", "--data", str(data.root)),
            *("--port", "0", "--mtls-port", "0", "--log-level", "WARNING"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "licence-ledger serving" in line:
            ports = [int(p.split(",")[0]) for p in line.split(":")[-2:]]
            return _ServerProcess(data, ports[0], ports[1], process)
    raise RuntimeError("the bench server exited before serving")


async def _register_licence_seal(server: _ServerProcess, ca_pem: bytes) -> None:
    admin = client_credentials_pem(server.data, "admin")
    creds = grpc.ssl_channel_credentials(ca_pem, *admin)
    until = Timestamp()
    until.FromDatetime(datetime.now(UTC) + timedelta(days=365))
    async with grpc.aio.secure_channel(f"localhost:{server.mtls_port}", creds) as channel:
        seals: Any = sp_grpc.SealServiceStub(channel)
        await seals.RegisterSeal(
            sp.RegisterSealRequest(
                request_id="bench-seal",
                owner_department_code=BENCH_DEPARTMENT,
                name="基准测试局证照专用章",
                seal_type=seal_pb2.SEAL_TYPE_LICENCE_ISSUING,
                image_png=sealimage.make_dev_seal_png("基准测试局"),
                permitted_licence_type_codes=[_BENCH_TYPE],
                valid_until=until,
            )
        )


def _pdf_client(port: int, ca_pem: bytes, identity: tuple[bytes, bytes], seconds: float) -> float:
    """Runs in a separate process: PDF licences/s with PDF_IN_FLIGHT calls in flight."""

    async def go() -> float:
        creds = grpc.ssl_channel_credentials(ca_pem, *identity)
        async with grpc.aio.secure_channel(f"localhost:{port}", creds) as channel:
            licences: Any = lpb_grpc.LicenceServiceStub(channel)
            counter = iter(range(1 << 62))

            def issue() -> Any:
                request = _issue_request(next(counter))
                request.want_pdf = True
                return licences.IssueLicence(request, timeout=120)

            return await _round_trips_per_s(
                issue, seconds, in_flight=PDF_IN_FLIGHT, warm_up=PDF_IN_FLIGHT
            )

    return asyncio.run(go())


@dataclass(frozen=True)
class PdfIssuance:
    per_s: float
    pdf_bytes: int


def measure_pdf_issuance(scratch: Path, seconds: float) -> PdfIssuance:
    data = DataDir(scratch)
    server = _start_server(data)
    try:
        ca_pem = RegionFiles(data).ca_cert.read_bytes()
        identity = asyncio.run(_setup_department(server.mtls_port, data, ca_pem))
        asyncio.run(_register_licence_seal(server, ca_pem))
        sample = asyncio.run(_one_pdf(server.mtls_port, ca_pem, identity))
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            rate = pool.submit(_pdf_client, server.mtls_port, ca_pem, identity, seconds).result()
    finally:
        server.stop()
    return PdfIssuance(rate, sample)


async def _one_pdf(port: int, ca_pem: bytes, identity: tuple[bytes, bytes]) -> int:
    creds = grpc.ssl_channel_credentials(ca_pem, *identity)
    async with grpc.aio.secure_channel(f"localhost:{port}", creds) as channel:
        licences: Any = lpb_grpc.LicenceServiceStub(channel)
        request = _issue_request(-1)
        request.request_id = "bench-sample"
        request.licence_number = "BENCH-SAMPLE"
        request.want_pdf = True
        reply = await licences.IssueLicence(request, timeout=120)
        return len(reply.credential.pdf)
