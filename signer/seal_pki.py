"""Seal certificates: the region root certifies an electronic seal's signing key.

Modelled on GB/T 38540 / GM/T 0031 ``SES_Seal``: the certificate binds the seal's key
to the seal id, its owner department and its permitted uses, and PDF signatures made
with it are ordinary PAdES signatures that pyHanko validates. Decisions to know:

* **End entity straight from the root**, like department certificates.
* **Subject** ``C=CN, O=<department>, organizationIdentifier=NTRCN-<USCC>,
  CN=<seal name>, serialNumber=<seal id>``. X.520 makes serialNumber a
  PrintableString, which has no ``_`` (cryptography refuses to sign one, strict
  parsers refuse to read one), so seal ids are ``[0-9A-Za-z][0-9A-Za-z.-]{0,63}``.
* **SAN** ``urn:licence-ledger:seal:<seal id>``, the only URI of ours in the
  certificate. It sits under `pki.ROLE_URI_PREFIX` but grants no login: no clientAuth.
* **Usage**: keyUsage digitalSignature + contentCommitment (critical; pyHanko wants
  nonRepudiation of signers); EKU RFC 9336 documentSigning, which generic validators
  understand, and `SEAL_SIGNING_EKU`, which `check_seal_certificate` insists on. No
  anyExtendedKeyUsage and no `LICENCE_SIGNING_EKU`: a seal is not a department.
* **Scope**: the non-critical `SEAL_SCOPE_EXTENSION`, DER ``SEQUENCE { sealId,
  ownerDepartment, sealType UTF8String, purposes, licenceTypes SEQUENCE OF
  UTF8String }`` with sorted, unique lists, so one scope has one encoding. Critical
  would make OpenSSL and pyHanko refuse the certificate; we enforce it ourselves.
* **Validity** is what the caller asks, truncated to whole seconds, within the
  CA's own. X.509's notAfter is inclusive (the proto's valid_until is not).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from itertools import pairwise

from cryptography import x509
from cryptography.x509.oid import NameOID

from signer import _x509, pki
from signer._x509 import _SEQUENCE, _UTF8_STRING, _der_tlv, _read_tlv
from signer.pki import (
    DEPARTMENT_ID_PREFIX,
    LICENCE_LEDGER_OID_ARC,
    ROLE_URI_PREFIX,
    SEAL_SCOPE_EXTENSION,
    CertificateRejectedError,
    IssuedCertificate,
    PkiError,
    PkiInputError,
    PublicKey,
    RegionCA,
    Rejection,
)

SEAL_SIGNING_EKU = x509.ObjectIdentifier(f"{LICENCE_LEDGER_OID_ARC}.4")
DOCUMENT_SIGNING_EKU = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")  # RFC 9336
SEAL_URI_PREFIX = "urn:licence-ledger:seal:"

_SEAL_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z.-]{0,63}")
# The same forms signer.pki checks for department and licence type codes.
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")
_LICENCE_TYPE = re.compile(r"[0-9A-Z]{1,32}")
_SEAL_TYPE = re.compile(r"[A-Z_]{1,40}")
_PURPOSE = re.compile(r"[a-z0-9_]{1,40}")
_MAX_NAME = 64  # X.520 upper bound for O and CN
_SEAL_USAGE = _x509.key_usage(digital_signature=True, content_commitment=True)


class SealRejection(StrEnum):
    """Why a certificate is refused as a seal's, beyond the reasons in `pki.Rejection`."""

    NOT_FOR_SEALING = "NOT_FOR_SEALING"
    WRONG_SEAL = "WRONG_SEAL"
    WRONG_DEPARTMENT = "WRONG_DEPARTMENT"
    PURPOSE_NOT_PERMITTED = "PURPOSE_NOT_PERMITTED"
    LICENCE_TYPE_NOT_PERMITTED = "LICENCE_TYPE_NOT_PERMITTED"


class SealCertificateRejectedError(CertificateRejectedError):
    """A seal certificate is refused; `reason` is a `Rejection` or a `SealRejection`."""

    # Wider than the base's `Rejection`: pki.py may not be edited, and both enums are
    # StrEnums, so code reading `reason.value` works for either.
    reason: Rejection | SealRejection  # type: ignore[assignment]

    def __init__(self, reason: Rejection | SealRejection, message: str) -> None:
        # The base __init__ only admits a Rejection; format its message the same way.
        PkiError.__init__(self, f"{reason.value}: {message}")
        self.reason = reason


_Rejected = SealCertificateRejectedError


def _check(what: str, pattern: re.Pattern[str], form: str, value: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PkiInputError(f"{what} must be {form}, not {value!r}")
    return value


_check_seal_id = partial(_check, "seal id", _SEAL_ID, "1 to 64 ASCII letters, digits, '.' or '-'")
_check_department_code = partial(_check, "department code", _USCC, "a unified social credit code")
_check_seal_type = partial(_check, "seal type", _SEAL_TYPE, "1 to 40 of A-Z and '_'")
_check_purpose = partial(_check, "purpose", _PURPOSE, "1 to 40 of a-z, 0-9 and '_'")
_check_licence_type = partial(_check, "licence type", _LICENCE_TYPE, "1 to 32 of 0-9 and A-Z")


def _sorted_unique(
    what: str, values: Iterable[str], check: Callable[[str], str]
) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Iterable):
        # A bare string is a sequence of characters: "A1" would become "A" and "1".
        raise PkiInputError(f"{what} must be a tuple of codes, not {values!r}")
    return tuple(sorted({check(v) for v in values}))


@dataclass(frozen=True)
class SealScope:
    """What a seal certificate allows. Construction validates every field.

    `purposes` and `licence_type_codes` may be given in any order and with repeats:
    they are stored sorted and unique, so equal scopes compare (and encode) equal.
    Empty `purposes` permits any purpose of the seal's type; empty
    `licence_type_codes` permits no licence type.
    """

    seal_id: str
    owner_department_code: str
    seal_type: str
    purposes: tuple[str, ...]
    licence_type_codes: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_seal_id(self.seal_id)
        _check_department_code(self.owner_department_code)
        _check_seal_type(self.seal_type)
        purposes = _sorted_unique("purposes", self.purposes, _check_purpose)
        types = _sorted_unique("licence_type_codes", self.licence_type_codes, _check_licence_type)
        object.__setattr__(self, "purposes", purposes)
        object.__setattr__(self, "licence_type_codes", types)


def encode_seal_scope(scope: SealScope) -> bytes:
    """The DER of `scope`, as the `SEAL_SCOPE_EXTENSION` value holds it."""
    strings = (scope.seal_id, scope.owner_department_code, scope.seal_type)
    content = b"".join(_der_tlv(_UTF8_STRING, s.encode("utf-8")) for s in strings)
    content += _x509.encode_utf8_sequence(scope.purposes)
    content += _x509.encode_utf8_sequence(scope.licence_type_codes)
    return _der_tlv(_SEQUENCE, content)


def decode_seal_scope(der: bytes) -> SealScope:
    """The scope in `der`, which must be exactly what `encode_seal_scope` writes.

    Anything else (other tags, trailing bytes, unsorted or repeated list items, a value
    outside its pattern) is a `PkiInputError`.
    """
    try:
        tag, content, end = _read_tlv(der, 0)
        if tag != _SEQUENCE or end != len(der):
            raise ValueError("not a single DER SEQUENCE")
        strings: list[str] = []
        offset = 0
        for _ in range(3):
            tag, value, offset = _read_tlv(content, offset)
            if tag != _UTF8_STRING:
                raise ValueError(f"expected a UTF8String, found tag 0x{tag:02x}")
            strings.append(value.decode("utf-8"))
        lists: list[tuple[str, ...]] = []
        for _ in range(2):
            start = offset
            _, _, offset = _read_tlv(content, offset)
            items = _x509.decode_utf8_sequence(content[start:offset])
            # SealScope would sort them, hiding a second encoding of the same scope.
            if any(a >= b for a, b in pairwise(items)):
                raise ValueError("list items are not sorted and unique")
            lists.append(tuple(items))
        if offset != len(content):
            raise ValueError("elements after licenceTypes")
        return SealScope(strings[0], strings[1], strings[2], lists[0], lists[1])
    except ValueError as exc:  # PkiInputError and UnicodeDecodeError included
        raise PkiInputError(f"malformed seal scope: {exc}") from exc


def seal_uri(seal_id: str) -> str:
    """The SAN URI naming a seal, e.g. ``urn:licence-ledger:seal:31000000000001``."""
    return SEAL_URI_PREFIX + _check_seal_id(seal_id)


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise PkiInputError(f"{what} must be non-empty without surrounding spaces: {value!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        # A newline in a subject would let one name print as two in logs and reports.
        raise PkiInputError(f"{what} must not contain control characters: {value!r}")
    if len(value) > _MAX_NAME:
        raise PkiInputError(f"{what} is {len(value)} characters; X.509 allows {_MAX_NAME}")
    return value


def _utc(what: str, value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        # A naive time is off by the local UTC offset; guessing would mis-date the seal.
        raise PkiInputError(f"{what} must be a timezone-aware datetime, not {value!r}")
    return value.astimezone(UTC)


def _window(
    ca: x509.Certificate, not_before: datetime, not_after: datetime
) -> tuple[datetime, datetime]:
    # X.509 times have whole seconds. Truncating not_before too (rather than rounding up)
    # keeps a seal registered "now" usable at once, as its registration time says.
    start = _utc("not_before", not_before).replace(microsecond=0)
    end = _utc("not_after", not_after).replace(microsecond=0)
    if end <= start:
        raise PkiInputError(f"not_after {end:%Y-%m-%d %H:%M:%S}Z must be after not_before")
    ca_from, ca_until = ca.not_valid_before_utc, ca.not_valid_after_utc
    if start < ca_from or end > ca_until:
        raise PkiInputError(
            f"the seal's validity must lie within the CA's, {ca_from:%Y-%m-%d %H:%M:%S}Z "
            f"to {ca_until:%Y-%m-%d %H:%M:%S}Z"
        )
    return start, end


def issue_seal_certificate(
    ca: RegionCA,
    scope: SealScope,
    seal_name: str,
    department_name: str,
    public_key: PublicKey,
    *,
    not_before: datetime,
    not_after: datetime,
) -> IssuedCertificate:
    """A certificate binding the seal's Ed25519 or P-256 key to `scope`, for that window.

    The seal's holder keeps the private key, so the result carries none.
    """
    if not isinstance(scope, SealScope):
        raise PkiInputError(f"scope must be a SealScope, not {type(scope).__name__}")
    _check_name("seal name", seal_name)
    _check_name("department name", department_name)
    try:
        key = _x509.require_ed25519_or_p256(public_key)
    except ValueError as exc:
        raise PkiInputError(str(exc)) from exc
    window = _window(ca.certificate, not_before, not_after)
    subject = _x509.name(
        [
            (NameOID.COUNTRY_NAME, "CN"),
            (NameOID.ORGANIZATION_NAME, department_name),
            (NameOID.ORGANIZATION_IDENTIFIER, DEPARTMENT_ID_PREFIX + scope.owner_department_code),
            (NameOID.COMMON_NAME, seal_name),
            (NameOID.SERIAL_NUMBER, scope.seal_id),
        ]
    )
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (_SEAL_USAGE, True),
        (x509.ExtendedKeyUsage([DOCUMENT_SIGNING_EKU, SEAL_SIGNING_EKU]), False),
        (
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(seal_uri(scope.seal_id))]),
            False,
        ),
        (x509.UnrecognizedExtension(SEAL_SCOPE_EXTENSION, encode_seal_scope(scope)), False),
    ]
    builder = _x509.leaf_builder(ca.certificate, subject, key, window, extensions)
    return IssuedCertificate(_x509.sign(builder, ca.private_key), (ca.certificate,))


def seal_scope_of(cert: x509.Certificate) -> SealScope | None:
    """The scope a seal certificate carries; None without the extension.

    Raises `PkiInputError` when the extension is there but not as we issue it.
    """
    try:
        extension = cert.extensions.get_extension_for_oid(SEAL_SCOPE_EXTENSION)
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension) as exc:
        raise PkiInputError(f"unreadable certificate extensions: {exc}") from exc
    if not isinstance(extension.value, x509.UnrecognizedExtension):
        raise PkiInputError("the seal scope extension was parsed as something else")
    return decode_seal_scope(extension.value.value)


def _only_attribute(subject: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    """The attribute's value if the subject has it exactly once (twice would be ambiguous)."""
    attributes = subject.get_attributes_for_oid(oid)
    if len(attributes) != 1 or not isinstance(attributes[0].value, str):
        return None
    return attributes[0].value


def _check_issued_current_readable(
    cert: x509.Certificate, ca: x509.Certificate, at: datetime
) -> None:
    try:
        pki.check_issued_and_current(cert, ca, at)
        pki.check_extensions_readable(cert)
    except CertificateRejectedError as exc:
        raise _Rejected(exc.reason, exc.detail) from exc


def check_seal_certificate(
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    *,
    seal_id: str | None = None,
    department_code: str | None = None,
    purpose: str | None = None,
    licence_type_code: str | None = None,
    at: datetime | None = None,
) -> SealScope:
    """Accept `cert` as a seal certificate of `ca_cert` and return its scope.

    Each expectation given must hold too: the seal, its owner department, a purpose
    (any, if the scope lists none) and a licence type. `at` is when the seal was used
    (default: now). Otherwise raises `SealCertificateRejectedError` with the reason;
    malformed arguments raise `PkiInputError`.
    """
    when = datetime.now(UTC) if at is None else _utc("at", at)
    if not _x509.is_ca(ca_cert):
        raise PkiInputError("the trust anchor given is not a CA certificate")
    expected = [
        (seal_id, _check_seal_id),
        (department_code, _check_department_code),
        (purpose, _check_purpose),
        (licence_type_code, _check_licence_type),
    ]
    for value, check in expected:
        if value is not None:
            check(value)
    _check_issued_current_readable(cert, ca_cert, when)
    if _x509.is_ca(cert):
        raise _Rejected(Rejection.IS_CA, "a CA certificate is not a seal's")
    if problem := _x509.signing_purpose_problem(cert, SEAL_SIGNING_EKU, _SEAL_USAGE):
        raise _Rejected(SealRejection.NOT_FOR_SEALING, problem)
    try:
        scope = seal_scope_of(cert)
    except PkiInputError as exc:
        raise _Rejected(Rejection.MALFORMED, str(exc)) from exc
    if scope is None:
        raise _Rejected(Rejection.MALFORMED, "no seal scope extension")
    # Every name in the certificate must agree with the scope, or it would speak for two.
    owner = DEPARTMENT_ID_PREFIX + scope.owner_department_code
    if (
        _x509.role_uris(cert, ROLE_URI_PREFIX) != [seal_uri(scope.seal_id)]
        or _only_attribute(cert.subject, NameOID.SERIAL_NUMBER) != scope.seal_id
        or _only_attribute(cert.subject, NameOID.ORGANIZATION_IDENTIFIER) != owner
    ):
        raise _Rejected(
            Rejection.MALFORMED,
            f"the SAN URIs, serialNumber and organizationIdentifier do not all name exactly "
            f"seal {scope.seal_id} of {owner}",
        )
    if seal_id is not None and scope.seal_id != seal_id:
        raise _Rejected(SealRejection.WRONG_SEAL, f"certifies seal {scope.seal_id}, not {seal_id}")
    if department_code is not None and scope.owner_department_code != department_code:
        raise _Rejected(
            SealRejection.WRONG_DEPARTMENT,
            f"seal {scope.seal_id} belongs to {scope.owner_department_code}, not {department_code}",
        )
    if purpose is not None and scope.purposes and purpose not in scope.purposes:
        raise _Rejected(
            SealRejection.PURPOSE_NOT_PERMITTED,
            f"seal {scope.seal_id} may not be used for {purpose} "
            f"(allowed: {', '.join(scope.purposes)})",
        )
    if licence_type_code is not None and licence_type_code not in scope.licence_type_codes:
        allowed = ", ".join(scope.licence_type_codes) or "none"
        raise _Rejected(
            SealRejection.LICENCE_TYPE_NOT_PERMITTED,
            f"seal {scope.seal_id} may not seal licence type {licence_type_code} "
            f"(allowed: {allowed})",
        )
    return scope
