"""The region PKI: a root CA, TLS and department certificates, client roles.

The root and TLS certificates are ECDSA P-256 with SHA-256 throughout, because that
is what gRPC's TLS stack (BoringSSL) and every other peer accept without
configuration. Department certificates are signed the same way, by the root, but
may certify an Ed25519 key: licence signatures never pass through TLS.

Decisions a reader of the certificates needs to know:

* **Region code in the root's subject**: ``organizationIdentifier`` (X.520, OID
  2.5.4.97) carries ``GB2260:<code>``, e.g. ``GB2260:310000``. X.520 defines it as
  an identifier of the organisation named in O (eIDAS certificates use it so), it is
  a plain UTF8String that OpenSSL prints by name, and unlike ``OU`` it does not
  pretend the code is an organisational unit (read it with `region_code_of`).
  ``x500UniqueIdentifier`` was not used: it is a BIT STRING meant to disambiguate
  reused names, not to carry one.
* **Client certificates come straight from the root**, without an intermediate. The
  gRPC server trusts the root alone and `identify_client` checks direct issuance,
  so there is no chain to ship or get wrong; the root's ``path_length=1`` leaves one
  level below it free for an intermediate. Once the root key lives offline (HSM), a
  TLS intermediate can be introduced: the server then hands `identify_client` that
  intermediate, and roles read the same.
* **Role binding**: one SubjectAlternativeName URI,
  ``urn:licence-ledger:admin:<name>`` or ``urn:licence-ledger:department:<code>``.
  Names in the subject are for people; only the URI grants anything, and a
  certificate with zero or several role URIs grants nothing.
* **Department certificates are end entities straight from the root**
  (`issue_department_certificate`), not issuing CAs: a department signs licences,
  not certificates, so giving it ``keyCertSign`` would only add a way to mint
  identities. Key usage is ``digitalSignature`` + ``contentCommitment`` (critical:
  the signatures are meant to be non-repudiable), the extended key usage is
  `LICENCE_SIGNING_EKU` alone, and the certificate carries no ``clientAuth``, so the
  same key cannot also log in over TLS (that needs its own client certificate).
* **Department identity**: the subject is
  ``C=CN, O=<name>, organizationIdentifier=NTRCN-<USCC>, CN=<name>``. The identifier
  takes the ETSI EN 319 412-1 §5.1.4 form (``NTR`` = national trade register, the
  country, a hyphen, the 18-character unified social credit code), which eIDAS-aware
  tools already read as a registration number (read it with `department_code_of`).
  The region root keeps ``GB2260:``, as ETSI has no type for an administrative
  division code. The department's SAN URI is the one its client
  certificates use, ``urn:licence-ledger:department:<USCC>``.
* **Our OIDs live under ``2.25.<UUID>``** (`LICENCE_LEDGER_OID_ARC`): ITU-T X.667
  gives every UUID an arc, so no registration is needed and no one else's arc is
  borrowed. ``.1`` is the licence-signing EKU, ``.2`` the licence-type scope, ``.3``
  is reserved for a seal-purpose scope.
* **Licence-type scope**: the extension `LICENCE_TYPE_SCOPE_EXTENSION` is a DER
  ``SEQUENCE OF UTF8String`` of licence type codes, sorted and without duplicates so
  one scope has exactly one encoding (a decoder refuses anything else). An empty
  sequence authorises nothing yet; a department certificate without the extension is
  refused. It is non-critical so that generic validators (OpenSSL, pyHanko) still
  accept the certificate; `check_department_certificate` is what enforces it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from itertools import pairwise

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signer import _x509

# Re-exported: callers type keys with these without reaching into the private module.
from signer._x509 import PublicKey as PublicKey
from signer._x509 import SigningKey as SigningKey

REGION_ID_PREFIX = "GB2260:"
DEPARTMENT_ID_PREFIX = "NTRCN-"
ROLE_URI_PREFIX = "urn:licence-ledger:"

# 2.25 + the integer of UUID 35a6181a-fd57-4a15-ae6a-fc3dbf273cad, generated once for
# this project. Never change it: issued certificates and signatures carry these OIDs.
LICENCE_LEDGER_OID_ARC = "2.25.71311493971285269547377056831158828205"
LICENCE_SIGNING_EKU = x509.ObjectIdentifier(f"{LICENCE_LEDGER_OID_ARC}.1")
LICENCE_TYPE_SCOPE_EXTENSION = x509.ObjectIdentifier(f"{LICENCE_LEDGER_OID_ARC}.2")
SEAL_SCOPE_EXTENSION = x509.ObjectIdentifier(f"{LICENCE_LEDGER_OID_ARC}.3")  # signer.seal_pki

# GB/T 2260 province-level prefixes (incl. Taiwan 71, Hong Kong 81, Macao 82). The
# lower four digits change with every administrative revision, so only the province
# is checked; a full table would reject codes that became valid after we shipped.
_PROVINCE = re.compile(r"1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[12]")
_REGION_CODE = re.compile(r"[0-9]{6}")  # not \d: that would admit full-width digits
# RFC 8141 NSS characters without "%", so one subject has exactly one spelling, and
# without "?"/"#", which would start URN components. URIs are IA5String: ASCII only.
_SUBJECT_ID = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]{1,128}")
_MAX_NAME = 64  # X.520 upper bound for O and CN
# GB 32100-2015 alphabet: digits and capitals without I, O, Z, S, V. Only the form is
# checked here; the check character is verified where codes enter the system.
_USCC = re.compile(r"[0-9A-HJ-NPQRTUWXY]{18}")
_LICENCE_TYPE = re.compile(r"[0-9A-Z]{1,32}")


class PkiError(Exception):
    """Base of every error raised by `signer.pki` (key files raise `KeyStoreError`)."""


class PkiInputError(PkiError, ValueError):
    """An argument cannot be used (bad region code, subject id, host name, key, time)."""


class Rejection(StrEnum):
    """Why a certificate is refused for its purpose; stable, for ErrorInfo reasons."""

    MALFORMED = "MALFORMED"
    NOT_ISSUED_BY_CA = "NOT_ISSUED_BY_CA"
    NOT_YET_VALID = "NOT_YET_VALID"
    EXPIRED = "EXPIRED"
    IS_CA = "IS_CA"
    NOT_FOR_CLIENT_AUTH = "NOT_FOR_CLIENT_AUTH"
    NO_ROLE = "NO_ROLE"
    AMBIGUOUS_ROLE = "AMBIGUOUS_ROLE"
    BAD_ROLE = "BAD_ROLE"
    NOT_FOR_LICENCE_SIGNING = "NOT_FOR_LICENCE_SIGNING"
    LICENCE_TYPE_NOT_IN_SCOPE = "LICENCE_TYPE_NOT_IN_SCOPE"
    WRONG_DEPARTMENT = "WRONG_DEPARTMENT"


class CertificateRejectedError(PkiError):
    """A presented certificate is refused (as a client, as a signer); `reason` says why."""

    def __init__(self, reason: Rejection, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.detail = message


class Role(StrEnum):
    ADMIN = "admin"
    DEPARTMENT = "department"


def validate_region_code(region_code: str) -> str:
    """The code itself if it is a 6-digit GB/T 2260 code with a known province prefix."""
    if not isinstance(region_code, str) or not _REGION_CODE.fullmatch(region_code):
        raise PkiInputError(f"region code must be 6 ASCII digits (GB/T 2260), not {region_code!r}")
    if not _PROVINCE.fullmatch(region_code[:2]):
        raise PkiInputError(
            f"region code {region_code} has no GB/T 2260 province {region_code[:2]}"
        )
    return region_code


def _check_name(what: str, value: str, limit: int = _MAX_NAME) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise PkiInputError(f"{what} must be non-empty without surrounding spaces: {value!r}")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        # A newline in a subject would let one name print as two in logs and reports.
        raise PkiInputError(f"{what} must not contain control characters: {value!r}")
    if len(value) > limit:
        raise PkiInputError(f"{what} is {len(value)} characters; X.509 allows {limit}")
    return value


def _check_subject_id(subject_id: str) -> str:
    if not isinstance(subject_id, str) or not subject_id:
        raise PkiInputError("subject id must be a non-empty string")
    if any(c.isspace() for c in subject_id):
        raise PkiInputError(f"subject id must not contain whitespace: {subject_id!r}")
    if not _SUBJECT_ID.fullmatch(subject_id):
        raise PkiInputError(
            f"subject id {subject_id!r} must be at most 128 URI-safe ASCII characters "
            "(letters, digits and -._~!$&'()*+,;=:@/)"
        )
    return subject_id


def _check_department_code(code: str) -> str:
    if not isinstance(code, str) or not _USCC.fullmatch(code):
        raise PkiInputError(
            f"department code must be an 18-character unified social credit code, not {code!r}"
        )
    return code


def _check_licence_type(code: str) -> str:
    if not isinstance(code, str) or not _LICENCE_TYPE.fullmatch(code):
        raise PkiInputError(
            f"licence type code must be 1 to 32 ASCII digits or capitals, not {code!r}"
        )
    return code


def role_uri(role: Role, subject_id: str) -> str:
    """The SAN URI binding `role` to `subject_id`, e.g. ``urn:licence-ledger:admin:alice``."""
    return f"{ROLE_URI_PREFIX}{Role(role).value}:{_check_subject_id(subject_id)}"


@dataclass(frozen=True)
class RegionCA:
    """A region's root CA: the trust anchor of its TLS and, later, its issuers."""

    region_code: str
    name: str
    private_key: SigningKey = field(repr=False, compare=False)
    certificate: x509.Certificate

    def __post_init__(self) -> None:
        validate_region_code(self.region_code)
        if self.private_key.public_key() != self.certificate.public_key():
            raise PkiInputError("the private key does not belong to the CA certificate")
        if region_code_of(self.certificate) != self.region_code:
            raise PkiInputError(f"the CA certificate is not for region {self.region_code}")

    @classmethod
    def from_parts(cls, certificate: x509.Certificate, private_key: SigningKey) -> RegionCA:
        """Rebuild a CA from its stored certificate and key (e.g. when a server restarts)."""
        region = region_code_of(certificate)
        org = _x509.first_attribute(certificate.subject, NameOID.ORGANIZATION_NAME)
        if region is None or org is None:
            raise PkiInputError("not a region root: the subject lacks O or the region code")
        if not _x509.is_ca(certificate):
            raise PkiInputError("not a CA certificate (BasicConstraints ca=False or absent)")
        return cls(region, org, private_key, certificate)


@dataclass(frozen=True)
class IssuedCertificate:
    """A certificate, its issuers (nearest first, ending at the root) and a new key if made."""

    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: SigningKey | None = field(default=None, repr=False, compare=False)

    def certificate_chain_pem(self) -> bytes:
        """What a TLS peer presents: the certificate and any intermediates, not the root.

        RFC 8446 §4.4.2 lets the trust anchor be left out (the other side has it);
        gRPC's ``certificate_chain`` arguments expect exactly this.
        """
        below_root = [c for c in self.chain if c.subject != c.issuer]
        return b"".join(certificate_pem(c) for c in (self.certificate, *below_root))


@dataclass(frozen=True)
class ClientIdentity:
    """Who a verified client certificate speaks for."""

    role: Role
    subject_id: str
    common_name: str
    serial: int


def region_code_of(cert: x509.Certificate) -> str | None:
    """The GB/T 2260 code in a region root's subject, or None if it carries none."""
    value = _x509.first_attribute(cert.subject, NameOID.ORGANIZATION_IDENTIFIER)
    if value is None or not value.startswith(REGION_ID_PREFIX):
        return None
    return value.removeprefix(REGION_ID_PREFIX)


def _now(now: datetime | None) -> datetime:
    try:
        return _x509.utc_now(now)
    except ValueError as exc:
        raise PkiInputError(str(exc)) from exc


def create_region_ca(
    region_code: str,
    name: str,
    *,
    valid_days: int = 3650,
    now: datetime | None = None,
    private_key: ec.EllipticCurvePrivateKey | None = None,
) -> RegionCA:
    """A self-signed region root CA; a P-256 key is generated unless one is given.

    Pass `private_key` to keep a key made elsewhere (a key store, later an HSM).
    """
    validate_region_code(region_code)
    _check_name("CA name", name, _MAX_NAME - len(" Root CA"))
    key = private_key if private_key is not None else _x509.generate_p256()
    at = _now(now)
    try:
        # The root anchors TLS, so it is held to the P-256 rule as much as the leaves.
        _x509.require_p256(key.public_key())
        not_before, not_after = _x509.validity_window(at, valid_days, None)
    except ValueError as exc:
        raise PkiInputError(str(exc)) from exc
    subject = _x509.name(
        [
            (NameOID.COUNTRY_NAME, "CN"),
            (NameOID.ORGANIZATION_NAME, name),
            (NameOID.ORGANIZATION_IDENTIFIER, REGION_ID_PREFIX + region_code),
            (NameOID.COMMON_NAME, f"{name} Root CA"),
        ]
    )
    public = key.public_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # path_length=1: one intermediate (a TLS CA, once the root goes offline) may sit
        # below the root, and nothing below that.
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_x509.key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return RegionCA(region_code, name, key, _x509.sign(builder, key))


def _issue_tls_leaf(
    ca: RegionCA,
    common_name: str | None,
    public_key: PublicKey | None,
    purpose: x509.ObjectIdentifier,
    san: Sequence[x509.GeneralName],
    valid_days: int,
    now: datetime | None,
) -> IssuedCertificate:
    key = None
    if public_key is None:
        key = _x509.generate_p256()
        public_key = key.public_key()
    at = _now(now)
    try:
        tls_key = _x509.require_p256(public_key)
        window = _x509.validity_window(at, valid_days, ca.certificate)
    except ValueError as exc:
        raise PkiInputError(str(exc)) from exc
    attributes = [(NameOID.COUNTRY_NAME, "CN"), (NameOID.ORGANIZATION_NAME, ca.name)]
    if common_name is not None:
        attributes.append((NameOID.COMMON_NAME, common_name))
    subject = _x509.name(attributes)
    builder = _x509.tls_leaf_builder(ca.certificate, subject, tls_key, window, purpose, san)
    return IssuedCertificate(_x509.sign(builder, ca.private_key), (ca.certificate,), key)


def issue_client_certificate(
    ca: RegionCA,
    role: Role,
    subject_id: str,
    common_name: str,
    *,
    public_key: PublicKey | None = None,
    valid_days: int = 365,
    now: datetime | None = None,
) -> IssuedCertificate:
    """A mutual-TLS client certificate binding `role` to `subject_id`.

    `subject_id` is the admin's login name or the department's code (normally its
    18-character unified social credit code); `common_name` is for people reading it.
    A P-256 key is generated, and returned, unless `public_key` is given.
    """
    uri = role_uri(role, subject_id)
    _check_name("common name", common_name)
    san = [x509.UniformResourceIdentifier(uri)]
    return _issue_tls_leaf(
        ca, common_name, public_key, ExtendedKeyUsageOID.CLIENT_AUTH, san, valid_days, now
    )


def issue_server_certificate(
    ca: RegionCA,
    hostnames: Sequence[str],
    ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
    *,
    public_key: PublicKey | None = None,
    valid_days: int = 365,
    now: datetime | None = None,
) -> IssuedCertificate:
    """A TLS server certificate for the given DNS names and IP addresses."""
    try:
        san = _x509.server_san(hostnames, ip_addresses)
    except ValueError as exc:
        raise PkiInputError(str(exc)) from exc
    dns = [n.value for n in san if isinstance(n, x509.DNSName)]
    # Clients match the SAN only (RFC 6125); the CN is there for people and logs.
    common_name = next((d for d in dns if len(d) <= _MAX_NAME), None)
    return _issue_tls_leaf(
        ca, common_name, public_key, ExtendedKeyUsageOID.SERVER_AUTH, san, valid_days, now
    )


def identify_client(
    cert_der_or_pem: bytes, ca: x509.Certificate, *, now: datetime | None = None
) -> ClientIdentity:
    """Map a peer's client certificate to the role it was issued for.

    The TLS handshake has already validated the chain; this repeats the checks that
    matter for authorization so that a misconfigured listener cannot grant a role,
    and reads the one role URI. Raises `CertificateRejectedError` with a reason.
    """
    at = _now(now)
    if not _x509.is_ca(ca):
        raise PkiInputError("the trust anchor given to identify_client is not a CA certificate")
    try:
        cert = _x509.parse_certificate(cert_der_or_pem)
    except ValueError as exc:
        raise CertificateRejectedError(
            Rejection.MALFORMED, f"unreadable certificate: {exc}"
        ) from exc
    check_issued_and_current(cert, ca, at)
    check_extensions_readable(cert)
    if _x509.is_ca(cert):
        raise CertificateRejectedError(Rejection.IS_CA, "a CA certificate cannot be a client")
    if problem := _x509.client_auth_problem(cert):
        raise CertificateRejectedError(Rejection.NOT_FOR_CLIENT_AUTH, problem)
    role, subject_id = _role_of(cert)
    common_name = _x509.first_attribute(cert.subject, NameOID.COMMON_NAME) or ""
    return ClientIdentity(role, subject_id, common_name, cert.serial_number)


def check_issued_and_current(cert: x509.Certificate, ca: x509.Certificate, at: datetime) -> None:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateRejectedError(
            Rejection.NOT_ISSUED_BY_CA,
            f"not issued by {ca.subject.rfc4514_string()} (issuer {cert.issuer.rfc4514_string()})",
        ) from exc
    if at < cert.not_valid_before_utc:
        raise CertificateRejectedError(
            Rejection.NOT_YET_VALID, f"valid only from {cert.not_valid_before_utc.isoformat()}"
        )
    if at > cert.not_valid_after_utc:
        raise CertificateRejectedError(
            Rejection.EXPIRED, f"expired at {cert.not_valid_after_utc.isoformat()}"
        )


def check_extensions_readable(cert: x509.Certificate) -> None:
    # cryptography parses extensions on first use, and a duplicated one raises an
    # exception that is no ValueError; callers catch PkiError, so name it MALFORMED here.
    try:
        cert.extensions  # noqa: B018
    except (ValueError, x509.DuplicateExtension) as exc:
        raise CertificateRejectedError(
            Rejection.MALFORMED, f"unreadable extensions: {exc}"
        ) from exc


def _role_of(cert: x509.Certificate) -> tuple[Role, str]:
    ours = _x509.role_uris(cert, ROLE_URI_PREFIX)
    if not ours:
        raise CertificateRejectedError(Rejection.NO_ROLE, "no urn:licence-ledger role URI")
    if len(ours) > 1:
        raise CertificateRejectedError(
            Rejection.AMBIGUOUS_ROLE, f"{len(ours)} role URIs, exactly one is allowed"
        )
    role_name, _, subject_id = ours[0][len(ROLE_URI_PREFIX) :].partition(":")
    try:
        role = Role(role_name)
        _check_subject_id(subject_id)
    except ValueError as exc:
        raise CertificateRejectedError(
            Rejection.BAD_ROLE, f"unusable role URI {ours[0]!r}"
        ) from exc
    return role, subject_id


def issue_department_certificate(
    ca: RegionCA,
    department_code: str,
    department_name: str,
    public_key: PublicKey,
    licence_type_codes: Sequence[str],
    *,
    valid_days: int = 1095,
    now: datetime | None = None,
) -> IssuedCertificate:
    """A licence-signing certificate for a department's Ed25519 or P-256 key.

    `department_code` is the department's unified social credit code (its form is
    checked, not its check character); `licence_type_codes` are the licence types it
    may sign, possibly none yet. The department keeps its private key, so the result
    carries none.
    """
    code = _check_department_code(department_code)
    _check_name("department name", department_name)
    if isinstance(licence_type_codes, str):
        # A bare string is a sequence of characters: "A1" would scope to "A" and "1".
        raise PkiInputError("licence_type_codes must be a sequence of codes, not a string")
    scope = sorted({_check_licence_type(t) for t in licence_type_codes})
    at = _now(now)
    try:
        key = _x509.require_ed25519_or_p256(public_key)
        window = _x509.validity_window(at, valid_days, ca.certificate)
    except ValueError as exc:
        raise PkiInputError(str(exc)) from exc
    subject = _x509.name(
        [
            (NameOID.COUNTRY_NAME, "CN"),
            (NameOID.ORGANIZATION_NAME, department_name),
            (NameOID.ORGANIZATION_IDENTIFIER, DEPARTMENT_ID_PREFIX + code),
            (NameOID.COMMON_NAME, department_name),
        ]
    )
    uri = x509.UniformResourceIdentifier(role_uri(Role.DEPARTMENT, code))
    scope_der = _x509.encode_utf8_sequence(scope)
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        (_x509.key_usage(digital_signature=True, content_commitment=True), True),
        (x509.ExtendedKeyUsage([LICENCE_SIGNING_EKU]), False),
        (x509.SubjectAlternativeName([uri]), False),
        (x509.UnrecognizedExtension(LICENCE_TYPE_SCOPE_EXTENSION, scope_der), False),
    ]
    builder = _x509.leaf_builder(ca.certificate, subject, key, window, extensions)
    return IssuedCertificate(_x509.sign(builder, ca.private_key), (ca.certificate,))


def department_code_of(cert: x509.Certificate) -> str | None:
    """The unified social credit code in a department certificate's subject, if any."""
    value = _x509.first_attribute(cert.subject, NameOID.ORGANIZATION_IDENTIFIER)
    if value is None or not value.startswith(DEPARTMENT_ID_PREFIX):
        return None
    code = value.removeprefix(DEPARTMENT_ID_PREFIX)
    return code if _USCC.fullmatch(code) else None


def licence_type_scope_of(cert: x509.Certificate) -> frozenset[str] | None:
    """The licence types a department certificate allows; None without the extension.

    Raises `PkiInputError` when the extension is there but not as we issue it.
    """
    try:
        extension = cert.extensions.get_extension_for_oid(LICENCE_TYPE_SCOPE_EXTENSION)
    except x509.ExtensionNotFound:
        return None
    except (ValueError, x509.DuplicateExtension) as exc:
        raise PkiInputError(f"unreadable certificate extensions: {exc}") from exc
    value = extension.value
    if not isinstance(value, x509.UnrecognizedExtension):
        raise PkiInputError("the licence-type scope extension was parsed as something else")
    try:
        codes = _x509.decode_utf8_sequence(value.value)
    except ValueError as exc:
        raise PkiInputError(f"malformed licence-type scope: {exc}") from exc
    for code in codes:
        if not _LICENCE_TYPE.fullmatch(code):
            raise PkiInputError(f"malformed licence-type scope: bad code {code!r}")
    if any(a >= b for a, b in pairwise(codes)):
        raise PkiInputError("malformed licence-type scope: codes not sorted and unique")
    return frozenset(codes)


def key_id_of(public_key: PublicKey) -> str:
    """Lower-case hex SHA-256 of the key's DER SubjectPublicKeyInfo."""
    return _x509.key_id(public_key)


def certificate_request_public_key(data: bytes) -> PublicKey:
    """The Ed25519 or P-256 key of a PKCS#10 CSR or a SubjectPublicKeyInfo, DER or PEM.

    A CSR's signature must verify (proof of possession). Nothing else in it is used:
    the CA decides subject and extensions itself, so a request cannot ask for more.
    """
    try:
        return _x509.parse_request_public_key(data)
    except ValueError as exc:
        raise PkiInputError(str(exc)) from exc


def check_department_certificate(
    cert: x509.Certificate,
    ca_cert: x509.Certificate,
    *,
    licence_type_code: str | None = None,
    department_code: str | None = None,
    at: datetime | None = None,
) -> None:
    """Accept `cert` as `ca_cert`'s licence signer, else raise `CertificateRejectedError`.

    Given `department_code`, the certificate must name that department; given
    `licence_type_code`, its scope must include that type. `at` is when the signature
    was made (default: now).
    """
    when = _now(at)
    if not _x509.is_ca(ca_cert):
        raise PkiInputError("the trust anchor given is not a CA certificate")
    if licence_type_code is not None:
        _check_licence_type(licence_type_code)
    if department_code is not None:
        _check_department_code(department_code)
    check_issued_and_current(cert, ca_cert, when)
    check_extensions_readable(cert)
    if _x509.is_ca(cert):
        raise CertificateRejectedError(
            Rejection.NOT_FOR_LICENCE_SIGNING, "a CA certificate cannot sign licences"
        )
    expected_usage = _x509.key_usage(digital_signature=True, content_commitment=True)
    if problem := _x509.signing_purpose_problem(cert, LICENCE_SIGNING_EKU, expected_usage):
        raise CertificateRejectedError(Rejection.NOT_FOR_LICENCE_SIGNING, problem)
    code = department_code_of(cert)
    if code is None:
        raise CertificateRejectedError(Rejection.MALFORMED, "no NTRCN- department identifier")
    # The SAN must name the same department, or the certificate would speak for two.
    if _x509.role_uris(cert, ROLE_URI_PREFIX) != [role_uri(Role.DEPARTMENT, code)]:
        raise CertificateRejectedError(
            Rejection.MALFORMED, f"the SAN does not name exactly department {code}"
        )
    if department_code is not None and code != department_code:
        raise CertificateRejectedError(
            Rejection.WRONG_DEPARTMENT, f"issued to department {code}, not {department_code}"
        )
    try:
        scope = licence_type_scope_of(cert)
    except PkiInputError as exc:
        raise CertificateRejectedError(Rejection.MALFORMED, str(exc)) from exc
    if scope is None:
        raise CertificateRejectedError(Rejection.MALFORMED, "no licence-type scope extension")
    if licence_type_code is not None and licence_type_code not in scope:
        allowed = ", ".join(sorted(scope)) or "none"
        raise CertificateRejectedError(
            Rejection.LICENCE_TYPE_NOT_IN_SCOPE,
            f"department {code} may not sign licence type {licence_type_code} (allowed: {allowed})",
        )


def certificate_pem(cert: x509.Certificate) -> bytes:
    return _x509.certificate_pem(cert)


def load_certificate(pem: bytes) -> x509.Certificate:
    """The (first) certificate in PEM bytes; DER is accepted too."""
    try:
        return _x509.parse_certificate(pem)
    except ValueError as exc:
        raise PkiInputError(f"not a certificate: {exc}") from exc
