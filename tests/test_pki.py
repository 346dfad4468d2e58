"""The region PKI: root CA, TLS and department certificates, roles, key files, a handshake."""

from __future__ import annotations

import hashlib
import shutil
import socket
import ssl
import stat
import subprocess
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signer.keystore import KeyStoreError, load_encrypted_pkcs8, write_encrypted_pkcs8
from signer.pki import (
    LICENCE_LEDGER_OID_ARC,
    LICENCE_SIGNING_EKU,
    LICENCE_TYPE_SCOPE_EXTENSION,
    SEAL_SCOPE_EXTENSION,
    CertificateRejectedError,
    ClientIdentity,
    IssuedCertificate,
    PkiError,
    PkiInputError,
    RegionCA,
    Rejection,
    Role,
    certificate_pem,
    certificate_request_public_key,
    check_department_certificate,
    create_region_ca,
    department_code_of,
    identify_client,
    issue_client_certificate,
    issue_department_certificate,
    issue_server_certificate,
    key_id_of,
    licence_type_scope_of,
    load_certificate,
    region_code_of,
    role_uri,
    validate_region_code,
)

# Real time, not a fixed date: the TLS tests are judged by OpenSSL against the clock.
NOW = datetime.now(UTC).replace(microsecond=0)
# The shared CA was made a while ago, so certificates can be issued "in the past".
CA_MADE = NOW - timedelta(days=400)
REGION_NAME = "上海市人民政府"
DEPARTMENT_CODE = "11310000002419612H"
PASSPHRASE = b"pki test passphrase, not a secret"


@pytest.fixture(scope="module")
def ca() -> RegionCA:
    return create_region_ca("310000", REGION_NAME, now=CA_MADE)


@pytest.fixture(scope="module")
def server(ca: RegionCA) -> IssuedCertificate:
    return issue_server_certificate(ca, ["localhost", "Ledger.Example.gov.cn"])


_E = TypeVar("_E", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[_E]) -> x509.Extension[_E]:
    return cert.extensions.get_extension_for_class(kind)


def _rejection(data: bytes, ca: RegionCA) -> Rejection:
    with pytest.raises(CertificateRejectedError) as caught:
        identify_client(data, ca.certificate)
    assert isinstance(caught.value, PkiError)
    assert caught.value.reason.value in str(caught.value)
    return caught.value.reason


def _forge_client(ca: RegionCA, san: Sequence[x509.GeneralName] | None) -> x509.Certificate:
    """A client certificate signed by the real CA key but with SANs `issue_*` never makes."""
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged")]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca.private_key, hashes.SHA256())


# --- root CA -------------------------------------------------------------------------


def test_root_ca_is_self_signed_and_constrained(ca: RegionCA) -> None:
    cert = ca.certificate
    cert.verify_directly_issued_by(cert)
    assert cert.subject == cert.issuer
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)

    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == 1
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert not usage.value.digital_signature
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(public)

    def attr(oid: x509.ObjectIdentifier) -> str | bytes:
        return cert.subject.get_attributes_for_oid(oid)[0].value

    assert attr(NameOID.COUNTRY_NAME) == "CN"
    assert attr(NameOID.ORGANIZATION_NAME) == REGION_NAME
    assert attr(NameOID.COMMON_NAME) == f"{REGION_NAME} Root CA"
    assert attr(NameOID.ORGANIZATION_IDENTIFIER) == "GB2260:310000"
    assert region_code_of(cert) == ca.region_code == "310000"
    assert cert.not_valid_before_utc <= CA_MADE
    assert cert.not_valid_after_utc == CA_MADE + timedelta(days=3650)


@pytest.mark.parametrize("code", ["110000", "310000", "440300", "650000", "820000"])
def test_valid_region_codes_are_accepted(code: str) -> None:
    assert validate_region_code(code) == code


@pytest.mark.parametrize(
    "code", ["", "31000", "3100000", "31000a", "990000", "000000", "３１００００", " 310000"]
)
def test_invalid_region_codes_are_refused(code: str) -> None:
    with pytest.raises(PkiInputError, match="region code"):
        create_region_ca(code, "Test Region")
    with pytest.raises(ValueError, match="region code"):
        validate_region_code(code)


def test_ca_refuses_a_naive_time_and_an_unusable_name() -> None:
    with pytest.raises(PkiInputError, match="timezone"):
        create_region_ca("310000", "Test", now=datetime(2026, 1, 1))
    with pytest.raises(PkiInputError, match="name"):
        create_region_ca("310000", " ")
    with pytest.raises(PkiInputError, match="characters"):
        create_region_ca("310000", "x" * 60)
    with pytest.raises(PkiInputError, match="control"):
        create_region_ca("310000", "Region\nCN=Other")
    with pytest.raises(PkiInputError, match="valid_days"):
        create_region_ca("310000", "Test", valid_days=0)


def test_ca_rebuilds_from_stored_certificate_and_key(ca: RegionCA, tmp_path: Path) -> None:
    key_path = tmp_path / "ca" / "root.key.pem"
    write_encrypted_pkcs8(key_path, ca.private_key, PASSPHRASE)
    cert = load_certificate(certificate_pem(ca.certificate))
    again = RegionCA.from_parts(cert, load_encrypted_pkcs8(key_path, PASSPHRASE))
    assert again == ca
    assert (again.region_code, again.name) == ("310000", REGION_NAME)

    other = create_region_ca("310000", REGION_NAME)
    with pytest.raises(PkiInputError, match="does not belong"):
        RegionCA.from_parts(cert, other.private_key)
    leaf = issue_client_certificate(ca, Role.ADMIN, "alice", "Alice")
    with pytest.raises(PkiInputError, match="not a region root"):
        RegionCA.from_parts(leaf.certificate, ca.private_key)


# --- server certificates -----------------------------------------------------------------


def test_server_certificate_verifies_and_names_the_server(
    ca: RegionCA, server: IssuedCertificate
) -> None:
    cert = server.certificate
    cert.verify_directly_issued_by(ca.certificate)
    assert server.chain == (ca.certificate,)
    assert server.key is not None
    assert server.key.public_key() == cert.public_key()

    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "ledger.example.gov.cn"]
    assert san.get_values_for_type(x509.IPAddress) == [ip_address("127.0.0.1"), ip_address("::1")]
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_cert_sign
    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == _ext(ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "localhost"
    # What a TLS server presents: its own certificate, the root left to the client.
    assert server.certificate_chain_pem() == certificate_pem(cert)


@pytest.mark.parametrize(
    ("hostnames", "ips"),
    [
        (["*.example.com"], ["127.0.0.1"]),
        (["127.0.0.1"], []),
        (["bad host"], []),
        (["-leading.example"], []),
        (["localhost"], ["not-an-ip"]),
        ("localhost", []),
        ([], []),
    ],
)
def test_server_names_are_validated(
    ca: RegionCA, hostnames: Sequence[str], ips: Sequence[str]
) -> None:
    with pytest.raises(PkiInputError):
        issue_server_certificate(ca, hostnames, ips)


def test_leaf_validity_stays_within_the_ca(ca: RegionCA) -> None:
    long = issue_client_certificate(ca, Role.ADMIN, "alice", "Alice", valid_days=100_000)
    assert long.certificate.not_valid_after_utc == ca.certificate.not_valid_after_utc
    with pytest.raises(PkiInputError, match="issuing CA is valid"):
        issue_client_certificate(ca, Role.ADMIN, "alice", "Alice", now=CA_MADE - timedelta(1))


def test_tls_keys_must_be_p256(ca: RegionCA) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    with pytest.raises(PkiInputError, match="P-256"):
        issue_client_certificate(ca, Role.ADMIN, "alice", "Alice", public_key=p384)


# --- client certificates and roles ---------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "subject_id", "common_name"),
    [
        (Role.ADMIN, "alice", "Alice Admin"),
        (Role.DEPARTMENT, DEPARTMENT_CODE, "上海市市场监督管理局"),
    ],
)
def test_client_certificate_maps_back_to_its_role(
    ca: RegionCA, role: Role, subject_id: str, common_name: str
) -> None:
    issued = issue_client_certificate(ca, role, subject_id, common_name)
    cert = issued.certificate
    cert.verify_directly_issued_by(ca.certificate)
    uris = _ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier
    )
    assert uris == [f"urn:licence-ledger:{role.value}:{subject_id}"] == [role_uri(role, subject_id)]
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert _ext(cert, x509.KeyUsage).critical
    assert _ext(cert, x509.KeyUsage).value.digital_signature
    assert not _ext(cert, x509.BasicConstraints).value.ca
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier is not None

    expected = ClientIdentity(role, subject_id, common_name, cert.serial_number)
    assert identify_client(certificate_pem(cert), ca.certificate) == expected
    der = cert.public_bytes(serialization.Encoding.DER)
    assert identify_client(der, ca.certificate) == expected


def test_client_certificate_for_a_supplied_key(ca: RegionCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    issued = issue_client_certificate(
        ca, Role.DEPARTMENT, DEPARTMENT_CODE, "Dept", public_key=key.public_key()
    )
    assert issued.key is None
    assert issued.certificate.public_key() == key.public_key()


@pytest.mark.parametrize("subject_id", ["", "with space", "tab\tbed", "line\n", "a%20b", "名字"])
def test_subject_ids_are_validated(ca: RegionCA, subject_id: str) -> None:
    with pytest.raises(PkiInputError, match="subject id"):
        issue_client_certificate(ca, Role.DEPARTMENT, subject_id, "Dept")


def test_common_name_is_required(ca: RegionCA) -> None:
    with pytest.raises(PkiInputError, match="common name"):
        issue_client_certificate(ca, Role.ADMIN, "alice", "")


@pytest.mark.parametrize("same_name", [True, False], ids=["impostor-same-name", "other-region"])
def test_certificate_from_another_ca_is_rejected(ca: RegionCA, same_name: bool) -> None:
    # A self-made CA copying the real root's name and region code must not pass either.
    foreign = (
        create_region_ca("310000", REGION_NAME)
        if same_name
        else create_region_ca("320000", "江苏省人民政府")
    )
    issued = issue_client_certificate(foreign, Role.ADMIN, "alice", "Alice")
    assert _rejection(certificate_pem(issued.certificate), ca) is Rejection.NOT_ISSUED_BY_CA


def test_expired_and_future_certificates_are_rejected(ca: RegionCA) -> None:
    old = issue_client_certificate(
        ca, Role.ADMIN, "alice", "Alice", valid_days=30, now=NOW - timedelta(days=100)
    )
    assert _rejection(certificate_pem(old.certificate), ca) is Rejection.EXPIRED
    # Still accepted when judged at a time inside its window.
    inside = NOW - timedelta(days=90)
    assert identify_client(certificate_pem(old.certificate), ca.certificate, now=inside).role
    future = issue_client_certificate(
        ca, Role.ADMIN, "alice", "Alice", now=NOW + timedelta(days=10)
    )
    assert _rejection(certificate_pem(future.certificate), ca) is Rejection.NOT_YET_VALID


def test_server_certificate_is_not_a_client(ca: RegionCA, server: IssuedCertificate) -> None:
    reason = _rejection(certificate_pem(server.certificate), ca)
    assert reason is Rejection.NOT_FOR_CLIENT_AUTH


def test_ca_certificate_is_not_a_client(ca: RegionCA) -> None:
    assert _rejection(certificate_pem(ca.certificate), ca) is Rejection.IS_CA


@pytest.mark.parametrize(
    ("san", "reason"),
    [
        (None, Rejection.NO_ROLE),
        ([x509.DNSName("alice.example")], Rejection.NO_ROLE),
        ([x509.UniformResourceIdentifier("https://example.com/admin")], Rejection.NO_ROLE),
        (
            [
                x509.UniformResourceIdentifier("urn:licence-ledger:department:" + DEPARTMENT_CODE),
                x509.UniformResourceIdentifier("urn:licence-ledger:admin:alice"),
            ],
            Rejection.AMBIGUOUS_ROLE,
        ),
        (
            [
                x509.UniformResourceIdentifier("urn:licence-ledger:admin:alice"),
                x509.UniformResourceIdentifier("URN:Licence-Ledger:admin:mallory"),
            ],
            Rejection.AMBIGUOUS_ROLE,
        ),
        ([x509.UniformResourceIdentifier("urn:licence-ledger:root:alice")], Rejection.BAD_ROLE),
        ([x509.UniformResourceIdentifier("urn:licence-ledger:admin:")], Rejection.BAD_ROLE),
        ([x509.UniformResourceIdentifier("urn:licence-ledger:admin")], Rejection.BAD_ROLE),
    ],
    ids=[
        "no-san",
        "dns-only",
        "other-uri",
        "two-roles",
        "two-roles-cased",
        "unknown",
        "empty",
        "bare",
    ],
)
def test_role_uri_must_be_exactly_one_and_well_formed(
    ca: RegionCA, san: list[x509.GeneralName] | None, reason: Rejection
) -> None:
    forged = _forge_client(ca, san)
    assert _rejection(certificate_pem(forged), ca) is reason


def test_forged_helper_is_otherwise_acceptable(ca: RegionCA) -> None:
    # Guards the table above: each forged certificate fails for its SAN, nothing else.
    uri = x509.UniformResourceIdentifier("urn:licence-ledger:admin:alice")
    identity = identify_client(certificate_pem(_forge_client(ca, [uri])), ca.certificate)
    assert (identity.role, identity.subject_id) == (Role.ADMIN, "alice")


def test_garbage_and_misuse_are_reported(ca: RegionCA, server: IssuedCertificate) -> None:
    assert _rejection(b"not a certificate", ca) is Rejection.MALFORMED
    admin = issue_client_certificate(ca, Role.ADMIN, "alice", "Alice")
    with pytest.raises(PkiInputError, match="not a CA"):
        identify_client(certificate_pem(admin.certificate), server.certificate)
    with pytest.raises(PkiInputError, match="not a certificate"):
        load_certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")


# --- department certificates ---------------------------------------------------------------

OTHER_DEPARTMENT_CODE = "11310000MB2F19612X"
DEPARTMENT_NAME = "上海市市场监督管理局"
DEPARTMENT_URI = f"urn:licence-ledger:department:{DEPARTMENT_CODE}"
# DER SEQUENCE OF UTF8String {"A1"}, written out so the codec is checked against bytes.
SCOPE_A1 = b"\x30\x04\x0c\x02A1"


def _usage(*, content_commitment: bool = True, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _department_key(algorithm: str) -> Ed25519PrivateKey | ec.EllipticCurvePrivateKey:
    if algorithm == "ed25519":
        return Ed25519PrivateKey.generate()
    return ec.generate_private_key(ec.SECP256R1())


def _department(
    ca: RegionCA,
    codes: Sequence[str] = ("A1",),
    *,
    valid_days: int = 1095,
    now: datetime | None = None,
) -> x509.Certificate:
    key = Ed25519PrivateKey.generate().public_key()
    issued = issue_department_certificate(
        ca, DEPARTMENT_CODE, DEPARTMENT_NAME, key, codes, valid_days=valid_days, now=now
    )
    return issued.certificate


def _forge_department(
    ca: RegionCA,
    *,
    scope: bytes | None = SCOPE_A1,
    usage: x509.KeyUsage | None = None,
    eku: Sequence[x509.ObjectIdentifier] | None = (LICENCE_SIGNING_EKU,),
    uris: Sequence[str] = (DEPARTMENT_URI,),
    org_id: str = "NTRCN-" + DEPARTMENT_CODE,
) -> x509.Certificate:
    """A department certificate signed by the real CA key, with parts changed by hand."""
    key = Ed25519PrivateKey.generate().public_key()
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, org_id),
            x509.NameAttribute(NameOID.COMMON_NAME, "forged"),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage or _usage(), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if uris:
        san = [x509.UniformResourceIdentifier(u) for u in uris]
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if scope is not None:
        extension = x509.UnrecognizedExtension(LICENCE_TYPE_SCOPE_EXTENSION, scope)
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(ca.private_key, hashes.SHA256())


def _department_rejection(
    cert: x509.Certificate,
    ca: RegionCA,
    *,
    licence_type_code: str | None = "A1",
    department_code: str | None = DEPARTMENT_CODE,
) -> Rejection:
    with pytest.raises(CertificateRejectedError) as caught:
        check_department_certificate(
            cert,
            ca.certificate,
            licence_type_code=licence_type_code,
            department_code=department_code,
        )
    assert caught.value.reason.value in str(caught.value)
    return caught.value.reason


def test_project_oids_sit_under_one_uuid_arc() -> None:
    prefix, _, number = LICENCE_LEDGER_OID_ARC.rpartition(".")
    assert prefix == "2.25"
    assert uuid.UUID(int=int(number)).version == 4  # X.667: the arc is a UUID, so unclaimed
    oids = [LICENCE_SIGNING_EKU, LICENCE_TYPE_SCOPE_EXTENSION, SEAL_SCOPE_EXTENSION]
    assert [o.dotted_string for o in oids] == [f"{LICENCE_LEDGER_OID_ARC}.{i}" for i in (1, 2, 3)]


@pytest.mark.parametrize("algorithm", ["ed25519", "p256"])
def test_department_certificate_profile(ca: RegionCA, algorithm: str) -> None:
    key = _department_key(algorithm)
    issued = issue_department_certificate(
        ca, DEPARTMENT_CODE, DEPARTMENT_NAME, key.public_key(), ["B2", "A1"], now=NOW
    )
    cert = issued.certificate
    cert.verify_directly_issued_by(ca.certificate)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.public_key() == key.public_key()
    assert issued.chain == (ca.certificate,)
    assert issued.key is None  # the department keeps its own key
    assert cert.not_valid_after_utc == NOW + timedelta(days=1095)

    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical
    assert not constraints.value.ca
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value == _usage()  # digitalSignature + contentCommitment, nothing else
    eku = _ext(cert, x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == [LICENCE_SIGNING_EKU]
    san = _ext(cert, x509.SubjectAlternativeName)
    assert not san.critical
    assert san.value.get_values_for_type(x509.UniformResourceIdentifier) == [DEPARTMENT_URI]
    assert role_uri(Role.DEPARTMENT, DEPARTMENT_CODE) == DEPARTMENT_URI
    scope = cert.extensions.get_extension_for_oid(LICENCE_TYPE_SCOPE_EXTENSION)
    assert not scope.critical
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == _ext(ca.certificate, x509.SubjectKeyIdentifier).value.digest
    assert len(cert.extensions) == 7

    def attr(oid: x509.ObjectIdentifier) -> str | bytes:
        return cert.subject.get_attributes_for_oid(oid)[0].value

    assert attr(NameOID.COUNTRY_NAME) == "CN"
    assert attr(NameOID.ORGANIZATION_NAME) == DEPARTMENT_NAME
    assert attr(NameOID.COMMON_NAME) == DEPARTMENT_NAME
    assert attr(NameOID.ORGANIZATION_IDENTIFIER) == "NTRCN-" + DEPARTMENT_CODE
    assert department_code_of(cert) == DEPARTMENT_CODE
    assert region_code_of(cert) is None
    assert department_code_of(ca.certificate) is None

    for code in ("A1", "B2", None):
        check_department_certificate(
            cert, ca.certificate, licence_type_code=code, department_code=DEPARTMENT_CODE
        )
    check_department_certificate(cert, ca.certificate)


def test_department_certificate_passes_openssl_strict_verification(
    ca: RegionCA, tmp_path: Path
) -> None:
    # The non-critical scope extension and our EKU must not upset a generic validator.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not installed")
    (tmp_path / "ca.pem").write_bytes(certificate_pem(ca.certificate))
    (tmp_path / "dept.pem").write_bytes(certificate_pem(_department(ca)))
    result = subprocess.run(
        [openssl, "verify", "-x509_strict", "-CAfile", "ca.pem", "dept.pem"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "dept.pem: OK"


def test_licence_type_scope_round_trip(ca: RegionCA) -> None:
    cert = _department(ca, ["C3", "A1", "B2", "A1"])
    extension = cert.extensions.get_extension_for_oid(LICENCE_TYPE_SCOPE_EXTENSION).value
    assert isinstance(extension, x509.UnrecognizedExtension)
    assert extension.value == b"\x30\x0c\x0c\x02A1\x0c\x02B2\x0c\x02C3"  # sorted, once each
    assert licence_type_scope_of(cert) == frozenset({"A1", "B2", "C3"})

    # More than 127 content bytes: the long-form DER length must round-trip too.
    many = [f"{i:02d}" + "X" * 30 for i in range(40)]
    long_scope = _department(ca, list(reversed(many)))
    assert licence_type_scope_of(long_scope) == frozenset(many)
    raw = long_scope.extensions.get_extension_for_oid(LICENCE_TYPE_SCOPE_EXTENSION).value
    assert isinstance(raw, x509.UnrecognizedExtension)
    assert raw.value[:4] == b"\x30\x82\x05\x50"  # 40 * (2 + 32) = 1360 bytes

    assert licence_type_scope_of(_forge_department(ca, scope=None)) is None
    client = issue_client_certificate(ca, Role.DEPARTMENT, DEPARTMENT_CODE, "Dept")
    assert licence_type_scope_of(client.certificate) is None


def test_empty_scope_authorises_nothing(ca: RegionCA) -> None:
    cert = _department(ca, [])
    extension = cert.extensions.get_extension_for_oid(LICENCE_TYPE_SCOPE_EXTENSION).value
    assert isinstance(extension, x509.UnrecognizedExtension)
    assert extension.value == b"\x30\x00"
    assert licence_type_scope_of(cert) == frozenset()
    check_department_certificate(cert, ca.certificate, department_code=DEPARTMENT_CODE)
    assert _department_rejection(cert, ca) is Rejection.LICENCE_TYPE_NOT_IN_SCOPE


def test_department_check_rejects_scope_and_department_mismatches(ca: RegionCA) -> None:
    cert = _department(ca, ["A1", "B2"])
    reason = _department_rejection(cert, ca, licence_type_code="C3")
    assert reason is Rejection.LICENCE_TYPE_NOT_IN_SCOPE
    reason = _department_rejection(cert, ca, department_code=OTHER_DEPARTMENT_CODE)
    assert reason is Rejection.WRONG_DEPARTMENT


def test_department_check_judges_validity_at_the_given_time(ca: RegionCA) -> None:
    old = _department(ca, valid_days=30, now=NOW - timedelta(days=200))
    assert _department_rejection(old, ca) is Rejection.EXPIRED
    # A signature made while the certificate was valid is still judged by that time.
    check_department_certificate(old, ca.certificate, at=NOW - timedelta(days=190))
    with pytest.raises(CertificateRejectedError) as caught:
        check_department_certificate(old, ca.certificate, at=NOW - timedelta(days=201))
    assert caught.value.reason is Rejection.NOT_YET_VALID
    future = _department(ca, now=NOW + timedelta(days=10))
    assert _department_rejection(future, ca) is Rejection.NOT_YET_VALID


def test_department_certificate_from_an_impostor_ca_is_rejected(ca: RegionCA) -> None:
    impostor = create_region_ca("310000", REGION_NAME, now=CA_MADE)
    assert impostor.certificate.subject == ca.certificate.subject
    cert = _department(impostor)
    assert _department_rejection(cert, ca) is Rejection.NOT_ISSUED_BY_CA
    check_department_certificate(cert, impostor.certificate)  # fine under its own root


def test_tls_and_ca_certificates_cannot_sign_licences(
    ca: RegionCA, server: IssuedCertificate
) -> None:
    client = issue_client_certificate(ca, Role.DEPARTMENT, DEPARTMENT_CODE, DEPARTMENT_NAME)
    assert _department_rejection(client.certificate, ca) is Rejection.NOT_FOR_LICENCE_SIGNING
    assert _department_rejection(server.certificate, ca) is Rejection.NOT_FOR_LICENCE_SIGNING
    assert _department_rejection(ca.certificate, ca) is Rejection.NOT_FOR_LICENCE_SIGNING


def test_department_certificate_is_not_a_tls_client(ca: RegionCA) -> None:
    # It carries the department's role URI, but no clientAuth: it cannot log in.
    cert = _department(ca)
    assert _rejection(certificate_pem(cert), ca) is Rejection.NOT_FOR_CLIENT_AUTH


def test_forged_department_helper_is_otherwise_acceptable(ca: RegionCA) -> None:
    # Guards the tables below: each forgery fails for the part it changes, nothing else.
    check_department_certificate(
        _forge_department(ca),
        ca.certificate,
        licence_type_code="A1",
        department_code=DEPARTMENT_CODE,
    )


@pytest.mark.parametrize(
    "scope",
    [
        b"",
        b"\x30",
        b"\x31\x04\x0c\x02A1",  # a SET
        b"\x30\x04\x13\x02A1",  # PrintableString element
        b"\x30\x04\x0c\x02A1\x00",  # trailing byte
        b"\x30\x80\x0c\x02A1\x00\x00",  # indefinite length
        b"\x30\x81\x04\x0c\x02A1",  # long form for a short length
        b"\x30\x05\x0c\x02A1",  # length past the end
        b"\x30\x04\x0c\x02\xff\xfe",  # not UTF-8
        b"\x30\x04\x0c\x02a1",  # lower case
        b"\x30\x02\x0c\x00",  # empty code
        b"\x30\x08\x0c\x02B2\x0c\x02A1",  # unsorted
        b"\x30\x08\x0c\x02A1\x0c\x02A1",  # duplicate
        b"\x30\x03\x02\x01\x01",  # INTEGER
    ],
)
def test_malformed_scope_extension_is_rejected(ca: RegionCA, scope: bytes) -> None:
    cert = _forge_department(ca, scope=scope)
    with pytest.raises(PkiInputError, match="scope"):
        licence_type_scope_of(cert)
    assert _department_rejection(cert, ca) is Rejection.MALFORMED


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"scope": None}, Rejection.MALFORMED),
        ({"org_id": "GB2260:310000"}, Rejection.MALFORMED),
        ({"org_id": "NTRCN-" + DEPARTMENT_CODE.lower()}, Rejection.MALFORMED),
        ({"uris": ()}, Rejection.MALFORMED),
        (
            {"uris": (f"urn:licence-ledger:department:{OTHER_DEPARTMENT_CODE}",)},
            Rejection.MALFORMED,
        ),
        ({"uris": (DEPARTMENT_URI, "urn:licence-ledger:admin:alice")}, Rejection.MALFORMED),
        ({"eku": None}, Rejection.NOT_FOR_LICENCE_SIGNING),
        ({"eku": (ExtendedKeyUsageOID.CLIENT_AUTH,)}, Rejection.NOT_FOR_LICENCE_SIGNING),
        ({"usage": _usage(content_commitment=False)}, Rejection.NOT_FOR_LICENCE_SIGNING),
        ({"usage": _usage(key_cert_sign=True)}, Rejection.NOT_FOR_LICENCE_SIGNING),
    ],
    ids=[
        "no-scope",
        "no-department-id",
        "bad-department-id",
        "no-san",
        "san-other-department",
        "san-two-roles",
        "no-eku",
        "client-auth-eku",
        "no-content-commitment",
        "key-cert-sign",
    ],
)
def test_department_certificate_parts_are_enforced(
    ca: RegionCA, changes: dict[str, object], reason: Rejection
) -> None:
    cert = _forge_department(ca, **changes)  # type: ignore[arg-type]
    assert _department_rejection(cert, ca) is reason


def _der(tag: int, content: bytes) -> bytes:
    size = len(content)
    if size < 0x80:
        return bytes([tag, size]) + content
    octets = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(octets)]) + octets + content


def _with_duplicate_scope(ca: RegionCA) -> bytes:
    """DER of a certificate, validly signed by `ca`, holding the scope extension twice.

    No builder makes one, so the second extension is renamed in the signed part and
    the result re-signed by hand.
    """
    placeholder = x509.UnrecognizedExtension(SEAL_SCOPE_EXTENSION, b"\x30\x00")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "twice")]))
        .issuer_name(ca.certificate.subject)
        .public_key(Ed25519PrivateKey.generate().public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.UnrecognizedExtension(LICENCE_TYPE_SCOPE_EXTENSION, SCOPE_A1), False)
        .add_extension(placeholder, critical=False)
        .sign(ca.private_key, hashes.SHA256())
    )
    # The OIDs differ only in their last byte (.2, .3); the extension value follows it.
    tbs = cert.tbs_certificate_bytes
    assert tbs.count(b"\x03\x04\x02\x30\x00") == 1
    tbs = tbs.replace(b"\x03\x04\x02\x30\x00", b"\x02\x04\x02\x30\x00")
    assert isinstance(ca.private_key, ec.EllipticCurvePrivateKey)
    signature = ca.private_key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    ecdsa_with_sha256 = bytes.fromhex("300a06082a8648ce3d040302")
    return _der(0x30, tbs + ecdsa_with_sha256 + _der(0x03, b"\x00" + signature))


def test_duplicated_extension_is_malformed_not_a_crash(ca: RegionCA) -> None:
    der = _with_duplicate_scope(ca)
    cert = x509.load_der_x509_certificate(der)
    cert.verify_directly_issued_by(ca.certificate)  # the signature itself is good
    with pytest.raises(PkiInputError, match="Duplicate"):
        licence_type_scope_of(cert)
    assert _department_rejection(cert, ca, licence_type_code=None) is Rejection.MALFORMED
    assert _rejection(der, ca) is Rejection.MALFORMED


def test_department_keys_must_be_ed25519_or_p256(ca: RegionCA) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    for key in (rsa_key, p384):
        with pytest.raises(PkiInputError, match="Ed25519 or ECDSA P-256"):
            issue_department_certificate(
                ca,
                DEPARTMENT_CODE,
                DEPARTMENT_NAME,
                key,  # type: ignore[arg-type]
                ["A1"],
            )


@pytest.mark.parametrize(
    ("code", "name", "types", "match"),
    [
        ("11310000002419612", DEPARTMENT_NAME, ["A1"], "department code"),
        ("11310000002419612h", DEPARTMENT_NAME, ["A1"], "department code"),
        ("1131000000241961IO", DEPARTMENT_NAME, ["A1"], "department code"),
        ("１１310000002419612H", DEPARTMENT_NAME, ["A1"], "department code"),
        (DEPARTMENT_CODE, "", ["A1"], "department name"),
        (DEPARTMENT_CODE, "Dept\nCN=Root", ["A1"], "control"),
        (DEPARTMENT_CODE, DEPARTMENT_NAME, [""], "licence type"),
        (DEPARTMENT_CODE, DEPARTMENT_NAME, ["a1"], "licence type"),
        (DEPARTMENT_CODE, DEPARTMENT_NAME, ["A" * 33], "licence type"),
        (DEPARTMENT_CODE, DEPARTMENT_NAME, ["A-1"], "licence type"),
        (DEPARTMENT_CODE, DEPARTMENT_NAME, "A1", "not a string"),
    ],
)
def test_department_certificate_inputs_are_validated(
    ca: RegionCA, code: str, name: str, types: Sequence[str], match: str
) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(PkiInputError, match=match):
        issue_department_certificate(ca, code, name, key, types)


def test_department_certificate_time_rules(ca: RegionCA) -> None:
    key = Ed25519PrivateKey.generate().public_key()
    long = issue_department_certificate(
        ca, DEPARTMENT_CODE, DEPARTMENT_NAME, key, ["A1"], valid_days=100_000
    )
    assert long.certificate.not_valid_after_utc == ca.certificate.not_valid_after_utc
    with pytest.raises(PkiInputError, match="timezone"):
        issue_department_certificate(
            ca, DEPARTMENT_CODE, DEPARTMENT_NAME, key, ["A1"], now=datetime(2026, 1, 1)
        )
    with pytest.raises(PkiInputError, match="timezone"):
        check_department_certificate(long.certificate, ca.certificate, at=datetime(2026, 1, 1))


def test_department_check_refuses_bad_arguments(ca: RegionCA, server: IssuedCertificate) -> None:
    cert = _department(ca)
    with pytest.raises(PkiInputError, match="not a CA"):
        check_department_certificate(cert, server.certificate)
    with pytest.raises(PkiInputError, match="licence type"):
        check_department_certificate(cert, ca.certificate, licence_type_code="a1")
    with pytest.raises(PkiInputError, match="department code"):
        check_department_certificate(cert, ca.certificate, department_code="x")


def test_key_id_is_the_sha256_of_the_spki() -> None:
    for private in (Ed25519PrivateKey.generate(), ec.generate_private_key(ec.SECP256R1())):
        key = private.public_key()
        spki = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        assert key_id_of(key) == hashlib.sha256(spki).hexdigest()
        assert key_id_of(key).islower()
        assert len(key_id_of(key)) == 64


def _csr(key: Ed25519PrivateKey | ec.EllipticCurvePrivateKey) -> x509.CertificateSigningRequest:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "department TLS client")])
    digest = None if isinstance(key, Ed25519PrivateKey) else hashes.SHA256()
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, digest)


@pytest.mark.parametrize("algorithm", ["ed25519", "p256"])
def test_request_public_key_from_csr_and_spki(algorithm: str) -> None:
    key = _department_key(algorithm)
    public = key.public_key()
    csr = _csr(key)
    der = csr.public_bytes(serialization.Encoding.DER)
    pem = csr.public_bytes(serialization.Encoding.PEM)
    old_label = pem.replace(b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    inputs = [
        der,
        pem,
        old_label,
        public.public_bytes(serialization.Encoding.DER, spki),
        public.public_bytes(serialization.Encoding.PEM, spki),
    ]
    for data in inputs:
        assert certificate_request_public_key(data) == public


def test_request_with_a_broken_signature_or_wrong_content_is_refused(ca: RegionCA) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    der = bytearray(_csr(key).public_bytes(serialization.Encoding.DER))
    der[-1] ^= 0x01  # the last byte of the ECDSA signature's s
    assert x509.load_der_x509_csr(bytes(der)).public_key() == key.public_key()  # still parses
    with pytest.raises(PkiInputError, match="signature does not verify"):
        certificate_request_public_key(bytes(der))

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_pem = certificate_pem(ca.certificate)
    for data in (
        b"",
        b"not a request",
        private_pem,
        cert_pem,
        _csr(ec.generate_private_key(ec.SECP384R1())).public_bytes(serialization.Encoding.DER),
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    ):
        with pytest.raises(PkiInputError):
            certificate_request_public_key(data)


# --- encrypted key files -------------------------------------------------------------------


def test_key_file_is_encrypted_owner_only_and_reloads(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "keys" / "server.key.pem"
    write_encrypted_pkcs8(path, key, PASSPHRASE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):  # no password, no key
        serialization.load_pem_private_key(pem, None)
    assert load_encrypted_pkcs8(path, PASSPHRASE).public_key() == key.public_key()

    with pytest.raises(KeyStoreError) as caught:
        load_encrypted_pkcs8(path, b"guess-123")
    assert "guess-123" not in str(caught.value)
    assert "wrong passphrase" in str(caught.value)


def test_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k.pem"
    first = ec.generate_private_key(ec.SECP256R1())
    write_encrypted_pkcs8(path, first, PASSPHRASE)
    with pytest.raises(KeyStoreError, match="already exists"):
        write_encrypted_pkcs8(path, ec.generate_private_key(ec.SECP256R1()), PASSPHRASE)
    assert load_encrypted_pkcs8(path, PASSPHRASE).public_key() == first.public_key()


def test_key_files_refuse_empty_passphrase_missing_and_plaintext(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(KeyStoreError, match="empty passphrase"):
        write_encrypted_pkcs8(tmp_path / "k.pem", key, b"")
    with pytest.raises(KeyStoreError, match="no key"):
        load_encrypted_pkcs8(tmp_path / "missing.pem", PASSPHRASE)
    plain = tmp_path / "plain.pem"
    plain.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyStoreError, match="not an encrypted"):
        load_encrypted_pkcs8(plain, PASSPHRASE)


# --- a real TLS handshake ------------------------------------------------------------------


@dataclass
class _Outcome:
    peer_der: bytes | None = None
    error: OSError | None = None


def _files(issued: IssuedCertificate, directory: Path, stem: str) -> tuple[Path, Path]:
    assert issued.key is not None
    cert_path = directory / f"{stem}.crt"
    key_path = directory / f"{stem}.key.pem"
    cert_path.write_bytes(issued.certificate_chain_pem())
    write_encrypted_pkcs8(key_path, issued.key, PASSPHRASE)
    return cert_path, key_path


def _context(
    server_side: bool, ca: RegionCA, own: IssuedCertificate | None, directory: Path, stem: str
) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server_side else ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    # Strict RFC 5280 checking, as newer Pythons enable by default: our profile must pass it.
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    context.load_verify_locations(cadata=certificate_pem(ca.certificate).decode())
    if own is not None:
        cert_path, key_path = _files(own, directory, stem)
        # OpenSSL decrypts the PKCS#8 file itself: the format is interoperable.
        context.load_cert_chain(cert_path, key_path, password=PASSPHRASE)
    return context


def _handshake(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext, server_hostname: str
) -> tuple[_Outcome, _Outcome]:
    server, client = _Outcome(), _Outcome()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(5)
        port = listener.getsockname()[1]

        def serve() -> None:
            try:
                conn, _ = listener.accept()
                conn.settimeout(5)
                with conn, server_context.wrap_socket(conn, server_side=True) as tls:
                    server.peer_der = tls.getpeercert(binary_form=True)
                    tls.sendall(b"ok")
            except OSError as exc:  # ssl.SSLError included
                server.error = exc

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
                client_context.wrap_socket(raw, server_hostname=server_hostname) as tls,
            ):
                # In TLS 1.3 the client finishes before the server has judged its
                # certificate; a refusal only shows when the client reads.
                reply = tls.recv(2)
                if reply != b"ok":
                    client.error = ConnectionResetError(f"server closed the connection: {reply!r}")
        except OSError as exc:
            client.error = exc
        thread.join(10)
        assert not thread.is_alive()
    return server, client


@pytest.mark.parametrize(
    ("role", "subject_id", "server_hostname"),
    [(Role.ADMIN, "alice", "localhost"), (Role.DEPARTMENT, DEPARTMENT_CODE, "127.0.0.1")],
)
def test_tls_handshake_with_issued_client_certificate(
    ca: RegionCA,
    server: IssuedCertificate,
    tmp_path: Path,
    role: Role,
    subject_id: str,
    server_hostname: str,
) -> None:
    client_cert = issue_client_certificate(ca, role, subject_id, "TLS client")
    server_context = _context(True, ca, server, tmp_path, "server")
    client_context = _context(False, ca, client_cert, tmp_path, "client")

    on_server, on_client = _handshake(server_context, client_context, server_hostname)
    assert on_server.error is None
    assert on_client.error is None
    assert on_server.peer_der is not None
    # What the gRPC server will do with the peer certificate once TLS accepted it.
    identity = identify_client(on_server.peer_der, ca.certificate)
    assert (identity.role, identity.subject_id) == (role, subject_id)
    assert identity.serial == client_cert.certificate.serial_number


@pytest.mark.parametrize("foreign_same_name", [True, False])
def test_tls_refuses_client_certificate_from_a_foreign_ca(
    ca: RegionCA, server: IssuedCertificate, tmp_path: Path, foreign_same_name: bool
) -> None:
    foreign = create_region_ca("310000" if foreign_same_name else "320000", REGION_NAME)
    intruder = issue_client_certificate(foreign, Role.ADMIN, "alice", "Alice")
    server_context = _context(True, ca, server, tmp_path, "server")
    # The intruder trusts our root, so only the server's check can stop it.
    client_context = _context(False, ca, intruder, tmp_path, "client")

    on_server, on_client = _handshake(server_context, client_context, "localhost")
    assert isinstance(on_server.error, ssl.SSLError)
    assert "certificate verify failed" in str(on_server.error)
    assert on_server.peer_der is None
    assert on_client.error is not None


def test_tls_refuses_a_client_without_certificate(
    ca: RegionCA, server: IssuedCertificate, tmp_path: Path
) -> None:
    server_context = _context(True, ca, server, tmp_path, "server")
    client_context = _context(False, ca, None, tmp_path, "client")
    on_server, on_client = _handshake(server_context, client_context, "localhost")
    assert isinstance(on_server.error, ssl.SSLError)
    assert on_client.error is not None
