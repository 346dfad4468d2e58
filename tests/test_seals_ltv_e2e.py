"""End to end: a region configured for PAdES B-LT seals documents that validate offline.

The server runs with a timestamp authority on loopback, the TSA's root
(`--timestamp-roots`) and a directory with the CRL of the TSA's root
(`--revocation-data`). Every seal then carries, in the document's /DSS, the region
CA's own CRL for the seal certificate and that CRL for the TSA: a validator that
fetches nothing and requires revocation data for every certificate passes it.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.ades.report import AdESPassed

from licenceledger.licence.v1 import licence_service_pb2 as lpb_service
from licenceledger.seal.v1 import seal_pb2
from licenceledger.seal.v1 import seal_service_pb2 as sp
from licenceledger.verification.v1 import report_pb2
from licenceledger.verification.v1 import verification_service_pb2 as vpb
from signer import pki
from tests.e2e import (
    DEPT_A,
    FOOD,
    Region,
    call,
    close_region,
    failure,
    issue_request,
    ledger_size,
    open_region,
    register_seal,
    rid,
)
from tests.test_pades import _validate_offline
from tests.test_seals_timestamp_e2e import _sealing, _tsa_root
from tests.tsa import make_tsa, serve_tsa


@dataclass
class Tsa:
    url: str
    key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    roots_pem: Path
    revocation_dir: Path


def _tsa_root_crl(key: ec.EllipticCurvePrivateKey, root: x509.Certificate) -> bytes:
    now = datetime.now(UTC)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(root.subject)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=1))
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(key, hashes.SHA256())
    )
    return crl.public_bytes(Encoding.PEM)


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    key, root = _tsa_root()
    files = tmp_path_factory.mktemp("tsa")
    roots_pem = files / "tsa-roots.pem"
    roots_pem.write_bytes(root.public_bytes(Encoding.PEM))
    revocation_dir = files / "revocation"
    revocation_dir.mkdir()
    (revocation_dir / "tsa-root.crl").write_bytes(_tsa_root_crl(key, root))
    with ExitStack() as stack:
        url = stack.enter_context(serve_tsa(make_tsa(key, root)))
        yield Tsa(url, key, root, roots_pem, revocation_dir)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory, tsa: Tsa) -> Iterator[Region]:
    opened = open_region(
        tmp_path_factory,
        "ltv",
        "--timestamp-url",
        tsa.url,
        "--timestamp-roots",
        str(tsa.roots_pem),
        "--revocation-data",
        str(tsa.revocation_dir),
    )
    yield opened
    close_region(opened)


def _region_root(region: Region) -> x509.Certificate:
    return pki.load_certificate((region.server.data.root / "pki" / "region-ca.pem").read_bytes())


def _dss_crls(pdf: bytes) -> list[x509.CertificateRevocationList]:
    dss = PdfFileReader(io.BytesIO(pdf)).root["/DSS"]
    return [x509.load_der_x509_crl(c.get_object().data) for c in dss["/CRLs"]]


def _signed_revision(pdf: bytes) -> bytes:
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    _, _, start, length = (int(n) for n in signature.sig_object["/ByteRange"])
    return pdf[: start + length]


def test_seals_are_b_lt_and_validate_from_the_document_alone(region: Region, tsa: Tsa) -> None:
    seal = register_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, name="合同专用章", permitted_purposes=[]
    ).seal
    request = _sealing(seal)
    reply = call(region, region.dept_a, "SealDocument", request)
    pdf = reply.sealed_pdf

    # The /DSS holds the region CA's CRL (for the seal) and the TSA root's CRL.
    root = _region_root(region)
    issuers = {crl.issuer for crl in _dss_crls(pdf)}
    assert issuers == {root.subject, tsa.root.subject}

    # The ledger records the revision the seal signs; the DSS revision follows it.
    signed = _signed_revision(pdf)
    assert len(signed) < len(pdf)
    assert reply.digest_after.value == hashlib.sha256(signed).digest()

    offline = _validate_offline(pdf, root, tsa.root)
    assert offline.ades_subindic == AdESPassed.OK

    # The region's own verification accepts it: the DSS is validation data.
    report = call(region, None, "VerifyPdf", vpb.VerifyPdfRequest(pdf=pdf)).report
    assert report.indication == report_pb2.INDICATION_TOTAL_PASSED

    # A retry returns the same document, validation data and all.
    again = call(region, region.dept_a, "SealDocument", request)
    assert again.sealed_pdf == pdf


def test_licence_pdfs_are_b_lt_too(region: Region, tsa: Tsa) -> None:
    register_seal(
        region,
        DEPT_A,
        seal_pb2.SEAL_TYPE_LICENCE_ISSUING,
        permitted_licence_type_codes=[FOOD],
    )
    request: lpb_service.IssueLicenceRequest = issue_request("JY-LTV-1", want_pdf=True)
    credential = call(region, region.dept_a, "IssueLicence", request).credential
    offline = _validate_offline(credential.pdf, _region_root(region), tsa.root)
    assert offline.ades_subindic == AdESPassed.OK
    signed = _signed_revision(credential.pdf)
    assert credential.pdf_digest.value == hashlib.sha256(signed).digest()


def test_a_revoked_seal_is_on_the_next_crl(region: Region) -> None:
    revoked = register_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, name="合同专用章二", permitted_purposes=[]
    ).seal
    call(
        region,
        region.admin,
        "RevokeSeal",
        sp.RevokeSealRequest(request_id=rid(), seal_id=revoked.seal_id, reason="key compromised"),
    )
    other = register_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, name="合同专用章四", permitted_purposes=[]
    ).seal
    pdf = call(region, region.dept_a, "SealDocument", _sealing(other)).sealed_pdf
    root = _region_root(region)
    (region_crl,) = [crl for crl in _dss_crls(pdf) if crl.issuer == root.subject]
    assert region_crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    serial = x509.load_der_x509_certificate(revoked.certificate.certificate).serial_number
    entry = region_crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    sealing = x509.load_der_x509_certificate(other.certificate.certificate).serial_number
    assert region_crl.get_revoked_certificate_by_serial_number(sealing) is None


@pytest.mark.parametrize("trouble", ["missing", "unreadable"])
def test_unusable_tsa_revocation_data_is_unavailable_and_records_nothing(
    region: Region, tsa: Tsa, trouble: str
) -> None:
    seal = register_seal(
        region,
        DEPT_A,
        seal_pb2.SEAL_TYPE_CONTRACT,
        name=f"合同专用章{trouble}",
        permitted_purposes=[],
    ).seal
    crl_file = tsa.revocation_dir / "tsa-root.crl"
    current = crl_file.read_bytes()
    if trouble == "missing":
        crl_file.unlink()  # the TSA's certificate cannot be vouched for
    else:
        (tsa.revocation_dir / "garbled.ocsp").write_bytes(b"not an OCSP response")
    try:
        size = ledger_size(region)
        got = failure(region, region.dept_a, "SealDocument", _sealing(seal))
        assert got[:2] == (grpc.StatusCode.UNAVAILABLE, "VALIDATION_DATA_UNAVAILABLE")
        assert ledger_size(region) == size
    finally:
        crl_file.write_bytes(current)
        (tsa.revocation_dir / "garbled.ocsp").unlink(missing_ok=True)
