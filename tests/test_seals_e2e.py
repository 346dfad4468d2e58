"""End to end over gRPC: seals, sealed documents and PDF licences against a real server.

The server runs as its own process with its PDF worker pool. Every PDF it returns is
checked here with pyHanko's validator against the region root (intact, valid,
trusted, untouched since signing), rendered to pixels with pdfium to prove the seal
and the page actually draw, and matched against its DOCUMENT_SEALED ledger entry.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from typing import Any

import grpc
import pypdfium2
import pytest
import zxingcpp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from google.protobuf.timestamp_pb2 import Timestamp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from ledger import ProofBundle
from ledger.note import Ed25519NoteVerifier
from licenceledger.record.v1 import record_pb2
from licenceledger.seal.v1 import seal_pb2
from licenceledger.seal.v1 import seal_service_pb2 as sp
from licenceledger.type.v1 import ledger_pb2
from service.region.index import reindex
from signer import pki, seal_pki, sealimage
from tests.e2e import (
    DEPT_A,
    FOOD,
    YEAR,
    Region,
    call,
    close_region,
    failure,
    fill,
    issue_request,
    later,
    ledger_size,
    open_region,
    plain_pdf,
    register_seal,
    rid,
)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    opened = open_region(tmp_path_factory, "seals")
    yield opened
    close_region(opened)


@pytest.fixture(scope="module")
def licence_seal(region: Region) -> seal_pb2.Seal:
    reply = register_seal(
        region,
        DEPT_A,
        seal_pb2.SEAL_TYPE_LICENCE_ISSUING,
        permitted_licence_type_codes=[FOOD],
    )
    return reply.seal  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def contract_seal(region: Region) -> seal_pb2.Seal:
    reply = register_seal(
        region,
        DEPT_A,
        seal_pb2.SEAL_TYPE_CONTRACT,
        name="上海市市场监督管理局合同专用章",
        permitted_purposes=["contract"],
    )
    return reply.seal  # type: ignore[no-any-return]


def region_root(region: Region) -> x509.Certificate:
    return pki.load_certificate((region.server.data.root / "pki" / "region-ca.pem").read_bytes())


def validate(region: Region, pdf: bytes) -> list[Any]:
    """pyHanko's status for every signature, trusting only the region root."""
    root = asn1_x509.Certificate.load(region_root(region).public_bytes(Encoding.DER))
    reader = PdfFileReader(io.BytesIO(pdf))
    return [
        validate_pdf_signature(sig, ValidationContext(trust_roots=[root]))
        for sig in reader.embedded_signatures
    ]


def red_pixels(pdf: bytes, page: int, box: tuple[float, float, float, float]) -> int:
    """Strongly red pixels inside `box` (x, y, width, height in points) of a rendered page."""
    document = pypdfium2.PdfDocument(pdf)
    document.init_forms()
    scale = 2
    image = document[page - 1].render(scale=scale, may_draw_forms=True).to_pil().convert("RGB")
    x, y, width, height = box
    height_px = image.height
    crop = image.crop(
        (
            int(x * scale),
            int(height_px - (y + height) * scale),
            int((x + width) * scale),
            int(height_px - y * scale),
        )
    )
    rgb = crop.tobytes()
    return sum(
        1
        for r, g, b in zip(rgb[0::3], rgb[1::3], rgb[2::3], strict=True)
        if r > 180 and g < 90 and b < 90
    )


def check_entry(region: Region, proof: ledger_pb2.ProofBundle) -> record_pb2.LedgerRecord:
    verifier = Ed25519NoteVerifier.from_vkey(region.vkey)
    ProofBundle.from_text(proof.tlog_proof, verifier).verify(proof.entry)
    return record_pb2.LedgerRecord.FromString(proof.entry)


# -- the seal registry -------------------------------------------------------------------


def test_a_registered_seal_is_certified_by_the_region(
    region: Region, licence_seal: seal_pb2.Seal
) -> None:
    assert licence_seal.status == seal_pb2.SEAL_STATUS_ACTIVE
    assert licence_seal.seal_id.startswith("310000")
    assert len(licence_seal.seal_id) == 14
    assert licence_seal.image_digest.value == hashlib.sha256(licence_seal.image_png).digest()
    certificate = x509.load_der_x509_certificate(licence_seal.certificate.certificate)
    scope = seal_pki.check_seal_certificate(
        certificate,
        region_root(region),
        seal_id=licence_seal.seal_id,
        department_code=DEPT_A,
        licence_type_code=FOOD,
    )
    assert scope.seal_type == "SEAL_TYPE_LICENCE_ISSUING"
    # Reads are open: the public port, no client certificate.
    got = call(region, None, "GetSeal", sp.GetSealRequest(seal_id=licence_seal.seal_id))
    assert got.seal == licence_seal


@pytest.mark.parametrize(
    ("change", "code", "reason", "fields_"),
    [
        ({"image_png": b"GIF89a not a png"}, "INVALID_ARGUMENT", "SEAL_IMAGE_NOT_PNG", []),
        ({"permitted_purposes": ["Contract!"]}, "INVALID_ARGUMENT", "FIELD_INVALID", []),
        ({"seal_type": 0}, "INVALID_ARGUMENT", "FIELD_INVALID", ["seal_type"]),
        ({"name": ""}, "INVALID_ARGUMENT", "FIELD_INVALID", ["name"]),
        (
            {"permitted_licence_type_codes": ["JZXK"]},
            "INVALID_ARGUMENT",
            "FIELD_INVALID",
            ["permitted_licence_type_codes[0]"],
        ),
        ({"owner_department_code": "91310000MA1K00001X"}, "NOT_FOUND", "DEPARTMENT_NOT_FOUND", []),
        ({"valid_until": Timestamp(seconds=1)}, "INVALID_ARGUMENT", "VALIDITY_INVALID", []),
    ],
    ids=["not-png", "bad-purpose", "no-type", "no-name", "type-not-issued", "no-dept", "past"],
)
def test_refused_seal_registration_appends_nothing(
    region: Region, change: dict[str, Any], code: str, reason: str, fields_: list[str]
) -> None:
    size = ledger_size(region)
    request = sp.RegisterSealRequest(
        request_id=rid(),
        owner_department_code=DEPT_A,
        name="测试专用章",
        seal_type=seal_pb2.SEAL_TYPE_LICENCE_ISSUING,
        image_png=sealimage.make_dev_seal_png("测试"),
        valid_until=later(YEAR),
    )
    got_code, got_reason, got_fields = failure(
        region, region.admin, "RegisterSeal", fill(request, change)
    )
    assert (got_code.name, got_reason) == (code, reason)
    if fields_:
        assert got_fields == fields_
    assert ledger_size(region) == size


def test_only_admins_register_seals(region: Region) -> None:
    request = sp.RegisterSealRequest(request_id=rid(), owner_department_code=DEPT_A)
    assert failure(region, region.dept_a, "RegisterSeal", request)[0] == (
        grpc.StatusCode.PERMISSION_DENIED
    )


# -- PDF licences ----------------------------------------------------------------------


def test_a_pdf_licence_is_sealed_trusted_and_drawn(
    region: Region, licence_seal: seal_pb2.Seal
) -> None:
    request = issue_request("JY-PDF-1", want_pdf=True)
    reply = call(region, region.dept_a, "IssueLicence", request)
    credential = reply.credential
    pdf = credential.pdf
    assert pdf.startswith(b"%PDF")
    assert credential.pdf_digest.value == hashlib.sha256(pdf).digest()
    (status,) = validate(region, pdf)
    assert (status.bottom_line, status.intact, status.valid, status.trusted) == (True,) * 4
    assert status.modification_level.name == "NONE"
    assert status.coverage.name == "ENTIRE_FILE"
    signer = status.signing_cert.dump()
    assert signer == licence_seal.certificate.certificate
    # The page draws: the QR code reads back as the credential's payload, the seal is red.
    document = pypdfium2.PdfDocument(pdf)
    document.init_forms()
    image = document[0].render(scale=3, may_draw_forms=True).to_pil()
    codes = zxingcpp.read_barcodes(image)
    assert [c.text.encode() for c in codes] == [credential.qr_payload]
    text = document[0].get_textpage().get_text_range()
    assert "上海示例餐饮有限公司" in text
    assert "JY-PDF-1" in text
    # The ledger records the sealing with the digest of exactly this PDF.
    size = ledger_size(region)
    again = call(region, region.dept_a, "IssueLicence", request)
    assert again.credential.pdf == pdf
    assert ledger_size(region) == size


def test_pdf_needs_a_licence_seal_and_records_nothing_without_one(region: Region) -> None:
    size = ledger_size(region)
    got = failure(region, region.dept_b, "IssueLicence", issue_request("JY-PDF-B", want_pdf=True))
    assert got[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "NO_LICENCE_SEAL")
    assert ledger_size(region) == size


# -- sealing documents -------------------------------------------------------------------


def seal_request(seal: seal_pb2.Seal, pdf: bytes = b"", **extra: Any) -> sp.SealDocumentRequest:
    request = sp.SealDocumentRequest(
        request_id=rid(),
        seal_id=seal.seal_id,
        pdf=pdf,
        placement=seal_pb2.SealPlacement(page=2, x=400, y=100, width=119, height=119),
        purpose="contract",
        signature_reason="同意",
        signature_location="上海",
    )
    return fill(request, extra)


def test_sealing_a_document(region: Region, contract_seal: seal_pb2.Seal) -> None:
    original = plain_pdf()
    request = seal_request(contract_seal, original)
    reply = call(region, region.dept_a, "SealDocument", request)
    sealed = reply.sealed_pdf
    assert sealed.startswith(original)  # an incremental update: the original is untouched
    assert reply.digest_before.value == hashlib.sha256(original).digest()
    assert reply.digest_after.value == hashlib.sha256(sealed).digest()
    (status,) = validate(region, sealed)
    assert (status.bottom_line, status.trusted) == (True, True)
    assert status.modification_level.name == "NONE"
    assert red_pixels(sealed, 2, (400, 100, 119, 119)) > 1000
    assert red_pixels(original, 2, (400, 100, 119, 119)) == 0
    record = check_entry(region, reply.proof)
    use = record.document_sealed
    assert (use.seal_id, use.purpose) == (contract_seal.seal_id, "contract")
    assert use.digest_after == reply.digest_after
    assert use.digest_before == reply.digest_before
    assert record.actor == f"department:{DEPT_A}"
    # A retry returns the same sealed bytes and records nothing.
    size = ledger_size(region)
    again = call(region, region.dept_a, "SealDocument", request)
    assert again.sealed_pdf == sealed
    assert again.proof.leaf_index == reply.proof.leaf_index
    assert ledger_size(region) == size
    # A second seal on the sealed document: both signatures stand.
    twice = call(region, region.dept_a, "SealDocument", seal_request(contract_seal, sealed))
    statuses = validate(region, twice.sealed_pdf)
    assert [s.bottom_line for s in statuses] == [True, True]


@pytest.mark.parametrize(
    ("who", "change", "code", "reason"),
    [
        ("dept_b", {}, "PERMISSION_DENIED", "NOT_OWNER"),
        ("dept_a", {"purpose": "invoice"}, "PERMISSION_DENIED", "PURPOSE_NOT_PERMITTED"),
        ("dept_a", {"pdf": b"%PDF-1.7\nnot really"}, "INVALID_ARGUMENT", "PDF_MALFORMED"),
        ("dept_a", {"pdf": b"plain text"}, "INVALID_ARGUMENT", "PDF_MALFORMED"),
        ("dept_a", {"pdf": "encrypted"}, "INVALID_ARGUMENT", "PDF_ENCRYPTED"),
        (
            "dept_a",
            {"placement": seal_pb2.SealPlacement(page=3, x=1, y=1, width=50, height=50)},
            "INVALID_ARGUMENT",
            "PAGE_OUT_OF_RANGE",
        ),
        (
            "dept_a",
            {"placement": seal_pb2.SealPlacement(page=1, x=580, y=1, width=119, height=119)},
            "INVALID_ARGUMENT",
            "PLACEMENT_OUTSIDE_PAGE",
        ),
        ("dept_a", {"seal_id": "NO-SUCH-SEAL"}, "NOT_FOUND", "SEAL_NOT_FOUND"),
    ],
    ids=["foreign", "purpose", "bad-pdf", "not-pdf", "encrypted", "page", "outside", "unknown"],
)
def test_refused_sealing_appends_nothing(
    region: Region,
    contract_seal: seal_pb2.Seal,
    who: str,
    change: dict[str, Any],
    code: str,
    reason: str,
) -> None:
    if change.get("pdf") == "encrypted":
        change = {"pdf": plain_pdf(encrypt="owner-secret")}
    size = ledger_size(region)
    request = seal_request(contract_seal, **{"pdf": plain_pdf(), **change})
    got = failure(region, getattr(region, who), "SealDocument", request)
    assert (got[0].name, got[1]) == (code, reason)
    assert ledger_size(region) == size


def test_suspended_and_revoked_seals_cannot_seal(region: Region) -> None:
    seal = register_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, name="合同专用章二", permitted_purposes=[]
    ).seal
    pdf = plain_pdf(1)
    placement = seal_pb2.SealPlacement(page=1, x=100, y=100, width=100, height=100)

    def use() -> Any:
        return seal_request(seal, pdf, placement=placement, purpose="anything")

    call(
        region,
        region.admin,
        "SuspendSeal",
        sp.SuspendSealRequest(request_id=rid(), seal_id=seal.seal_id, reason="调查中"),
    )
    got = failure(region, region.dept_a, "SealDocument", use())
    assert got[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "SEAL_SUSPENDED")
    call(
        region,
        region.admin,
        "ReinstateSeal",
        sp.ReinstateSealRequest(request_id=rid(), seal_id=seal.seal_id, reason="调查结束"),
    )
    sealed = call(region, region.dept_a, "SealDocument", use())  # empty purposes: any purpose
    revoked = call(
        region,
        region.admin,
        "RevokeSeal",
        sp.RevokeSealRequest(request_id=rid(), seal_id=seal.seal_id, reason="印章遗失"),
    )
    assert revoked.seal.status == seal_pb2.SEAL_STATUS_REVOKED
    assert revoked.seal.invalid_since == check_entry(region, revoked.proof).recorded_at
    got = failure(region, region.dept_a, "SealDocument", use())
    assert got[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "SEAL_REVOKED")
    again = failure(
        region,
        region.admin,
        "RevokeSeal",
        sp.RevokeSealRequest(request_id=rid(), seal_id=seal.seal_id, reason="again"),
    )
    assert again[1] == "SEAL_STATUS_TRANSITION_NOT_ALLOWED"
    # The document sealed before the revocation keeps its ledger entry (proof of time).
    assert check_entry(region, sealed.proof).document_sealed.seal_id == seal.seal_id
    listed = call(
        region,
        None,
        "ListSeals",
        sp.ListSealsRequest(owner_department_code=DEPT_A, status=seal_pb2.SEAL_STATUS_REVOKED),
    )
    assert [s.seal_id for s in listed.seals] == [seal.seal_id]


def test_rebuilt_indexes_equal_the_live_ones(region: Region) -> None:
    # Runs last in the module: it stops the server to take the ledger's writer lock.
    assert region.server.stop() == 0
    report = reindex(region.server.data.ledger_path, check_only=True)
    assert report.differences == 0
