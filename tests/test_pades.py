"""PDF sealing with real keys, certificates, PDFs and renderers: pyHanko validates,
pdfium draws, and hostile input comes back as `PdfRejectedError` and nothing else."""

from __future__ import annotations

import asyncio
import io
import math
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import pypdfium2 as pdfium
import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from pyhanko.pdf_utils.generic import DictionaryObject
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.ades.report import AdESIndeterminate, AdESPassed
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import DummyTimeStamper, TimeStamper, TimestampRequestError
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.ades import ades_with_time_validation
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.errors import InsufficientRevinfoError, PathBuildingError, RevokedError
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleCertificateStore, SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer
from reportlab.lib import pdfencrypt
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from signer.pades import (
    MAX_PDF_BYTES,
    LtvMaterial,
    PdfInfo,
    PdfRejectedError,
    PdfSealer,
    Placement,
    SealIdentity,
    check_placement,
    http_timestamper,
    inspect_pdf,
)
from tests.tsa import make_tsa, serve_tsa

NOW = datetime.now(UTC)
BOX = Placement(page=1, x=380.5, y=90.25, width=120, height=120)
SIGNING_TIME = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


@dataclass(frozen=True)
class Ca:
    key: PrivateKey
    cert: x509.Certificate

    @property
    def trust(self) -> ValidationContext:
        der = self.cert.public_bytes(serialization.Encoding.DER)
        return ValidationContext(trust_roots=[asn1_x509.Certificate.load(der)])


def _name(common_name: str) -> x509.Name:
    country = x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")
    return x509.Name([country, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _certify(
    issuer: Ca | None, key: PrivateKey, subject: x509.Name, *, ca: bool, extra: int = 0
) -> x509.Certificate:
    signing_key, issuer_name = (
        (key, subject) if issuer is None else (issuer.key, issuer.cert.subject)
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=1 if ca else None), critical=True)
        .add_extension(_usage(ca=ca), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
        builder = builder.add_extension(aki, critical=False)
    if extra:  # what a production seal certificate carries, for a realistic size
        uri = x509.UniformResourceIdentifier
        crl = x509.DistributionPoint([uri("http://crl.example.gov.cn/seal.crl")], None, None, None)
        ocsp = x509.AccessDescription(x509.OID_OCSP, uri("http://ocsp.example.gov.cn"))
        names = x509.SubjectAlternativeName([uri(f"urn:seal:{i:04d}") for i in range(extra)])
        builder = builder.add_extension(x509.CRLDistributionPoints([crl]), critical=False)
        builder = builder.add_extension(x509.AuthorityInformationAccess([ocsp]), critical=False)
        builder = builder.add_extension(names, critical=False)
    sign_hash = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, sign_hash)


def _root(key: PrivateKey, name: str) -> Ca:
    return Ca(key, _certify(None, key, _name(name), ca=True))


def _identity(issuer: Ca, key: PrivateKey, png: bytes, chain: tuple[Ca, ...] = ()) -> SealIdentity:
    assert isinstance(key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey)
    cert = _certify(issuer, key, _name("上海市测试局电子印章"), ca=False, extra=len(chain) * 8)
    return SealIdentity(key, cert, tuple(ca.cert for ca in (issuer, *chain)), png)


def _seal_png(size: int = 480, background: tuple[int, ...] = (0, 0, 0, 0)) -> bytes:
    image = Image.new("RGBA", (size, size), background)
    ImageDraw.Draw(image).ellipse(
        (20, 20, size - 20, size - 20), outline=(220, 0, 0, 255), width=28
    )
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _pdf(pages: int = 2, **options: object) -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, pageCompression=0, **options)  # type: ignore[arg-type]
    for n in range(1, pages + 1):
        page.drawString(72, 720, f"Page {n}")
        page.showPage()
    page.save()
    return out.getvalue()


@pytest.fixture(scope="module")
def root() -> Ca:
    return _root(ec.generate_private_key(ec.SECP256R1()), "测试区域根证书")


@pytest.fixture(scope="module")
def png() -> bytes:
    return _seal_png()


@pytest.fixture(scope="module", params=["p256", "ed25519"])
def identity(request: pytest.FixtureRequest, root: Ca, png: bytes) -> SealIdentity:
    key: PrivateKey = (
        ec.generate_private_key(ec.SECP256R1())
        if request.param == "p256"
        else ed25519.Ed25519PrivateKey.generate()
    )
    return _identity(root, key, png)


@pytest.fixture(scope="module")
def sealer(root: Ca, png: bytes) -> PdfSealer:
    return PdfSealer(_identity(root, ec.generate_private_key(ec.SECP256R1()), png))


@pytest.fixture(scope="module")
def plain() -> bytes:
    return _pdf()


def _signatures(pdf: bytes) -> Iterator[tuple[EmbeddedPdfSignature, DictionaryObject]]:
    for signature in PdfFileReader(io.BytesIO(pdf)).embedded_signatures:
        yield signature, signature.sig_object


def _status(pdf: bytes, trust: ValidationContext, index: int = 0) -> PdfSignatureStatus:
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[index]
    return validate_pdf_signature(signature, trust)


def _red_pixels(pdf: bytes, box: Placement) -> int:
    doc = pdfium.PdfDocument(pdf)
    try:
        doc.init_forms()  # pdfium draws widget appearances only with forms initialised
        page = doc[box.page - 1]
        height = page.get_height()
        image = page.render(scale=2, may_draw_forms=True).to_pil().convert("RGB")
        top = height - box.y - box.height
        area = image.crop((2 * box.x, 2 * top, 2 * (box.x + box.width), 2 * (top + box.height)))
        rgb = area.tobytes()
        return sum(
            1 for i in range(0, len(rgb), 3) if rgb[i] > 150 and max(rgb[i + 1 : i + 3]) < 90
        )
    finally:
        doc.close()


@pytest.mark.parametrize("nth", [1, 3], ids=["pyhanko-made", "from-template"])
def test_seal_validates_as_trusted_pades(
    identity: SealIdentity, root: Ca, plain: bytes, nth: int
) -> None:
    # A sealer's first container is pyHanko's; later ones refill its template.
    sealer = PdfSealer(identity)
    for _ in range(nth):
        sealed = sealer.seal(
            plain, BOX, reason="核发电子证照", location="上海市", signing_time=SIGNING_TIME
        )
    status = _status(sealed, root.trust)
    assert (status.intact, status.valid, status.trusted, status.bottom_line) == (True,) * 4
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.modification_level == ModificationLevel.NONE
    der = identity.certificate.public_bytes(serialization.Encoding.DER)
    assert status.signing_cert.dump() == der
    ed = isinstance(identity.private_key, ed25519.Ed25519PrivateKey)
    assert status.md_algorithm == ("sha512" if ed else "sha256")
    [(_, sig)] = _signatures(sealed)
    assert sig["/SubFilter"] == "/ETSI.CAdES.detached"
    assert sig["/Reason"] == "核发电子证照"
    assert sig["/Location"] == "上海市"
    assert sig["/Name"] == "上海市测试局电子印章"
    assert sig["/M"] == "D:20250301083000Z"


def test_other_root_does_not_trust_the_seal(sealer: PdfSealer, plain: bytes) -> None:
    other = _root(ec.generate_private_key(ec.SECP256R1()), "另一个根证书")
    status = _status(sealer.seal(plain, BOX), other.trust)
    assert (status.intact, status.valid) == (True, True)
    assert (status.trusted, status.bottom_line) == (False, False)


def test_original_bytes_are_a_prefix(sealer: PdfSealer, plain: bytes) -> None:
    assert sealer.seal(plain, BOX).startswith(plain)


def test_second_seal_keeps_the_first_valid(sealer: PdfSealer, root: Ca, plain: bytes) -> None:
    once = sealer.seal(plain, BOX)
    twice = sealer.seal(once, Placement(2, 50, 50, 100, 100))
    assert twice.startswith(once)
    assert inspect_pdf(twice).signature_count == 2
    first, second = _status(twice, root.trust, 0), _status(twice, root.trust, 1)
    assert (first.bottom_line, second.bottom_line) == (True, True)
    assert first.modification_level <= ModificationLevel.FORM_FILLING
    assert [s.field_name for s, _ in _signatures(twice)] == ["Seal1", "Seal2"]


@pytest.mark.parametrize("page", [1, 2])
def test_the_seal_is_drawn(sealer: PdfSealer, plain: bytes, page: int) -> None:
    box = Placement(page, BOX.x, BOX.y, BOX.width, BOX.height)
    assert _red_pixels(plain, box) == 0
    assert _red_pixels(sealer.seal(plain, box), box) > 2000  # a ring of ~0.1 of the box


def test_an_opaque_seal_image_is_drawn(root: Ca, plain: bytes) -> None:
    png = _seal_png(200, background=(255, 255, 255, 255))  # a scan on white
    opaque = PdfSealer(_identity(root, ec.generate_private_key(ec.SECP256R1()), png))
    assert _red_pixels(opaque.seal(plain, BOX), BOX) > 2000


def test_placement_is_relative_to_the_crop_box(sealer: PdfSealer) -> None:
    cropped = _pdf(1, cropBox=(100, 200, 400, 600))
    info = inspect_pdf(cropped)
    assert info.page_sizes == ((300.0, 400.0),)
    sealed = sealer.seal(cropped, Placement(1, 10, 20, 50, 60))
    [(signature, _)] = _signatures(sealed)
    rect = [float(v) for v in signature.sig_field["/Rect"]]
    assert rect == [110, 220, 160, 280]


def test_inspect_reports_pages_and_signatures(sealer: PdfSealer, plain: bytes) -> None:
    a4 = (595.2756, 841.8898)  # as reportlab writes the MediaBox
    assert inspect_pdf(plain) == PdfInfo(2, (a4, a4), 0)
    assert inspect_pdf(sealer.seal(plain, BOX)).signature_count == 1


@pytest.mark.parametrize(
    ("placement", "reason"),
    [
        (Placement(3, 10, 10, 50, 50), "PAGE_OUT_OF_RANGE"),
        (Placement(0, 10, 10, 50, 50), "PAGE_OUT_OF_RANGE"),
        (Placement(1, 550, 10, 50, 50), "PLACEMENT_OUTSIDE_PAGE"),
        (Placement(1, 10, -1, 50, 50), "PLACEMENT_OUTSIDE_PAGE"),
        (Placement(1, 10, 800, 50, 50), "PLACEMENT_OUTSIDE_PAGE"),
        (Placement(1, 10, 10, 0, 50), "PLACEMENT_INVALID"),
        (Placement(1, 10, 10, 50, -5), "PLACEMENT_INVALID"),
        (Placement(1, math.nan, 10, 50, 50), "PLACEMENT_INVALID"),
        (Placement(1, 10, 10, math.nan, 50), "PLACEMENT_INVALID"),
        (Placement(1, 10, 10, 50, math.inf), "PLACEMENT_INVALID"),
    ],
)
def test_bad_placements_are_refused(
    sealer: PdfSealer, plain: bytes, placement: Placement, reason: str
) -> None:
    with pytest.raises(PdfRejectedError) as refused:
        check_placement(inspect_pdf(plain), placement)
    assert refused.value.reason == reason
    with pytest.raises(PdfRejectedError) as refused:
        sealer.seal(plain, placement)
    assert refused.value.reason == reason


def test_placement_tolerates_half_a_point(plain: bytes) -> None:
    width, height = inspect_pdf(plain).page_sizes[0]
    check_placement(inspect_pdf(plain), Placement(1, -0.4, -0.4, width + 0.8, height + 0.8))


def _certified_no_changes(identity: SealIdentity, pdf: bytes) -> bytes:
    def der(cert: x509.Certificate) -> asn1_x509.Certificate:
        return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    key = identity.private_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = signers.SimpleSigner(
        signing_cert=der(identity.certificate),
        signing_key=asn1_keys.PrivateKeyInfo.load(key),
        cert_registry=SimpleCertificateStore.from_certs([der(c) for c in identity.chain]),  # type: ignore[no-untyped-call]
    )
    meta = signers.PdfSignatureMetadata(
        field_name="Author", certify=True, docmdp_permissions=fields.MDPPerm.NO_CHANGES
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    return bytes(signers.PdfSigner(meta, signer).sign_pdf(writer).getbuffer())


_PDF = _pdf()
_ENCRYPTED = _pdf(encrypt="secret")
_EMPTY_PASSWORD = _pdf(encrypt=pdfencrypt.StandardEncryption("", ownerPassword="owner"))


@pytest.mark.parametrize(
    ("pdf", "reason"),
    [
        (b"", "PDF_MALFORMED"),
        (b"this is not a PDF at all", "PDF_MALFORMED"),
        (_PDF[: len(_PDF) // 2], "PDF_MALFORMED"),
        (b"%PDF-1.7\n" + bytes(range(256)) * 8 + b"\n%%EOF\n", "PDF_MALFORMED"),
        (b"%PDF-1.7\n" + bytes(MAX_PDF_BYTES), "PDF_TOO_LARGE"),
        (_ENCRYPTED, "PDF_ENCRYPTED"),
        (_EMPTY_PASSWORD, "PDF_ENCRYPTED"),
    ],
    ids=["empty", "not-pdf", "truncated", "garbage", "too-large", "encrypted", "empty-password"],
)
def test_unusable_pdfs_are_refused(sealer: PdfSealer, pdf: bytes, reason: str) -> None:
    with pytest.raises(PdfRejectedError) as refused:
        inspect_pdf(pdf)
    assert refused.value.reason == reason
    with pytest.raises(PdfRejectedError) as refused:
        sealer.seal(pdf, BOX)
    assert refused.value.reason == reason


def test_a_pdf_certified_against_changes_is_refused(
    sealer: PdfSealer, root: Ca, png: bytes, plain: bytes
) -> None:
    author = _identity(root, ec.generate_private_key(ec.SECP256R1()), png)
    with pytest.raises(PdfRejectedError) as refused:
        sealer.seal(_certified_no_changes(author, plain), BOX)
    assert refused.value.reason == "PDF_LOCKED"


def _raw_pdf(pages: bytes, page: bytes, catalog: bytes = b"") -> bytes:
    """A one-page PDF written by hand, for page trees no library would write."""
    objects = (b"<< /Type /Catalog /Pages 2 0 R %s>>" % catalog, pages, page)
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for n, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (n, body)
    xref = len(out)
    out += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


_PAGES = b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>"
_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 300] >>"


def test_a_minimal_hand_written_pdf_is_sealed(sealer: PdfSealer, root: Ca) -> None:
    inherited = _raw_pdf(
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /MediaBox [0 0 200 300] >>",
        b"<< /Type /Page /Parent 2 0 R >>",
    )
    for pdf in (_raw_pdf(_PAGES, _PAGE), inherited):
        assert inspect_pdf(pdf) == PdfInfo(1, ((200.0, 300.0),), 0)
        assert _status(sealer.seal(pdf, Placement(1, 40, 90, 120, 120)), root.trust).bottom_line


@pytest.mark.parametrize(
    ("pages", "page"),
    [
        (b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>", _PAGE),  # a cycle
        (b"<< /Type /Pages /Kids [3 0 R 3 0 R] /Count 2 >>", _PAGE),  # one page twice
        (b"<< /Type /Pages /Kids [3 0 R] /Count 2 >>", _PAGE),  # /Count lies
        (b"<< /Type /Pages /Kids [3 0 R] >>", _PAGE),
        (b"<< /Type /Pages /Kids 3 0 R /Count 1 >>", _PAGE),
        (b"<< /Type /Pages /Kids [<< /Type /Page >>] /Count 1 >>", _PAGE),
        (_PAGES, b"<< /Type /Page /Parent 2 0 R >>"),  # no MediaBox
        (_PAGES, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200] >>"),
        (_PAGES, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 (a) 300] >>"),
        (_PAGES, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 0 300] >>"),
        (_PAGES, b"<< /Type /Font /Parent 2 0 R /MediaBox [0 0 200 300] >>"),
        (_PAGES, b"<< /Type /Page /MediaBox [0 0 200 300] /CropBox [300 0 400 300] >>"),
    ],
)
def test_broken_page_trees_are_refused(sealer: PdfSealer, pages: bytes, page: bytes) -> None:
    with pytest.raises(PdfRejectedError) as refused:
        sealer.seal(_raw_pdf(pages, page), Placement(1, 10, 10, 20, 20))
    assert refused.value.reason == "PDF_MALFORMED"


def test_too_many_pages_are_refused() -> None:
    with pytest.raises(PdfRejectedError) as refused:
        inspect_pdf(_pdf(2001))
    assert refused.value.reason == "PDF_TOO_MANY_PAGES"


def test_field_names(sealer: PdfSealer) -> None:
    out = io.BytesIO()
    form = canvas.Canvas(out, pagesize=A4)
    form.acroForm.textfield(name="Seal1", x=72, y=600, width=200, height=20)
    form.showPage()
    form.save()
    with_field = out.getvalue()
    [(signature, _)] = _signatures(sealer.seal(with_field, BOX))
    assert signature.field_name == "Seal2"
    [(signature, _)] = _signatures(sealer.seal(with_field, BOX, field_name="印章"))
    assert signature.field_name == "印章"
    with pytest.raises(ValueError, match="Seal1"):
        sealer.seal(with_field, BOX, field_name="Seal1")


def test_signing_time_must_be_aware(sealer: PdfSealer, plain: bytes) -> None:
    with pytest.raises(ValueError, match="timezone"):
        sealer.seal(plain, BOX, signing_time=datetime(2025, 1, 1))


def test_key_must_match_the_certificate(root: Ca, png: bytes) -> None:
    identity = _identity(root, ec.generate_private_key(ec.SECP256R1()), png)
    wrong = SealIdentity(
        ec.generate_private_key(ec.SECP256R1()), identity.certificate, identity.chain, png
    )
    with pytest.raises(ValueError, match="private key"):
        PdfSealer(wrong)


def test_reserved_space_fits_a_long_rsa_chain(png: bytes) -> None:
    # A national RSA-4096 root and intermediate above a seal certificate with the
    # usual distribution-point, OCSP and name extensions.
    top = _root(rsa.generate_private_key(65537, 4096), "国家电子政务根证书 National Root")
    middle_key = rsa.generate_private_key(65537, 4096)
    middle = Ca(middle_key, _certify(top, middle_key, _name("上海市电子印章中级证书"), ca=True))
    identity = _identity(middle, ec.generate_private_key(ec.SECP256R1()), png, chain=(top,))
    sealer = PdfSealer(identity)
    sealed = sealer.seal(_PDF, BOX)
    assert _status(sealed, top.trust).bottom_line
    [(signature, sig)] = _signatures(sealed)
    used = len(signature.signed_data.dump())
    assert len(sig["/Contents"]) * 2 == sealer.bytes_reserved
    assert used < sealer.bytes_reserved // 2 - 1024  # a kilobyte to spare


def test_tampering_breaks_the_seal(sealer: PdfSealer, root: Ca, plain: bytes) -> None:
    sealed = sealer.seal(plain, BOX)
    at = sealed.index(b"(Page 1)") + len(b"(Page ")  # in the original page's content stream
    tampered = sealed[:at] + b"7" + sealed[at + 1 :]
    status = _status(tampered, root.trust)
    assert (status.intact, status.bottom_line) == (False, False)


_SMALL = _pdf(1)
_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, len(_SMALL) - 1), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, len(_SMALL) - 1), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, len(_SMALL)), st.integers(0, 255)),
)


def _mutate(pdf: bytes, mutations: list[tuple[str, int, int]]) -> bytes:
    for kind, at, value in mutations:
        at = min(at, len(pdf))
        if kind == "flip" and at < len(pdf):
            pdf = pdf[:at] + bytes([pdf[at] ^ value]) + pdf[at + 1 :]
        elif kind == "cut":
            pdf = pdf[:at]
        elif kind == "insert":
            pdf = pdf[:at] + bytes([value]) * 3 + pdf[at:]
    return pdf


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_mutation, min_size=1, max_size=3))
def test_mutated_pdfs_are_sealed_or_refused(
    sealer: PdfSealer, mutations: list[tuple[str, int, int]]
) -> None:
    pdf = _mutate(_SMALL, mutations)
    try:
        sealed = sealer.seal(pdf, Placement(1, 10, 10, 40, 40))
    except PdfRejectedError:
        return
    assert sealed.startswith(pdf)


# -- PAdES B-T (a TSA's timestamp token) and B-LT (a DSS with revocation data) --------


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _crl(issuer: Ca, revoked: tuple[x509.Certificate, ...] = ()) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.cert.subject)
        .last_update(NOW - timedelta(minutes=5))
        .next_update(NOW + timedelta(days=1))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    for cert in revoked:
        entry = x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
        builder = builder.add_revoked_certificate(entry.revocation_date(NOW).build())
    crl = builder.sign(issuer.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def tsa(root: Ca) -> DummyTimeStamper:
    """pyHanko's in-process TSA (RSA only), certified by the test root."""
    return make_tsa(root.key, root.cert)


@pytest.fixture(scope="module")
def seal(root: Ca, png: bytes) -> SealIdentity:
    return _identity(root, ec.generate_private_key(ec.SECP256R1()), png)


@pytest.fixture(scope="module")
def crl(root: Ca) -> bytes:
    return _crl(root)


@pytest.fixture
def tsa_url(tsa: DummyTimeStamper) -> Iterator[str]:
    with serve_tsa(tsa) as url:
        yield url


def _assert_b_t(sealed: bytes, root: Ca, index: int = 0) -> PdfSignatureStatus:
    status = _status(sealed, root.trust, index)
    assert (status.intact, status.valid, status.trusted, status.bottom_line) == (True,) * 4
    stamp = status.timestamp_validity
    assert stamp is not None
    assert (stamp.intact, stamp.valid, stamp.trusted) == (True, True, True)
    assert abs(stamp.timestamp - datetime.now(UTC)) < timedelta(minutes=1)
    return status


def test_a_timestamp_makes_it_b_t(
    identity: SealIdentity, root: Ca, tsa: DummyTimeStamper, plain: bytes
) -> None:
    sealer = PdfSealer(identity, timestamper=tsa)
    sealed = sealer.seal(plain, BOX)
    status = _assert_b_t(sealed, root)
    assert status.signer_reported_dt is not None
    assert abs(status.signer_reported_dt - datetime.now(UTC)) < timedelta(minutes=1)
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.modification_level == ModificationLevel.NONE
    [(signature, sig)] = _signatures(sealed)
    unsigned = signature.signer_info["unsigned_attrs"].native
    assert [a["type"] for a in unsigned] == ["signature_time_stamp_token"]
    assert "/DSS" not in PdfFileReader(io.BytesIO(sealed)).root
    assert len(sig["/Contents"]) * 2 == sealer.bytes_reserved
    used = len(signature.signed_data.dump())
    assert used < sealer.bytes_reserved // 2 - 4096  # room for a token twice this TSA's


def test_http_timestamper_end_to_end(seal: SealIdentity, root: Ca, tsa_url: str) -> None:
    sealer = PdfSealer(seal, timestamper=http_timestamper(tsa_url))
    once = sealer.seal(_PDF, BOX)
    _assert_b_t(once, root)
    # Again through the same client: each seal runs in a new event loop.
    _assert_b_t(sealer.seal(once, Placement(2, 50, 50, 100, 100)), root, index=1)


@pytest.mark.parametrize("url", ["ftp://tsa.example.gov.cn/", "tsa.example.gov.cn:318", "http:///"])
def test_http_timestamper_takes_http_urls_only(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        http_timestamper(url)


def test_an_unreachable_tsa_is_not_the_documents_fault(seal: SealIdentity) -> None:
    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sealer = PdfSealer(seal, timestamper=http_timestamper(f"http://127.0.0.1:{port}/"))
    with pytest.raises(TimestampRequestError):
        sealer.seal(_PDF, BOX)


class _GarbledTsa(TimeStamper):
    async def async_request_tsa_response(self, req: Any) -> Any:
        return tsp.TimeStampResp.load(b"\x30\x03\x02\x01\x00")  # status is not a sequence


class _OtherDigestTsa(DummyTimeStamper):
    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> Any:
        return await super().async_timestamp(bytes(len(message_digest)), md_algorithm)


def test_a_bad_timestamp_reply_is_not_the_documents_fault(
    seal: SealIdentity, tsa: DummyTimeStamper
) -> None:
    garbled = _GarbledTsa()  # type: ignore[no-untyped-call]
    cases = [(garbled, "unusable"), (_OtherDigestTsa(tsa.tsa_cert, tsa.tsa_key), "another")]
    for bad, match in cases:
        with pytest.raises(TimestampRequestError, match=match):
            PdfSealer(seal, timestamper=bad).seal(_PDF, BOX)


def _validate_offline(pdf: bytes, *roots: x509.Certificate) -> Any:
    """AdES validation with time (EN 319 102-1 5.5) from the document alone: revocation
    data required for every certificate, and only the DSS's used."""
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    catalog = signature.reader.root
    known = LocalKnowledge()
    if "/DSS" in catalog:
        dss = catalog["/DSS"]
        known = LocalKnowledge(
            known_crls=[
                CRLContainer(asn1_crl.CertificateList.load(c.get_object().data))
                for c in dss["/CRLs"]
            ],
            known_certs=[asn1_x509.Certificate.load(c.get_object().data) for c in dss["/Certs"]],
        )
    policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=[_asn1(r) for r in roots]),
        revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO),
    )
    spec = SignatureValidationSpec(
        cert_validation_policy=policy,
        revinfo_gathering_policy=RevocationInfoGatheringSpec(
            online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY
        ),
        local_knowledge=known,
    )
    validation = ades_with_time_validation(
        signature.signed_data, spec, raw_digest=signature.compute_digest()
    )
    return asyncio.run(validation)


def test_ltv_material_makes_it_b_lt(
    seal: SealIdentity, root: Ca, tsa: DummyTimeStamper, crl: bytes, plain: bytes
) -> None:
    sealer = PdfSealer(seal, timestamper=tsa, ltv=LtvMaterial((root.cert,), crls=(crl,)))
    sealed = sealer.seal(plain, BOX)
    assert sealed.startswith(plain)
    status = _assert_b_t(sealed, root)
    assert status.modification_level == ModificationLevel.LTA_UPDATES  # the DSS revision
    assert status.timestamp_validity is not None
    dss = PdfFileReader(io.BytesIO(sealed)).root["/DSS"]
    assert [c.get_object().data for c in dss["/CRLs"]] == [crl]
    certs = {c.get_object().data for c in dss["/Certs"]}
    der = serialization.Encoding.DER
    assert {seal.certificate.public_bytes(der), tsa.tsa_cert.dump()} <= certs

    # A validator that fetches nothing and requires revocation data finds all it
    # needs in the DSS, and takes the signing time from the timestamp.
    offline = _validate_offline(sealed, root.cert)
    assert offline.ades_subindic == AdESPassed.OK
    assert offline.best_signature_time == status.timestamp_validity.timestamp
    timestamped = PdfSealer(seal, timestamper=tsa).seal(plain, BOX)
    without_dss = _validate_offline(timestamped, root.cert).ades_subindic
    assert without_dss == AdESIndeterminate.CERTIFICATE_CHAIN_GENERAL_FAILURE

    twice = sealer.seal(sealed, Placement(2, 50, 50, 100, 100))
    assert [_status(twice, root.trust, i).bottom_line for i in (0, 1)] == [True, True]
    dss = PdfFileReader(io.BytesIO(twice)).root["/DSS"]
    assert [c.get_object().data for c in dss["/CRLs"]] == [crl]


def test_b_lt_needs_a_timestamp_and_revocation_data(
    seal: SealIdentity, root: Ca, tsa: DummyTimeStamper, crl: bytes
) -> None:
    refused = {
        "timestamper": LtvMaterial((root.cert,), crls=(crl,)),
        "trust roots": LtvMaterial((), crls=(crl,)),
        "revocation data": LtvMaterial((root.cert,)),
        "unreadable CRL": LtvMaterial((root.cert,), crls=(crl[:-1],)),
    }
    for match, ltv in refused.items():
        with pytest.raises(ValueError, match=match):
            PdfSealer(seal, timestamper=None if match == "timestamper" else tsa, ltv=ltv)


def test_b_lt_refuses_to_seal_without_current_revocation_status(
    seal: SealIdentity, root: Ca, png: bytes, tsa: DummyTimeStamper, crl: bytes
) -> None:
    other = _root(ec.generate_private_key(ec.SECP256R1()), "另一个根证书")
    other_seal = _identity(other, ec.generate_private_key(ec.SECP256R1()), png)
    roots = (root.cert, other.cert)
    cases = [
        (seal, LtvMaterial(roots, crls=(_crl(other),)), InsufficientRevinfoError, "signer"),
        (seal, LtvMaterial(roots, crls=(_crl(root, (seal.certificate,)),)), RevokedError, "signer"),
        (other_seal, LtvMaterial(roots, crls=(_crl(other),)), InsufficientRevinfoError, "TSA"),
        (seal, LtvMaterial((other.cert,), crls=(crl, _crl(other))), PathBuildingError, "signer"),
    ]
    for identity, ltv, cause, match in cases:
        with pytest.raises(SigningError, match=match) as refused:
            PdfSealer(identity, timestamper=tsa, ltv=ltv).seal(_PDF, BOX)
        assert isinstance(refused.value.__cause__, cause)


@pytest.mark.parametrize("dss", [b"/DSS 7", b"/DSS << /CRLs [ (not a CRL) ] >>"])
def test_b_lt_refuses_a_broken_dss(
    seal: SealIdentity, root: Ca, tsa: DummyTimeStamper, crl: bytes, dss: bytes
) -> None:
    sealer = PdfSealer(seal, timestamper=tsa, ltv=LtvMaterial((root.cert,), crls=(crl,)))
    with pytest.raises(PdfRejectedError) as refused:
        sealer.seal(_raw_pdf(_PAGES, _PAGE, dss), Placement(1, 10, 10, 40, 40))
    assert refused.value.reason == "PDF_MALFORMED"


def test_by_default_no_timestamp_and_no_dss(sealer: PdfSealer, root: Ca, plain: bytes) -> None:
    sealed = sealer.seal(plain, BOX)
    assert _status(sealed, root.trust).timestamp_validity is None
    [(signature, _)] = _signatures(sealed)
    assert signature.signer_info["unsigned_attrs"].native is None
    assert "/DSS" not in PdfFileReader(io.BytesIO(sealed)).root
