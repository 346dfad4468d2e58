"""Seal certificates: issuance, the scope extension's DER, every rejection, pyHanko."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import partial
from io import BytesIO
from typing import Any

import pytest
from asn1crypto import core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.pdfgen import canvas

from signer._x509 import _der_tlv, encode_utf8_sequence, key_usage
from signer.pki import (
    SEAL_SCOPE_EXTENSION,
    CertificateRejectedError,
    PkiInputError,
    RegionCA,
    Rejection,
    check_department_certificate,
    create_region_ca,
    issue_department_certificate,
)
from signer.seal_pki import (
    DOCUMENT_SIGNING_EKU,
    SEAL_SIGNING_EKU,
    SEAL_URI_PREFIX,
    SealCertificateRejectedError,
    SealRejection,
    SealScope,
    check_seal_certificate,
    decode_seal_scope,
    encode_seal_scope,
    issue_seal_certificate,
    seal_scope_of,
)

NOW = datetime.now(UTC).replace(microsecond=0)
CA_MADE = NOW - timedelta(days=30)
DEPARTMENT = "11310000002419612H"
OTHER_DEPARTMENT = "11310000MB0000001A"
SEAL_ID = "31000000000001"
SEAL_NAME = "上海市市场监督管理局证照专用章"
DEPARTMENT_NAME = "上海市市场监督管理局"
SCOPE = SealScope(
    SEAL_ID, DEPARTMENT, "SEAL_TYPE_LICENCE_ISSUING", ("approval_notice", "licence"), ("A1", "B2")
)


@pytest.fixture(scope="module")
def ca() -> RegionCA:
    return create_region_ca("310000", "上海市", now=CA_MADE)


@pytest.fixture(scope="module")
def p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _issue(
    ca: RegionCA,
    scope: SealScope = SCOPE,
    *,
    key: Any = None,
    not_before: datetime = NOW - timedelta(days=1),
    not_after: datetime = NOW + timedelta(days=365),
) -> x509.Certificate:
    public = key if key is not None else ec.generate_private_key(ec.SECP256R1()).public_key()
    issued = issue_seal_certificate(
        ca, scope, SEAL_NAME, DEPARTMENT_NAME, public, not_before=not_before, not_after=not_after
    )
    return issued.certificate


def _rejected(reason: Rejection | SealRejection, check: Callable[[], object]) -> str:
    with pytest.raises(SealCertificateRejectedError) as info:
        check()
    assert info.value.reason is reason
    assert isinstance(info.value, CertificateRejectedError)
    assert str(info.value).startswith(f"{reason.value}: ")
    return str(info.value)


# --- issuance ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["p256", "ed25519"])
def test_issue_and_check_round_trip(ca: RegionCA, kind: str) -> None:
    private = ec.generate_private_key(ec.SECP256R1()) if kind == "p256" else None
    key = private.public_key() if private else Ed25519PrivateKey.generate().public_key()
    not_before, not_after = NOW - timedelta(hours=1), NOW + timedelta(days=90)
    issued = issue_seal_certificate(
        ca, SCOPE, SEAL_NAME, DEPARTMENT_NAME, key, not_before=not_before, not_after=not_after
    )
    cert = issued.certificate
    assert issued.chain == (ca.certificate,)
    assert issued.key is None
    assert check_seal_certificate(cert, ca.certificate) == SCOPE
    assert seal_scope_of(cert) == SCOPE
    assert cert.public_key() == key
    assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (not_before, not_after)

    def subject(oid: x509.ObjectIdentifier) -> list[object]:
        return [a.value for a in cert.subject.get_attributes_for_oid(oid)]

    assert subject(NameOID.COUNTRY_NAME) == ["CN"]
    assert subject(NameOID.ORGANIZATION_NAME) == [DEPARTMENT_NAME]
    assert subject(NameOID.ORGANIZATION_IDENTIFIER) == [f"NTRCN-{DEPARTMENT}"]
    assert subject(NameOID.COMMON_NAME) == [SEAL_NAME]
    assert subject(NameOID.SERIAL_NUMBER) == [SEAL_ID]
    assert cert.issuer == ca.certificate.subject

    extensions = cert.extensions
    san = extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [
        f"urn:licence-ledger:seal:{SEAL_ID}"
    ]
    assert list(san.value) == [x509.UniformResourceIdentifier(SEAL_URI_PREFIX + SEAL_ID)]
    eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert list(eku.value) == [DOCUMENT_SIGNING_EKU, SEAL_SIGNING_EKU]
    assert DOCUMENT_SIGNING_EKU.dotted_string == "1.3.6.1.5.5.7.3.36"
    assert not eku.critical
    usage = extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value == key_usage(digital_signature=True, content_commitment=True)
    basic = extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical
    assert not basic.value.ca
    scope_extension = extensions.get_extension_for_oid(SEAL_SCOPE_EXTENSION)
    assert not scope_extension.critical
    extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)


def test_serials_are_random(ca: RegionCA) -> None:
    assert _issue(ca).serial_number != _issue(ca).serial_number


def test_scope_lists_are_sorted_and_deduplicated() -> None:
    scope = SealScope(SEAL_ID, DEPARTMENT, "SEAL_TYPE_OFFICIAL", ("z", "a", "z"), ["B", "A"])  # type: ignore[arg-type]
    assert scope.purposes == ("a", "z")
    assert scope.licence_type_codes == ("A", "B")
    assert scope == SealScope(SEAL_ID, DEPARTMENT, "SEAL_TYPE_OFFICIAL", ("a", "z"), ("A", "B"))


def test_certificates_without_a_seal_scope(ca: RegionCA, p256: ec.EllipticCurvePrivateKey) -> None:
    department = issue_department_certificate(
        ca, DEPARTMENT, DEPARTMENT_NAME, p256.public_key(), ["A1"]
    )
    assert seal_scope_of(ca.certificate) is None
    assert seal_scope_of(department.certificate) is None


def test_a_seal_certificate_is_not_a_licence_signer(ca: RegionCA) -> None:
    with pytest.raises(CertificateRejectedError) as info:
        check_department_certificate(_issue(ca), ca.certificate)
    assert info.value.reason is Rejection.NOT_FOR_LICENCE_SIGNING


# --- rejections -------------------------------------------------------------------------


def test_other_ca_with_the_same_name(ca: RegionCA) -> None:
    impostor = create_region_ca("310000", "上海市", now=CA_MADE)
    assert impostor.certificate.subject == ca.certificate.subject
    cert = _issue(impostor)
    _rejected(Rejection.NOT_ISSUED_BY_CA, lambda: check_seal_certificate(cert, ca.certificate))


def test_validity_is_checked_at_the_time_of_use(ca: RegionCA) -> None:
    start, end = NOW - timedelta(days=10), NOW - timedelta(days=5)
    cert = _issue(ca, not_before=start, not_after=end)
    _rejected(Rejection.EXPIRED, lambda: check_seal_certificate(cert, ca.certificate))
    _rejected(
        Rejection.NOT_YET_VALID,
        lambda: check_seal_certificate(cert, ca.certificate, at=start - timedelta(seconds=1)),
    )
    for at in (start, end, NOW - timedelta(days=7)):
        assert check_seal_certificate(cert, ca.certificate, at=at) == SCOPE


def test_department_certificate_is_not_for_sealing(
    ca: RegionCA, p256: ec.EllipticCurvePrivateKey
) -> None:
    department = issue_department_certificate(
        ca, DEPARTMENT, DEPARTMENT_NAME, p256.public_key(), ["A1"]
    )
    message = _rejected(
        SealRejection.NOT_FOR_SEALING,
        lambda: check_seal_certificate(department.certificate, ca.certificate),
    )
    assert SEAL_SIGNING_EKU.dotted_string in message


def test_the_ca_itself_is_not_a_seal(ca: RegionCA) -> None:
    _rejected(Rejection.IS_CA, lambda: check_seal_certificate(ca.certificate, ca.certificate))


def test_expectations(ca: RegionCA) -> None:
    cert = _issue(ca)
    accepted = check_seal_certificate(
        cert,
        ca.certificate,
        seal_id=SEAL_ID,
        department_code=DEPARTMENT,
        purpose="licence",
        licence_type_code="B2",
        at=NOW,
    )
    assert accepted == SCOPE
    cases: list[tuple[SealRejection, dict[str, Any]]] = [
        (SealRejection.WRONG_SEAL, {"seal_id": "31000000000002"}),
        (SealRejection.WRONG_DEPARTMENT, {"department_code": OTHER_DEPARTMENT}),
        (SealRejection.PURPOSE_NOT_PERMITTED, {"purpose": "contract"}),
        (SealRejection.LICENCE_TYPE_NOT_PERMITTED, {"licence_type_code": "C3"}),
    ]
    for reason, expectation in cases:
        _rejected(reason, partial(check_seal_certificate, cert, ca.certificate, **expectation))


def test_empty_purposes_permit_any_but_empty_licence_types_permit_none(ca: RegionCA) -> None:
    scope = dataclasses.replace(SCOPE, purposes=(), licence_type_codes=())
    cert = _issue(ca, scope)
    assert check_seal_certificate(cert, ca.certificate, purpose="anything_at_all") == scope
    _rejected(
        SealRejection.LICENCE_TYPE_NOT_PERMITTED,
        lambda: check_seal_certificate(cert, ca.certificate, licence_type_code="A1"),
    )


def _forge(
    ca: RegionCA, scope_der: bytes, *, uris: Sequence[str] = (), serial: str = SEAL_ID
) -> x509.Certificate:
    """A seal certificate made by hand with the CA's key, to hold what we never issue."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEPARTMENT_NAME),
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"NTRCN-{DEPARTMENT}"),
            x509.NameAttribute(NameOID.COMMON_NAME, SEAL_NAME),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
        ]
    )
    san = [x509.UniformResourceIdentifier(u) for u in uris or [SEAL_URI_PREFIX + SEAL_ID]]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True, content_commitment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([DOCUMENT_SIGNING_EKU, SEAL_SIGNING_EKU]), False)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.UnrecognizedExtension(SEAL_SCOPE_EXTENSION, scope_der), False)
    )
    return builder.sign(ca.private_key, hashes.SHA256())


def test_a_faithful_forgery_is_accepted(ca: RegionCA) -> None:
    # Proves _forge builds a valid certificate, so the rejections below are for one flaw.
    assert check_seal_certificate(_forge(ca, encode_seal_scope(SCOPE)), ca.certificate) == SCOPE


@pytest.mark.parametrize(
    "scope_der",
    [
        b"\x04\x03bad",
        b"\x30\x00",
        encode_seal_scope(SCOPE)[:-1] + b"\x00",
        encode_utf8_sequence([]),
    ],
)
def test_corrupt_scope_extension_is_malformed(ca: RegionCA, scope_der: bytes) -> None:
    cert = _forge(ca, scope_der)
    with pytest.raises(PkiInputError):
        seal_scope_of(cert)
    _rejected(Rejection.MALFORMED, lambda: check_seal_certificate(cert, ca.certificate))


def test_names_must_agree_with_the_scope(ca: RegionCA) -> None:
    other_scope = encode_seal_scope(dataclasses.replace(SCOPE, seal_id="31000000000002"))
    department_uri = f"urn:licence-ledger:department:{DEPARTMENT}"
    forgeries = [
        _forge(ca, other_scope),  # SAN and serialNumber name another seal
        _forge(ca, encode_seal_scope(SCOPE), serial="31000000000002"),
        _forge(ca, encode_seal_scope(SCOPE), uris=[SEAL_URI_PREFIX + SEAL_ID, department_uri]),
        _forge(ca, encode_seal_scope(SCOPE), uris=[SEAL_URI_PREFIX.upper() + SEAL_ID]),
        _forge(
            ca,
            encode_seal_scope(dataclasses.replace(SCOPE, owner_department_code=OTHER_DEPARTMENT)),
        ),
    ]
    for cert in forgeries:
        _rejected(Rejection.MALFORMED, partial(check_seal_certificate, cert, ca.certificate))


# --- input validation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [
        {"seal_id": "seal 1"},
        {"seal_id": "seal_1"},  # X.520 serialNumber is a PrintableString: no "_"
        {"seal_id": "-1"},
        {"seal_id": "印章1"},
        {"seal_id": "1" * 65},
        {"owner_department_code": "11310000002419612I"},
        {"seal_type": "seal_type_official"},
        {"purposes": ("Contract",)},
        {"purposes": "contract"},
        {"licence_type_codes": ("a1",)},
    ],
)
def test_bad_scopes_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(PkiInputError):
        dataclasses.replace(SCOPE, **changes)  # type: ignore[arg-type]


def test_bad_issuance_arguments_are_refused(ca: RegionCA, p256: ec.EllipticCurvePrivateKey) -> None:
    ca_until = ca.certificate.not_valid_after_utc
    bad_windows = [
        {"not_after": ca_until + timedelta(seconds=1)},
        {"not_before": ca.certificate.not_valid_before_utc - timedelta(seconds=1)},
        {"not_before": NOW, "not_after": NOW},
        {"not_before": NOW.replace(microsecond=1), "not_after": NOW.replace(microsecond=9)},
        {"not_before": NOW.replace(tzinfo=None)},
        {"not_after": (NOW + timedelta(days=1)).replace(tzinfo=None)},
    ]
    for window in bad_windows:
        with pytest.raises(PkiInputError):
            _issue(ca, key=p256.public_key(), **window)  # type: ignore[arg-type]
    key = p256.public_key()
    good = {"not_before": NOW, "not_after": NOW + timedelta(days=1)}
    for seal_name, department_name in [
        ("", DEPARTMENT_NAME),
        ("章" * 65, DEPARTMENT_NAME),
        (SEAL_NAME, "a\nb"),
    ]:
        with pytest.raises(PkiInputError):
            issue_seal_certificate(ca, SCOPE, seal_name, department_name, key, **good)
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(PkiInputError):
        issue_seal_certificate(ca, SCOPE, SEAL_NAME, DEPARTMENT_NAME, p384, **good)


def test_window_up_to_the_ca_and_in_other_time_zones(ca: RegionCA) -> None:
    shanghai = timezone(timedelta(hours=8))
    end = ca.certificate.not_valid_after_utc
    cert = _issue(ca, not_before=NOW.astimezone(shanghai).replace(microsecond=5), not_after=end)
    assert cert.not_valid_before_utc == NOW  # X.509 has whole seconds
    # Usable at once: a seal registered "now" must not be refused for a split second.
    assert check_seal_certificate(cert, ca.certificate, at=NOW.replace(microsecond=5))
    assert cert.not_valid_after_utc == end


def test_bad_check_arguments_are_refused(ca: RegionCA) -> None:
    cert = _issue(ca)
    bad: list[dict[str, Any]] = [
        {"seal_id": "a b"},
        {"department_code": "x"},
        {"purpose": "Contract"},
        {"licence_type_code": "a1"},
        {"at": NOW.replace(tzinfo=None)},
    ]
    for arguments in bad:
        with pytest.raises(PkiInputError):
            check_seal_certificate(cert, ca.certificate, **arguments)
    with pytest.raises(PkiInputError):
        check_seal_certificate(cert, cert)  # not a CA


# --- the scope's DER --------------------------------------------------------------------

_scopes = st.builds(
    SealScope,
    st.from_regex(r"[0-9A-Za-z][0-9A-Za-z.-]{0,63}", fullmatch=True),
    st.from_regex(r"[0-9A-HJ-NPQRTUWXY]{18}", fullmatch=True),
    st.from_regex(r"[A-Z_]{1,40}", fullmatch=True),
    st.lists(st.from_regex(r"[a-z0-9_]{1,40}", fullmatch=True), max_size=5).map(tuple),
    st.lists(st.from_regex(r"[0-9A-Z]{1,32}", fullmatch=True), max_size=5).map(tuple),
)


class _Strings(core.SequenceOf):  # type: ignore[misc]
    _child_spec = core.UTF8String


class _Scope(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("seal_id", core.UTF8String),
        ("owner", core.UTF8String),
        ("seal_type", core.UTF8String),
        ("purposes", _Strings),
        ("licence_types", _Strings),
    ]


@given(_scopes)
def test_der_round_trips_and_parses_independently(scope: SealScope) -> None:
    der = encode_seal_scope(scope)
    assert decode_seal_scope(der) == scope
    parsed = _Scope.load(der, strict=True).native
    assert parsed["seal_id"] == scope.seal_id
    assert tuple(parsed["purposes"]) == scope.purposes
    assert tuple(parsed["licence_types"]) == scope.licence_type_codes


@given(_scopes, st.binary(min_size=1, max_size=3))
def test_der_decoder_refuses_truncations_and_trailing_bytes(scope: SealScope, extra: bytes) -> None:
    der = encode_seal_scope(scope)
    for end in range(len(der)):
        with pytest.raises(PkiInputError):
            decode_seal_scope(der[:end])
    with pytest.raises(PkiInputError):
        decode_seal_scope(der + extra)
    # Trailing bytes inside the SEQUENCE too: a sixth element.
    inner = der[2:] if der[1] < 0x80 else der[2 + (der[1] & 0x7F) :]
    with pytest.raises(PkiInputError):
        decode_seal_scope(_der_tlv(0x30, inner + b"\x0c\x00"))


def test_der_decoder_refuses_other_encodings_of_a_scope() -> None:
    def der(*parts: bytes) -> bytes:
        return _der_tlv(0x30, b"".join(parts))

    def utf8(s: str) -> bytes:
        return _der_tlv(0x0C, s.encode())

    head = utf8(SEAL_ID) + utf8(DEPARTMENT) + utf8("SEAL_TYPE_OFFICIAL")
    assert decode_seal_scope(der(head, encode_utf8_sequence(["a", "b"]), encode_utf8_sequence([])))
    for bad in [
        der(head, encode_utf8_sequence(["b", "a"]), encode_utf8_sequence([])),  # unsorted
        der(head, encode_utf8_sequence(["a", "a"]), encode_utf8_sequence([])),  # repeated
        der(head, encode_utf8_sequence([])),  # missing licenceTypes
        der(head.replace(b"\x0c", b"\x13", 1), encode_utf8_sequence([]) * 2),  # PrintableString
        der(head, encode_utf8_sequence(["a"]), encode_utf8_sequence(["a1"])),  # bad code
        der(head, encode_utf8_sequence([]), b"\x31\x00"),  # a SET
        der(
            utf8(SEAL_ID)[:2] + b"\xff" * len(SEAL_ID), utf8(DEPARTMENT), utf8("X"), b"\x30\x00" * 2
        ),
    ]:
        with pytest.raises(PkiInputError):
            decode_seal_scope(bad)


# --- pyHanko interoperability -----------------------------------------------------------


def test_pyhanko_signs_and_validates_with_a_seal_certificate(
    ca: RegionCA, p256: ec.EllipticCurvePrivateKey
) -> None:
    cert = _issue(ca, key=p256.public_key())
    page = BytesIO()
    pdf = canvas.Canvas(page)
    pdf.drawString(72, 720, "licence-ledger seal test")
    pdf.save()

    def asn1_cert(c: x509.Certificate) -> Any:
        return asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER))

    root = asn1_cert(ca.certificate)
    pkcs8 = p256.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    signer = signers.SimpleSigner(
        asn1_cert(cert),
        asn1_keys.PrivateKeyInfo.load(pkcs8),
        SimpleCertificateStore.from_certs([root]),  # type: ignore[no-untyped-call]
    )
    metadata = signers.PdfSignatureMetadata(
        field_name="Seal1", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    signed = signers.sign_pdf(IncrementalPdfFileWriter(page), metadata, signer=signer)
    reader = PdfFileReader(signed)
    status = validate_pdf_signature(
        reader.embedded_signatures[0], ValidationContext(trust_roots=[root])
    )
    assert status.bottom_line, status.summary()
