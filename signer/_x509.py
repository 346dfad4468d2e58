"""X.509 mechanics behind `signer.pki`.

Nothing here knows about roles or regions: it builds and signs certificates,
computes validity windows, checks TLS names and key usages, parses and serialises
certificates, and keeps private keys on disk the way `signer.keystore` does. Input
errors are plain `ValueError`s; `signer.pki` turns them into its own error types.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.x509.oid import ExtendedKeyUsageOID

# ECDSA P-256 is what every TLS stack (gRPC's BoringSSL included) accepts; Ed25519 is
# kept in the types because licence signing certificates may use it later.
SigningKey = ec.EllipticCurvePrivateKey | Ed25519PrivateKey
PublicKey = ec.EllipticCurvePublicKey | Ed25519PublicKey

# Peers' clocks drift; a certificate that starts "now" would be refused for a few
# seconds by a verifier running slightly behind. Backdating is what public CAs do too.
CLOCK_SKEW = timedelta(minutes=5)

_DNS_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def generate_p256() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def require_p256(key: PublicKey) -> ec.EllipticCurvePublicKey:
    """The key itself, if it is an ECDSA P-256 key, which is what TLS certificates use here."""
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("TLS certificates need an ECDSA P-256 (secp256r1) public key")
    return key


def sign(builder: x509.CertificateBuilder, key: SigningKey) -> x509.Certificate:
    # Ed25519 hashes internally and must be given no digest; ECDSA uses SHA-256.
    digest = None if isinstance(key, Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, digest)


def utc_now(now: datetime | None) -> datetime:
    """`now` as an aware UTC time to the second (X.509 times carry no fractions)."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        # A naive time is off by the local UTC offset; guessing would mis-date certificates.
        raise ValueError("now must be a timezone-aware datetime")
    return now.astimezone(UTC).replace(microsecond=0)


def check_valid_days(valid_days: int) -> None:
    if isinstance(valid_days, bool) or not isinstance(valid_days, int) or valid_days < 1:
        raise ValueError(f"valid_days must be a positive integer, not {valid_days!r}")


def validity_window(
    now: datetime, valid_days: int, issuer: x509.Certificate | None
) -> tuple[datetime, datetime]:
    """Not-before and not-after for a certificate issued at `now`.

    Under an issuer the window is clipped to the issuer's own, so no certificate
    outlives the CA that vouches for it (some verifiers reject such chains outright).
    """
    check_valid_days(valid_days)
    not_before = now - CLOCK_SKEW
    not_after = now + timedelta(days=valid_days)
    if issuer is not None:
        ca_from, ca_until = issuer.not_valid_before_utc, issuer.not_valid_after_utc
        if not ca_from <= now <= ca_until:
            raise ValueError(
                f"the issuing CA is valid from {ca_from:%Y-%m-%d %H:%M:%S}Z until "
                f"{ca_until:%Y-%m-%d %H:%M:%S}Z, not at {now:%Y-%m-%d %H:%M:%S}Z"
            )
        not_before = max(not_before, ca_from)
        not_after = min(not_after, ca_until)
    return not_before, not_after


def subject_key_identifier(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        # Certificates we did not make may lack the extension; RFC 5280 method 1 then.
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key())


def name(attributes: Iterable[tuple[x509.ObjectIdentifier, str]]) -> x509.Name:
    return x509.Name([x509.NameAttribute(oid, value) for oid, value in attributes])


def first_attribute(subject: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    for attribute in subject.get_attributes_for_oid(oid):
        value = attribute.value
        return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return None


def key_usage(
    *, digital_signature: bool = False, key_cert_sign: bool = False, crl_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def tls_leaf_builder(
    issuer: x509.Certificate,
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    window: tuple[datetime, datetime],
    purpose: x509.ObjectIdentifier,
    san: Sequence[x509.GeneralName],
) -> x509.CertificateBuilder:
    """An end-entity TLS certificate for one purpose (clientAuth or serverAuth)."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # ECDHE key exchange (all of TLS 1.3, and every TLS 1.2 suite gRPC offers) only
        # needs the certificate key to sign; keyAgreement would matter only for the
        # static-ECDH suites nobody negotiates, so it is left out (least privilege).
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([purpose]), critical=False)
        # Non-critical: the subject is not empty (RFC 5280 §4.2.1.6).
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                subject_key_identifier(issuer)
            ),
            critical=False,
        )
    )


def dns_name(hostname: str) -> str:
    """`hostname` lower-cased, if it is an ASCII DNS name (no wildcard, no IP literal)."""
    if not isinstance(hostname, str):
        raise ValueError(f"host name must be a string, not {hostname!r}")
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        raise ValueError(f"{hostname} is an IP address: pass it in ip_addresses")
    labels = hostname.split(".")
    if len(hostname) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        # Wildcards and U-labels are refused: a region's server has known ASCII names.
        raise ValueError(f"{hostname!r} is not a valid ASCII DNS host name")
    return hostname.lower()


def server_san(hostnames: Sequence[str], ip_addresses: Sequence[str]) -> list[x509.GeneralName]:
    """DNS and IP SAN entries, de-duplicated in order; at least one is required."""
    if isinstance(hostnames, str) or isinstance(ip_addresses, str):
        # A bare string is a sequence of characters: "localhost" would become 9 names.
        raise ValueError("hostnames and ip_addresses must be sequences of strings")
    dns = dict.fromkeys(dns_name(h) for h in hostnames)
    ips = dict.fromkeys(ipaddress.ip_address(a) for a in ip_addresses)
    if not dns and not ips:
        raise ValueError("a server certificate needs at least one host name or IP address")
    return [x509.DNSName(d) for d in dns] + [x509.IPAddress(ip) for ip in ips]


def client_auth_problem(cert: x509.Certificate) -> str | None:
    """Why `cert` may not authenticate a TLS client, or None if it may."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        # RFC 5280 reads a missing EKU as "any purpose"; we always issue one, so insist.
        return "no extended key usage (clientAuth required)"
    if ExtendedKeyUsageOID.CLIENT_AUTH not in eku:
        return "extended key usage lacks clientAuth"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None
    return None if usage.digital_signature else "key usage lacks digitalSignature"


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def parse_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM (the first one, if several) or DER bytes."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
