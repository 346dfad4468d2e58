"""The region PKI: root CA, TLS certificates, client roles, key files and a real handshake."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from signer.keystore import KeyStoreError, load_encrypted_pkcs8, write_encrypted_pkcs8
from signer.pki import (
    CertificateRejectedError,
    ClientIdentity,
    IssuedCertificate,
    PkiError,
    PkiInputError,
    RegionCA,
    Rejection,
    Role,
    certificate_pem,
    create_region_ca,
    identify_client,
    issue_client_certificate,
    issue_server_certificate,
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
