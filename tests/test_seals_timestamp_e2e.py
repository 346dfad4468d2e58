"""End to end: a region with a timestamp authority seals PAdES baseline B-T.

The server runs with `--timestamp-url` pointing at an RFC 3161 TSA on loopback
(`tests.tsa`); every seal then carries a signature timestamp that pyHanko validates.
When the TSA fails, sealing answers UNAVAILABLE and records nothing.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from licenceledger.seal.v1 import seal_pb2
from licenceledger.seal.v1 import seal_service_pb2 as sp
from signer import pki
from tests.e2e import (
    DEPT_A,
    Region,
    call,
    close_region,
    failure,
    ledger_size,
    open_region,
    plain_pdf,
    register_seal,
    rid,
)
from tests.tsa import make_tsa, serve_tsa


@dataclass
class Tsa:
    url: str
    root: x509.Certificate
    stack: ExitStack


def _tsa_root() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test TSA Root")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def tsa() -> Iterator[Tsa]:
    key, root = _tsa_root()
    with ExitStack() as stack:
        url = stack.enter_context(serve_tsa(make_tsa(key, root)))
        yield Tsa(url, root, stack)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory, tsa: Tsa) -> Iterator[Region]:
    opened = open_region(tmp_path_factory, "timestamps", "--timestamp-url", tsa.url)
    yield opened
    close_region(opened)


def _status(region: Region, tsa: Tsa, pdf: bytes) -> object:
    roots = [
        pki.load_certificate((region.server.data.root / "pki" / "region-ca.pem").read_bytes()),
        tsa.root,
    ]
    context = ValidationContext(
        trust_roots=[asn1_x509.Certificate.load(c.public_bytes(Encoding.DER)) for c in roots]
    )
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    return validate_pdf_signature(signature, context)


def _sealing(seal: seal_pb2.Seal) -> sp.SealDocumentRequest:
    return sp.SealDocumentRequest(
        request_id=rid(),
        seal_id=seal.seal_id,
        pdf=plain_pdf(1),
        placement=seal_pb2.SealPlacement(page=1, x=100, y=100, width=119, height=119),
        purpose="contract",
    )


def test_seals_carry_a_trusted_signature_timestamp(region: Region, tsa: Tsa) -> None:
    seal = register_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, name="合同专用章", permitted_purposes=[]
    ).seal
    reply = call(
        region,
        region.dept_a,
        "SealDocument",
        _sealing(seal),
    )
    assert reply.digest_after.value == hashlib.sha256(reply.sealed_pdf).digest()
    status = _status(region, tsa, reply.sealed_pdf)
    assert status.bottom_line  # type: ignore[attr-defined]
    stamp = status.timestamp_validity  # type: ignore[attr-defined]
    assert stamp is not None
    assert (stamp.intact, stamp.valid, stamp.trusted) == (True, True, True)
    sealed_at = reply.sealed_at.ToDatetime(tzinfo=UTC)
    assert abs(stamp.timestamp - sealed_at) < timedelta(minutes=1)


def test_a_failing_timestamp_authority_is_unavailable_and_records_nothing(
    region: Region, tsa: Tsa
) -> None:
    seal = register_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, name="合同专用章三", permitted_purposes=[]
    ).seal
    tsa.stack.close()  # the TSA goes away
    size = ledger_size(region)
    got = failure(
        region,
        region.dept_a,
        "SealDocument",
        _sealing(seal),
    )
    assert got[:2] == (grpc.StatusCode.UNAVAILABLE, "TIMESTAMP_UNAVAILABLE")
    assert ledger_size(region) == size
