"""The forgery corpus (SPEC §5, cases 1–14, 18 and 19) against a real server over gRPC.

Every forgery is a real artefact (see tests/forgery.py): an envelope re-encoded with
another payload, a QR code re-encoded with other claims, PDFs changed by pyHanko
incremental updates or by overwriting bytes, signatures by self-made CAs or by genuine
keys taken from the region's key store and used outside the service, a ledger leaf
rewritten in RocksDB. Each test first checks the artefact on its own (it parses, pyHanko
sees what we claim, a stolen key's signature does verify) and then asks the public
VerificationService, with no client certificate, for the exact indication, reason code
and the check that decided it. Each forgery has a genuine counterpart that passes.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pypdfium2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from rocksdict import Options, Rdict

from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.licence.v1 import licence_service_pb2 as pb
from licenceledger.record.v1 import record_pb2
from licenceledger.seal.v1 import seal_pb2
from licenceledger.seal.v1 import seal_service_pb2 as sp
from licenceledger.verification.v1 import report_pb2 as rpb
from licenceledger.verification.v1 import verification_service_pb2 as vpb
from service.region.common import department_key_name
from service.region.sealed_documents import LICENCE_PURPOSE
from service.region.seals import seal_key_name
from signer import dsse, identifiers, pades, pki, qr, seal_pki, sealimage
from signer.licence_pdf import SEAL_BOX
from tests import forgery
from tests.e2e import (
    COMPANY,
    DEPT_A,
    DEPT_B,
    FOOD,
    PERMIT,
    YEAR,
    Region,
    call,
    close_region,
    failure,
    fields,
    issue_request,
    later,
    ledger_size,
    open_region,
    plain_pdf,
    register_seal,
    rid,
)

OTHER_COMPANY = identifiers.make_uscc("91310000MA1K00002")
# A department of another region (Zhejiang) that a licence is transferred out to.
ZHEJIANG_DEPT = identifiers.make_uscc("11330000MB0000001")
DOCUMENT_BOX = (400.0, 100.0, 119.0, 119.0)  # page 2, where the documents here are sealed
DOCUMENT_PLACEMENT = seal_pb2.SealPlacement(page=2, x=400, y=100, width=119, height=119)
LICENCE_PLACEMENT = pades.Placement(SEAL_BOX.page, SEAL_BOX.x, SEAL_BOX.y, 119, 119)

CLI = [sys.executable, "-m", "service.cli"]
PASSED, FAILED, INDETERMINATE = (
    rpb.CHECK_RESULT_PASSED,
    rpb.CHECK_RESULT_FAILED,
    rpb.CHECK_RESULT_INDETERMINATE,
)


# -- the region ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    opened = open_region(tmp_path_factory, "corpus")
    yield opened
    close_region(opened)


@dataclass(frozen=True)
class Seals:
    licence: seal_pb2.Seal  # department A's licence-issuing seal for FOOD
    contract: seal_pb2.Seal  # department A's contract seal (purpose "contract")
    contract_b: seal_pb2.Seal  # department B's contract seal


def new_seal(region: Region, owner: str, seal_type: int, name: str, **extra: Any) -> seal_pb2.Seal:
    """A registered seal with an image of its own: seals that shared one image could not
    tell "another registered seal's image" from their own."""
    png = sealimage.make_dev_seal_png(name)
    reply = register_seal(region, owner, seal_type, name=name, image_png=png, **extra)
    return reply.seal  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def seals(region: Region) -> Seals:
    return Seals(
        licence=new_seal(
            region,
            DEPT_A,
            seal_pb2.SEAL_TYPE_LICENCE_ISSUING,
            "上海市市场监督管理局证照专用章",
            permitted_licence_type_codes=[FOOD],
        ),
        contract=new_seal(
            region,
            DEPT_A,
            seal_pb2.SEAL_TYPE_CONTRACT,
            "上海市市场监督管理局合同专用章",
            permitted_purposes=["contract"],
        ),
        contract_b=new_seal(
            region,
            DEPT_B,
            seal_pb2.SEAL_TYPE_CONTRACT,
            "上海市黄浦区市场监督管理局合同专用章",
            permitted_purposes=["contract"],
        ),
    )


@pytest.fixture(scope="module")
def issued(region: Region, seals: Seals) -> lpb.LicenceCredential:
    """A genuine FOOD licence of department A, with its sealed PDF. Never changed."""
    request = issue_request("JY-CORPUS-1", want_pdf=True)
    return call(region, region.dept_a, "IssueLicence", request).credential  # type: ignore[no-any-return]


def seal_document(
    region: Region, seal: seal_pb2.Seal, pdf: bytes, identity: tuple[bytes, bytes] | None = None
) -> sp.SealDocumentResponse:
    request = sp.SealDocumentRequest(
        request_id=rid(),
        seal_id=seal.seal_id,
        pdf=pdf,
        placement=DOCUMENT_PLACEMENT,
        purpose="contract",
        signature_reason="同意",
        signature_location="上海",
    )
    return call(region, identity or region.dept_a, "SealDocument", request)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sealed(region: Region, seals: Seals) -> bytes:
    """A contract genuinely sealed by department A through the service. Never changed."""
    return seal_document(region, seals.contract, plain_pdf()).sealed_pdf


def root_of(region: Region) -> x509.Certificate:
    return pki.load_certificate((region.server.data.root / "pki" / "region-ca.pem").read_bytes())


def department_key(region: Region, code: str) -> dsse.SigningKey:
    """The department's real issuing key, read from the region's key store on disk."""
    public = region.department_certs[code].public_key()
    assert isinstance(public, Ed25519PublicKey | ec.EllipticCurvePublicKey)
    return region.server.data.key_store().load(department_key_name(code, pki.key_id_of(public)))


def seal_identity(
    region: Region, seal: seal_pb2.Seal, png: bytes | None = None
) -> pades.SealIdentity:
    """The seal's real key (from the key store) and certificate; `png` the image to show."""
    key = region.server.data.key_store().load(seal_key_name(seal.certificate.key_id))
    chain = tuple(x509.load_der_x509_certificate(c) for c in seal.certificate.chain)
    certificate = x509.load_der_x509_certificate(seal.certificate.certificate)
    return pades.SealIdentity(key, certificate, chain, seal.image_png if png is None else png)


def pyhanko_status(region: Region, pdf: bytes, root: x509.Certificate | None = None) -> list[Any]:
    """pyHanko's own view of every signature, trusting only `root` (default: the region's)."""
    anchor = forgery.asn1_certificate(root or root_of(region))
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    return [
        validate_pdf_signature(s, ValidationContext(trust_roots=[anchor]))
        for s in reader.embedded_signatures
    ]


def red_pixels(pdf: bytes, page: int, box: tuple[float, float, float, float]) -> int:
    """Strongly red pixels inside `box` (x, y, width, height in points) of a rendered page."""
    document = pypdfium2.PdfDocument(pdf)
    document.init_forms()
    scale = 2
    image = document[page - 1].render(scale=scale, may_draw_forms=True).to_pil().convert("RGB")
    x, y, width, height = box
    crop = image.crop(
        (
            int(x * scale),
            int(image.height - (y + height) * scale),
            int((x + width) * scale),
            int(image.height - y * scale),
        )
    )
    rgb = crop.tobytes()
    return sum(
        1
        for r, g, b in zip(rgb[0::3], rgb[1::3], rgb[2::3], strict=True)
        if r > 180 and g < 90 and b < 90
    )


def rendered(pdf: bytes, page: int) -> bytes:
    document = pypdfium2.PdfDocument(pdf)
    document.init_forms()
    image = document[page - 1].render(scale=1, may_draw_forms=True).to_pil().convert("RGB")
    return image.tobytes()  # type: ignore[no-any-return]


def recorded_at(proof_entry: bytes) -> Timestamp:
    return record_pb2.LedgerRecord.FromString(proof_entry).recorded_at


# -- asking the verifier -----------------------------------------------------------------


def verify_credential(
    region: Region, envelope: bytes, holder: str = "", at: Timestamp | None = None
) -> rpb.VerificationReport:
    request = vpb.VerifyCredentialRequest(envelope=envelope, expected_holder_id_number=holder)
    if at is not None:
        request.validation_time.CopyFrom(at)
    return call(region, None, "VerifyCredential", request).report  # type: ignore[no-any-return]


def verify_qr(
    region: Region, payload: bytes, holder: str = "", at: Timestamp | None = None
) -> rpb.VerificationReport:
    request = vpb.VerifyQrCodeRequest(payload=payload, expected_holder_id_number=holder)
    if at is not None:
        request.validation_time.CopyFrom(at)
    return call(region, None, "VerifyQrCode", request).report  # type: ignore[no-any-return]


def verify_pdf(
    region: Region, pdf: bytes, holder: str = "", at: Timestamp | None = None
) -> rpb.VerificationReport:
    request = vpb.VerifyPdfRequest(pdf=pdf, expected_holder_id_number=holder)
    if at is not None:
        request.validation_time.CopyFrom(at)
    return call(region, None, "VerifyPdf", request).report  # type: ignore[no-any-return]


Judged = rpb.VerificationReport | rpb.SignatureReport


def decisive(checks: Any) -> str:
    """The check that decides: the first FAILED one, else the first INDETERMINATE one."""
    for result in (FAILED, INDETERMINATE):
        for check in checks:
            if check.result == result:
                return str(check.name)
    return ""


def describe(judged: Judged) -> str:
    """Everything about a report (or signature report) a failing assertion should show."""
    lines = [
        f"indication={rpb.Indication.Name(judged.indication)} reason_code={judged.reason_code!r}"
    ]
    lines += [
        f"  {c.name}: {rpb.CheckResult.Name(c.result)} {c.reason_code} — {c.message_en}"
        for c in judged.checks
    ]
    if isinstance(judged, rpb.VerificationReport):
        for i, signature in enumerate(judged.signatures):
            lines.append(f" signature {i} ({signature.field_name}):")
            lines += ["  " + line for line in describe(signature).splitlines()]
    return "\n".join(lines)


def outcome(judged: Judged) -> tuple[str, str, str]:
    indication = rpb.Indication.Name(judged.indication).removeprefix("INDICATION_")
    return indication, judged.reason_code, decisive(judged.checks)


def expect(judged: Judged, indication: str, reason_code: str, check: str) -> None:
    """`judged` concluded `indication` for `reason_code`, decided by the check `check`."""
    assert outcome(judged) == (indication, reason_code, check), describe(judged)
    assert judged.reason == rpb.VerificationReason.Value(f"VERIFICATION_REASON_{reason_code}")
    decided = next(c for c in judged.checks if c.name == check)
    assert decided.reason_code == reason_code, describe(judged)
    assert decided.message_zh, describe(judged)
    assert decided.message_en, describe(judged)


def expect_pdf(report: rpb.VerificationReport, reason_code: str, check: str) -> None:
    """The PDF's only signature failed `check` for `reason_code`, and so did the PDF."""
    assert len(report.signatures) == 1, describe(report)
    expect(report.signatures[0], "TOTAL_FAILED", reason_code, check)
    assert outcome(report)[:2] == ("TOTAL_FAILED", reason_code), describe(report)


def expect_passed(report: rpb.VerificationReport, signatures: int = 0) -> None:
    assert report.indication == rpb.INDICATION_TOTAL_PASSED, describe(report)
    assert decisive(report.checks) == "", describe(report)
    assert len(report.signatures) == signatures, describe(report)
    for signature in report.signatures:
        assert signature.indication == rpb.INDICATION_TOTAL_PASSED, describe(report)
        assert decisive(signature.checks) == "", describe(report)


def check_named(judged: Judged, name: str) -> rpb.Check:
    found = [c for c in judged.checks if c.name == name]
    assert len(found) == 1, describe(judged)
    return found[0]


# -- genuine artefacts pass ----------------------------------------------------------------


def test_genuine_credential_qr_code_and_pdf_pass(
    region: Region, issued: lpb.LicenceCredential
) -> None:
    for report in (
        verify_credential(region, issued.envelope),
        verify_qr(region, issued.qr_payload),
    ):
        expect_passed(report)
        assert report.licence.licence_id == issued.licence.licence_id
        assert check_named(report, "licence.holder").result == rpb.CHECK_RESULT_SKIPPED
    report = verify_pdf(region, issued.pdf)
    expect_passed(report, signatures=1)
    assert report.licence.licence_id == issued.licence.licence_id


def test_verify_pdf_needs_no_client_certificate(region: Region, sealed: bytes) -> None:
    # `call` with no identity goes to the public TLS port without a client certificate.
    report = verify_pdf(region, sealed)
    expect_passed(report, signatures=1)
    assert report.signatures[0].seal.seal_id
    assert report.signatures[0].HasField("signing_time")


# -- §5 #1: payload or field changed after signing ---------------------------------------------


def test_01_envelope_payload_changed_after_signing(
    region: Region, issued: lpb.LicenceCredential
) -> None:
    forged = forgery.envelope_with_holder_name(issued.envelope, "上海伪造餐饮有限公司")
    genuine, changed = dsse.parse_envelope(issued.envelope), dsse.parse_envelope(forged)
    assert changed.signatures == genuine.signatures  # the signature was kept
    assert lpb.Licence.FromString(changed.payload).holder.name == "上海伪造餐饮有限公司"
    public = region.department_certs[DEPT_A].public_key()
    assert isinstance(public, Ed25519PublicKey)
    with pytest.raises(dsse.SignatureError):
        dsse.verify_envelope(
            forged, {pki.key_id_of(public): public}, payload_type=dsse.LICENCE_PAYLOAD_TYPE
        )
    expect(
        verify_credential(region, forged),
        "TOTAL_FAILED",
        "SIGNATURE_INVALID",
        "credential.signature",
    )


def test_01_qr_claims_changed_after_signing(region: Region, issued: lpb.LicenceCredential) -> None:
    forged = forgery.qr_with_holder_name(issued.qr_payload, "上海伪造餐饮有限公司")
    assert forged != issued.qr_payload
    assert len(forged) <= qr.MAX_QR_PAYLOAD_BYTES
    code = qr.decode_qr(forged)  # well-formed: only the claims differ
    assert code.signature == qr.decode_qr(issued.qr_payload).signature
    public = region.department_certs[DEPT_A].public_key()
    assert isinstance(public, Ed25519PublicKey)
    with pytest.raises(qr.QrSignatureError):
        qr.verify_qr(forged, {bytes.fromhex(pki.key_id_of(public))[:8]: public})
    expect(verify_qr(region, forged), "TOTAL_FAILED", "SIGNATURE_INVALID", "qr.signature")


def test_01_pdf_byte_changed_inside_the_signed_range(
    region: Region, issued: lpb.LicenceCredential
) -> None:
    # One digit of the printed licence number, in the page's content stream.
    forged = forgery.change_printed_text(
        issued.pdf,
        0,
        forgery.reportlab_cid_literal("JY-CORPUS-1"),
        forgery.reportlab_cid_literal("JY-CORPUS-7"),
    )
    assert len(forged) == len(issued.pdf)
    assert sum(a != b for a, b in zip(forged, issued.pdf, strict=True)) == 1
    assert forgery.cms_of(forged) == forgery.cms_of(issued.pdf)  # /Contents untouched
    (status,) = pyhanko_status(region, forged)
    assert (status.intact, status.bottom_line) == (False, False)  # the digest no longer matches
    text = pypdfium2.PdfDocument(forged)[0].get_textpage().get_text_range()
    assert "JY-CORPUS-7" in text
    expect_pdf(verify_pdf(region, forged), "BYTE_RANGE_MISMATCH", "pdf.signature.integrity")


# -- §5 #2: a self-made issuer ----------------------------------------------------------------


def test_02_credential_and_qr_code_from_a_self_made_issuer(
    region: Region, issued: lpb.LicenceCredential
) -> None:
    root = root_of(region)
    fake_root = forgery.self_made_root(root)
    assert fake_root.certificate.subject == root.subject
    name = issued.licence.issuer.department_name
    key, fake_cert = forgery.self_made_department(fake_root, DEPT_A, name, [FOOD])
    # The forger's chain holds together, but not under the region's root.
    pki.check_department_certificate(
        fake_cert, fake_root.certificate, licence_type_code=FOOD, department_code=DEPT_A
    )
    with pytest.raises(pki.CertificateRejectedError) as rejected:
        pki.check_department_certificate(
            fake_cert, root, licence_type_code=FOOD, department_code=DEPT_A
        )
    assert rejected.value.reason is pki.Rejection.NOT_ISSUED_BY_CA
    licence = forgery.counterfeit_licence(
        issued.licence,
        licence_id=identifiers.LicenceId(FOOD, DEPT_A, 800001, 1).text,
        licence_number="JY-SELFMADE-1",
    )
    envelope = forgery.sign_licence(licence, key)
    verified = dsse.verify_envelope(
        envelope,
        {pki.key_id_of(key.public_key()): key.public_key()},
        payload_type=dsse.LICENCE_PAYLOAD_TYPE,
    )
    assert lpb.Licence.FromString(verified.payload) == licence
    expect(
        verify_credential(region, envelope),
        "TOTAL_FAILED",
        "NO_CERTIFICATE_CHAIN",
        "issuer.certificate",
    )
    payload = forgery.sign_qr(licence, key, issued.proof.leaf_index)
    expect(verify_qr(region, payload), "TOTAL_FAILED", "NO_CERTIFICATE_CHAIN", "issuer.certificate")


def test_02_pdf_sealed_with_a_self_made_seal_certificate(
    region: Region, seals: Seals, issued: lpb.LicenceCredential
) -> None:
    root = root_of(region)
    fake_root = forgery.self_made_root(root)
    genuine = seals.contract
    scope = seal_pki.SealScope(genuine.seal_id, DEPT_A, "SEAL_TYPE_CONTRACT", ("contract",), ())
    identity = forgery.self_made_seal(
        fake_root, scope, genuine.name, issued.licence.issuer.department_name, genuine.image_png
    )
    forged = forgery.seal_outside_service(plain_pdf(), identity, pades.Placement(2, *DOCUMENT_BOX))
    (untrusted,) = pyhanko_status(region, forged)
    assert (untrusted.intact, untrusted.valid, untrusted.trusted) == (True, True, False)
    (trusted,) = pyhanko_status(region, forged, fake_root.certificate)
    assert trusted.bottom_line
    assert red_pixels(forged, 2, DOCUMENT_BOX) > 1000  # it shows the genuine seal's image
    expect_pdf(verify_pdf(region, forged), "NO_CERTIFICATE_CHAIN", "pdf.signature.chain")


# -- §5 #3 and #4: the department's real key, used outside the service --------------------------


def test_03_genuine_department_key_signs_a_type_it_is_not_authorised_for(
    region: Region, issued: lpb.LicenceCredential
) -> None:
    key = department_key(region, DEPT_A)
    assert dsse.Signer(key).keyid == dsse.parse_envelope(issued.envelope).signatures[0].keyid
    licence = forgery.counterfeit_licence(
        issued.licence,
        licence_id=identifiers.LicenceId(PERMIT, DEPT_A, 1, 1).text,
        licence_number="JZ-FORGED-1",
        type_code=PERMIT,
        type_name="建筑施工许可证",
    )
    identifiers.LicenceId.parse(licence.licence_id)  # a correctly formed identifier
    envelope = forgery.sign_licence(licence, key)
    cert = region.department_certs[DEPT_A]
    public = cert.public_key()
    assert isinstance(public, Ed25519PublicKey)
    dsse.verify_envelope(  # the signature itself is the department's
        envelope, {pki.key_id_of(public): public}, payload_type=dsse.LICENCE_PAYLOAD_TYPE
    )
    with pytest.raises(pki.CertificateRejectedError) as rejected:
        pki.check_department_certificate(
            cert, root_of(region), licence_type_code=PERMIT, department_code=DEPT_A
        )
    assert rejected.value.reason is pki.Rejection.LICENCE_TYPE_NOT_IN_SCOPE
    expect(
        verify_credential(region, envelope), "TOTAL_FAILED", "ISSUER_NOT_AUTHORISED", "issuer.scope"
    )
    payload = forgery.sign_qr(licence, key, issued.proof.leaf_index)
    expect(verify_qr(region, payload), "TOTAL_FAILED", "ISSUER_NOT_AUTHORISED", "issuer.scope")


def test_04_valid_signature_but_never_issued(region: Region, issued: lpb.LicenceCredential) -> None:
    key = department_key(region, DEPT_A)
    licence = forgery.counterfeit_licence(
        issued.licence,
        licence_id=identifiers.LicenceId(FOOD, DEPT_A, 900001, 1).text,
        licence_number="JY-NEVER-ISSUED-1",
    )
    envelope = forgery.sign_licence(licence, key)
    cert = region.department_certs[DEPT_A]
    public = cert.public_key()
    assert isinstance(public, Ed25519PublicKey)
    dsse.verify_envelope(
        envelope, {pki.key_id_of(public): public}, payload_type=dsse.LICENCE_PAYLOAD_TYPE
    )
    pki.check_department_certificate(
        cert, root_of(region), licence_type_code=FOOD, department_code=DEPT_A
    )
    size = ledger_size(region)
    expect(verify_credential(region, envelope), "TOTAL_FAILED", "NOT_IN_LEDGER", "ledger.inclusion")
    # The QR code names the ledger index of a real entry: another licence's.
    payload = forgery.sign_qr(licence, key, issued.proof.leaf_index)
    qr.verify_qr(payload, {bytes.fromhex(pki.key_id_of(public))[:8]: public})
    expect(verify_qr(region, payload), "TOTAL_FAILED", "NOT_IN_LEDGER", "ledger.inclusion")
    assert ledger_size(region) == size  # verification records nothing


# -- §5 #5: status ------------------------------------------------------------------------


def change_status(
    region: Region, licence_id: str, status: lpb.LicenceStatus.ValueType, **extra: Any
) -> pb.ChangeLicenceStatusResponse:
    request = pb.ChangeLicenceStatusRequest(
        request_id=rid(), licence_id=licence_id, status=status, reason="核查", **extra
    )
    return call(region, region.dept_a, "ChangeLicenceStatus", request)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("status", "reason_code"),
    [
        (lpb.LICENCE_STATUS_SUSPENDED, "LICENCE_SUSPENDED"),
        (lpb.LICENCE_STATUS_WITHDRAWN, "LICENCE_WITHDRAWN"),
        (lpb.LICENCE_STATUS_CANCELLED, "LICENCE_CANCELLED"),
        (lpb.LICENCE_STATUS_EXPIRED, "LICENCE_EXPIRED"),
        (lpb.LICENCE_STATUS_TRANSFERRED_OUT, "LICENCE_TRANSFERRED_OUT"),
        (lpb.LICENCE_STATUS_REVOKED, "LICENCE_REVOKED"),
    ],
    ids=[
        "02-suspended",
        "03-withdrawn",
        "04-cancelled",
        "05-expired",
        "06-transferred",
        "07-revoked",
    ],
)
def test_05_licence_status(
    region: Region, status: lpb.LicenceStatus.ValueType, reason_code: str
) -> None:
    name = lpb.LicenceStatus.Name(status)
    credential = call(
        region, region.dept_a, "IssueLicence", issue_request(f"JY-STATUS-{name}")
    ).credential
    expect_passed(verify_credential(region, credential.envelope))
    extra: dict[str, Any] = {}
    successor = identifiers.LicenceId(FOOD, ZHEJIANG_DEPT, 1, 1).text
    if status == lpb.LICENCE_STATUS_TRANSFERRED_OUT:
        extra["successor_licence_id"] = successor
    changed = change_status(region, credential.licence.licence_id, status, **extra)
    assert changed.licence.status == status
    for report in (
        verify_credential(region, credential.envelope),
        verify_qr(region, credential.qr_payload),
    ):
        expect(report, "TOTAL_FAILED", reason_code, "licence.status")
        if status == lpb.LICENCE_STATUS_TRANSFERRED_OUT:
            assert report.current_licence_id == successor, describe(report)


def test_05_a_reinstated_licence_passes_again(region: Region) -> None:
    credential = call(
        region, region.dept_a, "IssueLicence", issue_request("JY-REINSTATE")
    ).credential
    lid = credential.licence.licence_id
    change_status(region, lid, lpb.LICENCE_STATUS_SUSPENDED)
    expect(
        verify_credential(region, credential.envelope),
        "TOTAL_FAILED",
        "LICENCE_SUSPENDED",
        "licence.status",
    )
    change_status(region, lid, lpb.LICENCE_STATUS_VALID)
    expect_passed(verify_credential(region, credential.envelope))


# -- §5 #6: validity ------------------------------------------------------------------------


def test_06_expired_licence(region: Region) -> None:
    valid_until = later(3)
    request = issue_request("JY-EXPIRING-1", valid_until=valid_until)
    credential = call(region, region.dept_a, "IssueLicence", request).credential
    expect_passed(verify_credential(region, credential.envelope))  # still within its validity
    time.sleep(max(0.0, valid_until.ToNanoseconds() / 1e9 - time.time()) + 0.5)
    for report in (
        verify_credential(region, credential.envelope),
        verify_qr(region, credential.qr_payload),
    ):
        expect(report, "TOTAL_FAILED", "LICENCE_EXPIRED", "licence.validity")
    # The same answer as of a time after the validity, for a licence still valid now.
    year = call(
        region,
        region.dept_a,
        "IssueLicence",
        issue_request("JY-EXPIRING-2", valid_until=later(YEAR)),
    ).credential
    expect_passed(verify_credential(region, year.envelope))
    after = Timestamp(seconds=year.licence.valid_until.seconds + 86400)
    expect(
        verify_credential(region, year.envelope, at=after),
        "TOTAL_FAILED",
        "LICENCE_EXPIRED",
        "licence.validity",
    )


def test_06_not_yet_valid_licence(region: Region) -> None:
    valid_from = later(86400)
    request = issue_request("JY-FUTURE-1", valid_from=valid_from, valid_until=later(YEAR))
    credential = call(region, region.dept_a, "IssueLicence", request).credential
    assert credential.licence.valid_from == valid_from  # the issuance API allows it
    for report in (
        verify_credential(region, credential.envelope),
        verify_qr(region, credential.qr_payload),
    ):
        expect(report, "INDETERMINATE", "LICENCE_NOT_YET_VALID", "licence.validity")
    # As of a time once it has started, it passes.
    started = Timestamp(seconds=valid_from.seconds + 60)
    expect_passed(verify_credential(region, credential.envelope, at=started))


# -- §5 #7: superseded ------------------------------------------------------------------------


def test_07_superseded_version_names_the_current_one(region: Region) -> None:
    v1 = call(region, region.dept_a, "IssueLicence", issue_request("JY-AMEND-1")).credential
    v2 = call(
        region,
        region.dept_a,
        "AmendLicence",
        pb.AmendLicenceRequest(
            request_id=rid(),
            licence_id=v1.licence.licence_id,
            reason="经营项目变更",
            amendment=pb.LicenceAmendment(face_fields=fields("预包装食品销售；热食类食品制售")),
            update_mask=FieldMask(paths=["face_fields"]),
        ),
    ).credential
    assert v2.licence.predecessor_licence_id == v1.licence.licence_id
    for report in (verify_credential(region, v1.envelope), verify_qr(region, v1.qr_payload)):
        expect(report, "TOTAL_FAILED", "LICENCE_SUPERSEDED", "licence.status")
        assert report.current_licence_id == v2.licence.licence_id, describe(report)
    expect_passed(verify_credential(region, v2.envelope))
    expect_passed(verify_qr(region, v2.qr_payload))


# -- §5 #8: holder --------------------------------------------------------------------------


def test_08_genuine_licence_presented_for_another_holder(
    region: Region, issued: lpb.LicenceCredential
) -> None:
    assert issued.licence.holder.id_number == COMPANY
    identifiers.validate_uscc(OTHER_COMPANY)  # a valid code, just not the holder's
    for report in (
        verify_credential(region, issued.envelope, holder=OTHER_COMPANY),
        verify_qr(region, issued.qr_payload, holder=OTHER_COMPANY),
        verify_pdf(region, issued.pdf, holder=OTHER_COMPANY),
    ):
        expect(report, "TOTAL_FAILED", "HOLDER_MISMATCH", "licence.holder")
    for report in (
        verify_credential(region, issued.envelope, holder=COMPANY),
        verify_qr(region, issued.qr_payload, holder=COMPANY),
    ):
        expect_passed(report)
        assert check_named(report, "licence.holder").result == PASSED
    expect_passed(verify_pdf(region, issued.pdf, holder=COMPANY), signatures=1)


# -- §5 #9: changed after sealing ---------------------------------------------------------------


MODIFICATIONS: dict[str, Callable[[bytes], bytes]] = {
    # A white box over the first line, appended to page 1's own content stream.
    "content-stream-rewritten": lambda pdf: forgery.append_to_content_stream(
        pdf, 0, b"q 1 1 1 rg 60 752 300 24 re f Q"
    ),
    "text-overlay-added": lambda pdf: forgery.add_text_overlay(
        pdf, 0, 72, 700, "Amount due: CNY 9,999,999.00"
    ),
    "page-added": lambda pdf: forgery.add_page(pdf, "Annex 3: the buyer waives every claim"),
    "overlay-annotation": lambda pdf: forgery.add_overlay_annotation(
        pdf, 0, (60, 740, 360, 790), "Contract page 1 (void)"
    ),
}


@pytest.mark.parametrize("how", list(MODIFICATIONS))
def test_09_pdf_changed_after_sealing(region: Region, sealed: bytes, how: str) -> None:
    forged = MODIFICATIONS[how](sealed)
    assert forged.startswith(sealed)  # an incremental update: the signed bytes are intact
    assert forgery.revisions(forged) == forgery.revisions(sealed) + 1
    reader = PdfFileReader(io.BytesIO(forged), strict=True)  # a well-formed PDF
    pages = int(reader.root["/Pages"]["/Count"])
    (status,) = pyhanko_status(region, forged)
    assert (status.intact, status.valid, status.trusted) == (True, True, True)
    assert status.coverage.name == "ENTIRE_REVISION"
    assert status.modification_level.name == "OTHER"  # pyHanko's diff analysis agrees
    if how == "page-added":
        assert pages == 3
    else:
        assert rendered(forged, 1) != rendered(sealed, 1)  # the change shows
    expect_pdf(verify_pdf(region, forged), "MODIFIED_AFTER_SIGNING", "pdf.signature.modifications")


def test_09_a_second_genuine_seal_is_allowed(region: Region, seals: Seals, sealed: bytes) -> None:
    twice = seal_document(region, seals.contract, sealed).sealed_pdf
    assert forgery.revisions(twice) == forgery.revisions(sealed) + 1
    report = verify_pdf(region, twice)
    expect_passed(report, signatures=2)


# -- §5 #10: a seal image without a signature ----------------------------------------------


def test_10_seal_image_pasted_without_a_signature(region: Region, seals: Seals) -> None:
    png = seals.contract.image_png
    typeset = forgery.document_with_seal_image(png, DOCUMENT_BOX)
    pasted = forgery.paste_image(plain_pdf(), png, 1, DOCUMENT_BOX)
    for forged in (typeset, pasted):
        assert PdfFileReader(io.BytesIO(forged), strict=True).embedded_signatures == []
        assert red_pixels(forged, 2, DOCUMENT_BOX) > 1000  # the seal shows where seals go
        report = verify_pdf(region, forged)
        assert report.signatures == [], describe(report)
        expect(report, "TOTAL_FAILED", "SEAL_IMAGE_WITHOUT_SIGNATURE", "pdf.signatures")


def test_10_plain_pdf_has_no_signature(region: Region) -> None:
    expect(verify_pdf(region, plain_pdf()), "TOTAL_FAILED", "NO_SIGNATURE", "pdf.signatures")


def test_10_seal_image_pasted_into_a_sealed_pdf(
    region: Region, seals: Seals, sealed: bytes
) -> None:
    box = (100.0, 100.0, 119.0, 119.0)
    forged = forgery.paste_image(sealed, seals.contract.image_png, 0, box)
    assert forgery.revisions(forged) == forgery.revisions(sealed) + 1
    assert red_pixels(forged, 1, box) > 1000
    assert red_pixels(sealed, 1, box) == 0
    (status,) = pyhanko_status(region, forged)
    assert (status.intact, status.modification_level.name) == (True, "OTHER")
    report = verify_pdf(region, forged)
    # Both faults are there; the signature's checks come first, so the change decides.
    expect_pdf(report, "MODIFIED_AFTER_SIGNING", "pdf.signature.modifications")


# -- §5 #11: a transplanted signature ----------------------------------------------------------


def test_11_signature_transplanted_into_another_pdf(
    region: Region, seals: Seals, sealed: bytes
) -> None:
    target = forgery.contract_pdf("Contract", ["The buyer pays CNY 1.00 for everything."])
    forged = forgery.transplant_signature(sealed, target, seals.contract.image_png)
    assert forged.startswith(target)
    assert forgery.cms_of(forged) == forgery.cms_of(sealed)  # the genuine CMS, byte for byte
    assert forgery.signing_certificate(forged) == forgery.signing_certificate(sealed)
    (status,) = pyhanko_status(region, forged)
    assert status.intact is False
    assert red_pixels(forged, 2, DOCUMENT_BOX) > 1000  # and it shows the genuine seal
    expect_pdf(verify_pdf(region, forged), "BYTE_RANGE_MISMATCH", "pdf.signature.integrity")


# -- §5 #12 and #13: revocation before and after the sealing --------------------------------


def revoke_seal(region: Region, seal: seal_pb2.Seal, invalid_since: Timestamp | None) -> None:
    request = sp.RevokeSealRequest(request_id=rid(), seal_id=seal.seal_id, reason="印章遗失")
    if invalid_since is not None:
        request.invalid_since.CopyFrom(invalid_since)
    call(region, region.admin, "RevokeSeal", request)


def test_12_seal_revoked_before_the_sealing_time(region: Region) -> None:
    seal = new_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, "上海市市场监督管理局合同专用章（三）"
    )
    reply = seal_document(region, seal, plain_pdf())
    sealed_at = recorded_at(reply.proof.entry)
    expect_passed(verify_pdf(region, reply.sealed_pdf), signatures=1)
    # The key was compromised an hour before the document was sealed.
    revoke_seal(region, seal, Timestamp(seconds=sealed_at.seconds - 3600, nanos=sealed_at.nanos))
    report = verify_pdf(region, reply.sealed_pdf)
    expect_pdf(report, "SEAL_REVOKED", "seal.status")
    assert report.signatures[0].signing_time == sealed_at, describe(report)


@pytest.mark.parametrize("since", ["unset", "after-sealing"])
def test_13_seal_revoked_after_sealing_still_passes(region: Region, since: str) -> None:
    seal = new_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, f"上海市市场监督管理局合同专用章（{since}）"
    )
    reply = seal_document(region, seal, plain_pdf())
    sealed_at = recorded_at(reply.proof.entry)
    after = Timestamp(seconds=sealed_at.seconds, nanos=sealed_at.nanos + 1000)
    revoke_seal(region, seal, None if since == "unset" else after)
    report = verify_pdf(region, reply.sealed_pdf)
    expect_passed(report, signatures=1)
    status = check_named(report.signatures[0], "seal.status")
    assert (status.result, status.reason_code) == (PASSED, "SEAL_REVOKED_AFTER_SIGNING")
    assert report.signatures[0].signing_time == sealed_at, describe(report)


# -- §5 #14: seal constraints ----------------------------------------------------------------


def test_14_contract_seal_on_a_licence_pdf_outside_the_service(
    region: Region, seals: Seals, issued: lpb.LicenceCredential
) -> None:
    # The genuine licence PDF as rendered, before the service sealed it.
    unsealed = forgery.first_revision(issued.pdf)
    assert forgery.revisions(unsealed) == 1
    assert PdfFileReader(io.BytesIO(unsealed), strict=True).embedded_signatures == []
    identity = seal_identity(region, seals.contract)
    forged = forgery.seal_outside_service(unsealed, identity, LICENCE_PLACEMENT, "电子证照签发")
    (status,) = pyhanko_status(region, forged)
    assert status.bottom_line  # a genuine seal certificate under the region's root
    with pytest.raises(seal_pki.SealCertificateRejectedError) as rejected:
        seal_pki.check_seal_certificate(
            identity.certificate, root_of(region), purpose=LICENCE_PURPOSE
        )
    assert rejected.value.reason is seal_pki.SealRejection.PURPOSE_NOT_PERMITTED
    expect_pdf(verify_pdf(region, forged), "SEAL_PURPOSE_NOT_PERMITTED", "seal.purpose")


def test_14_licence_seal_used_outside_the_service_is_not_in_the_ledger(
    region: Region, seals: Seals, issued: lpb.LicenceCredential
) -> None:
    # The right seal for the right licence, but sealed with its stolen key: no ledger entry.
    identity = seal_identity(region, seals.licence)
    unsealed = forgery.first_revision(issued.pdf)
    forged = forgery.seal_outside_service(unsealed, identity, LICENCE_PLACEMENT, "电子证照签发")
    assert forgery.signing_certificate(forged) == forgery.signing_certificate(issued.pdf)
    (status,) = pyhanko_status(region, forged)
    assert status.bottom_line
    expect_pdf(verify_pdf(region, forged), "NOT_IN_LEDGER", "ledger.inclusion")


def test_14_seal_image_of_another_seal_is_signer_not_bound(region: Region, seals: Seals) -> None:
    # Department B's own seal key and certificate, showing department A's seal.
    identity = seal_identity(region, seals.contract_b, png=seals.contract.image_png)
    forged = forgery.seal_outside_service(plain_pdf(), identity, pades.Placement(2, *DOCUMENT_BOX))
    (status,) = pyhanko_status(region, forged)
    assert status.bottom_line
    assert forgery.signing_certificate(forged) == x509.load_der_x509_certificate(
        seals.contract_b.certificate.certificate
    )
    expect_pdf(verify_pdf(region, forged), "SEAL_SIGNER_NOT_BOUND", "seal.signer")
    # Genuine counterpart: department B seals with its own seal through the service.
    genuine = seal_document(region, seals.contract_b, plain_pdf(), region.dept_b).sealed_pdf
    expect_passed(verify_pdf(region, genuine), signatures=1)


def test_14_seal_used_before_its_validity(region: Region) -> None:
    # RegisterSeal accepts a future valid_from. The seal certificate's notBefore is that
    # same time, so pyHanko (judging the chain now) does not trust the signature yet; the
    # contract judges time in `seal.validity` (at the sealing time, here the validation
    # time, as the ledger has no entry), so the chain check is expected to pass and the
    # seal's validity to fail. A seal past its valid_until cannot be produced: the
    # registration refuses a validity that has already ended, and waiting out a short one
    # tests the same check.
    valid_from = later(3600)
    seal = new_seal(
        region,
        DEPT_A,
        seal_pb2.SEAL_TYPE_CONTRACT,
        "上海市市场监督管理局合同专用章（未启用）",
        valid_from=valid_from,
        permitted_purposes=["contract"],
    )
    assert seal.valid_from == valid_from
    refused = failure(
        region,
        region.dept_a,
        "SealDocument",
        sp.SealDocumentRequest(
            request_id=rid(),
            seal_id=seal.seal_id,
            pdf=plain_pdf(),
            placement=DOCUMENT_PLACEMENT,
            purpose="contract",
        ),
    )
    assert refused[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "SEAL_NOT_YET_VALID")
    identity = seal_identity(region, seal)
    forged = forgery.seal_outside_service(plain_pdf(), identity, pades.Placement(2, *DOCUMENT_BOX))
    (status,) = pyhanko_status(region, forged)
    assert (status.intact, status.valid) == (True, True)
    expect_pdf(verify_pdf(region, forged), "SEAL_OUTSIDE_VALIDITY", "seal.validity")


def test_14_suspended_seal_used_outside_the_service(region: Region) -> None:
    seal = new_seal(
        region, DEPT_A, seal_pb2.SEAL_TYPE_CONTRACT, "上海市市场监督管理局合同专用章（暂停）"
    )
    call(
        region,
        region.admin,
        "SuspendSeal",
        sp.SuspendSealRequest(request_id=rid(), seal_id=seal.seal_id, reason="调查中"),
    )
    forged = forgery.seal_outside_service(
        plain_pdf(), seal_identity(region, seal), pades.Placement(2, *DOCUMENT_BOX)
    )
    expect_pdf(verify_pdf(region, forged), "SEAL_SUSPENDED", "seal.status")


# -- §5 #19: the same number twice ------------------------------------------------------------


def test_19_the_same_licence_number_twice_is_refused(region: Region) -> None:
    first = call(region, region.dept_a, "IssueLicence", issue_request("JY-TWICE-1")).credential
    size = ledger_size(region)
    for identity in (region.dept_a, region.dept_b):
        got = failure(region, identity, "IssueLicence", issue_request("JY-TWICE-1"))
        assert got[:2] == (grpc.StatusCode.ALREADY_EXISTS, "LICENCE_NUMBER_ALREADY_ISSUED")
    assert ledger_size(region) == size
    expect_passed(verify_credential(region, first.envelope))


# -- malformed input -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["VerifyCredential", "VerifyQrCode", "VerifyPdf"])
def test_empty_input_is_invalid_argument(region: Region, method: str) -> None:
    request = getattr(vpb, f"{method}Request")()
    code, _, _ = failure(region, None, method, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def _random(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


Make = Callable[[lpb.LicenceCredential], bytes]
MALFORMED_CREDENTIALS: dict[str, Make] = {
    "random-bytes": lambda issued: _random(512, 1),
    "not-utf8": lambda issued: b"\xff\xfe" + issued.envelope[2:],
    "truncated-json": lambda issued: issued.envelope[: len(issued.envelope) // 2],
    "wrong-types": lambda issued: b'{"payload":5,"payloadType":["x"],"signatures":"none"}',
    "json-array": lambda issued: b"[1,2,3]",
    "bad-base64": lambda issued: issued.envelope.replace(b'"payload":"', b'"payload":"!', 1),
    "no-signatures": lambda issued: (
        issued.envelope.split(b',"signatures"')[0] + b',"signatures":[]}'
    ),
}
MALFORMED_QR: dict[str, Make] = {
    "garbage": lambda issued: b"LL1:!!!",
    "random-bytes": lambda issued: _random(300, 2),
    "no-prefix": lambda issued: issued.qr_payload[4:],
    "base45-of-junk": lambda issued: b"LL1:" + qr.base45_encode(_random(200, 3)).encode(),
    "truncated": lambda issued: issued.qr_payload[:-7],
}
MALFORMED_PDFS: dict[str, Make] = {
    "truncated-half": lambda issued: forgery.truncated(issued.pdf),
    "broken-xref": lambda issued: forgery.broken_xref(issued.pdf),
    "header-only": lambda issued: b"%PDF-1.7\nnot really",
    "random-bytes": lambda issued: _random(4096, 4),
}


@pytest.mark.parametrize("kind", list(MALFORMED_CREDENTIALS))
def test_malformed_credential(region: Region, issued: lpb.LicenceCredential, kind: str) -> None:
    data = MALFORMED_CREDENTIALS[kind](issued)
    with pytest.raises(dsse.MalformedEnvelopeError):
        dsse.parse_envelope(data)
    expect(verify_credential(region, data), "TOTAL_FAILED", "MALFORMED_INPUT", "input.format")


@pytest.mark.parametrize("kind", list(MALFORMED_QR))
def test_malformed_qr_code(region: Region, issued: lpb.LicenceCredential, kind: str) -> None:
    data = MALFORMED_QR[kind](issued)
    with pytest.raises(qr.MalformedQrError):
        qr.decode_qr(data)
    expect(verify_qr(region, data), "TOTAL_FAILED", "MALFORMED_INPUT", "input.format")


@pytest.mark.parametrize("kind", list(MALFORMED_PDFS))
def test_malformed_pdf(region: Region, issued: lpb.LicenceCredential, kind: str) -> None:
    data = MALFORMED_PDFS[kind](issued)
    with pytest.raises(pades.PdfRejectedError):
        pades.inspect_pdf(data)
    expect(verify_pdf(region, data), "TOTAL_FAILED", "MALFORMED_INPUT", "input.format")


@pytest.mark.parametrize("method", ["VerifyCredential", "VerifyQrCode", "VerifyPdf"])
def test_oversized_input_is_refused_or_malformed_never_a_server_error(
    region: Region, method: str
) -> None:
    size = {"VerifyCredential": 2 << 20, "VerifyQrCode": 4096, "VerifyPdf": 20 << 20}[method]
    data = b"%PDF-1.7\n" + bytes(size) if method == "VerifyPdf" else b"A" * size
    field = {"VerifyCredential": "envelope", "VerifyQrCode": "payload", "VerifyPdf": "pdf"}[method]
    request = getattr(vpb, f"{method}Request")(**{field: data})
    code: grpc.StatusCode | None = None
    try:
        report = call(region, None, method, request).report
    except grpc.aio.AioRpcError as error:
        code = error.code()
    if code is None:
        expect(report, "TOTAL_FAILED", "MALFORMED_INPUT", "input.format")
    else:
        assert code == grpc.StatusCode.INVALID_ARGUMENT


# -- §5 #18: the ledger altered on disk (its own region: it stops and restarts the server) ----


@pytest.fixture(scope="module")
def ledger_region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    opened = open_region(tmp_path_factory, "corpus-ledger")
    yield opened
    close_region(opened)


def test_18_ledger_altered_on_disk(ledger_region: Region) -> None:
    region = ledger_region
    earlier = call(region, region.dept_a, "IssueLicence", issue_request("JY-DISK-0")).credential
    credential = call(region, region.dept_a, "IssueLicence", issue_request("JY-DISK-1")).credential
    expect_passed(verify_credential(region, credential.envelope))
    index = credential.proof.leaf_index
    assert region.server.stop() == 0
    # Rewrite who issued the licence in its ledger record, through RocksDB itself (its own
    # checksums stay valid): department A becomes department B.
    path = region.server.data.ledger_path
    families = {name: Options(raw_mode=True) for name in Rdict.list_cf(str(path))}
    db = Rdict(str(path), options=Options(raw_mode=True), column_families=families)
    try:
        leaves = db.get_column_family("leaves")
        key = index.to_bytes(8, "big")
        leaf = leaves[key]
        assert isinstance(leaf, bytes)
        forged = forgery.rewrite_in_leaf(
            leaf, f"department:{DEPT_A}".encode(), f"department:{DEPT_B}".encode()
        )
        record = record_pb2.LedgerRecord.FromString(forged[32:])
        assert record.actor == f"department:{DEPT_B}"
        assert record.licence_version_issued.envelope == credential.envelope
        leaves[key] = forged
        # A column family handle keeps the database (and its LOCK) open after close().
        del leaves
    finally:
        db.close()
    audited = subprocess.run(
        [*CLI, "ledger", "audit", str(region.server.data.root), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        check=False,
    )
    assert audited.returncode == 1, audited.stdout + audited.stderr
    assert f"first bad index: {index}" in audited.stdout, audited.stdout
    region.server.start()
    report = verify_credential(region, credential.envelope)
    expect(report, "TOTAL_FAILED", "LEDGER_PROOF_INVALID", "ledger.inclusion")
    # The entries before it still verify: the verifier names the altered one only.
    expect_passed(verify_credential(region, earlier.envelope))


def test_re_encoding_builders_keep_the_issuers_encoding() -> None:
    # The builders that re-encode keep the issuer's compact JSON and canonical QR form, so a
    # verifier cannot tell them from genuine ones by their shape.
    key = Ed25519PrivateKey.generate()
    licence = lpb.Licence(licence_id="x", holder=lpb.Holder(name="甲"))
    envelope = forgery.sign_licence(licence, key)
    assert forgery.envelope_with_holder_name(envelope, "甲") == envelope
    payload = forgery.sign_qr(licence, key, 7)
    assert forgery.qr_with_holder_name(payload, "甲") == payload
    assert forgery.first_revision(plain_pdf()) == plain_pdf()
