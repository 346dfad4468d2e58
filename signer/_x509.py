"""X.509 mechanics behind `signer.pki`.

Nothing here knows about roles or regions: it builds and signs certificates,
computes validity windows, checks TLS names and key usages, parses and serialises
certificates, CSRs and public keys, and encodes the one piece of DER the standard
extensions do not cover. Input errors are plain `ValueError`s; `signer.pki` turns
them into its own error types.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
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


def require_ed25519_or_p256(key: object) -> PublicKey:
    """The key itself, if it is Ed25519 or ECDSA P-256: the keys licence signers may hold."""
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise ValueError(
        f"the key must be Ed25519 or ECDSA P-256 (secp256r1), not {type(key).__name__}"
        + (f" on {key.curve.name}" if isinstance(key, ec.EllipticCurvePublicKey) else "")
    )


def key_id(key: PublicKey) -> str:
    """Lower-case hex SHA-256 of the key's SubjectPublicKeyInfo DER."""
    spki = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


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
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def leaf_builder(
    issuer: x509.Certificate,
    subject: x509.Name,
    public_key: PublicKey,
    window: tuple[datetime, datetime],
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
) -> x509.CertificateBuilder:
    """An end-entity certificate: BasicConstraints ca=False, `extensions`, SKI and AKI.

    Each extension is given with its critical flag.
    """
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
    ).add_extension(
        x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            subject_key_identifier(issuer)
        ),
        critical=False,
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
    extensions: list[tuple[x509.ExtensionType, bool]] = [
        # ECDHE key exchange (all of TLS 1.3, and every TLS 1.2 suite gRPC offers) only
        # needs the certificate key to sign; keyAgreement would matter only for the
        # static-ECDH suites nobody negotiates, so it is left out (least privilege).
        (key_usage(digital_signature=True), True),
        (x509.ExtendedKeyUsage([purpose]), False),
        # Non-critical: the subject is not empty (RFC 5280 §4.2.1.6).
        (x509.SubjectAlternativeName(san), False),
    ]
    return leaf_builder(issuer, subject, public_key, window, extensions)


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


def signing_purpose_problem(
    cert: x509.Certificate, purpose: x509.ObjectIdentifier, usage: x509.KeyUsage
) -> str | None:
    """Why `cert` may not sign for `purpose` with exactly `usage`, or None if it may."""
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        # RFC 5280 reads a missing EKU (and key usage) as "any"; we always issue both.
        return f"no extended key usage ({purpose.dotted_string} required)"
    if purpose not in eku:
        return f"extended key usage lacks {purpose.dotted_string}"
    try:
        actual = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "no key usage"
    if actual != usage:
        return f"key usage is not exactly {', '.join(_usage_names(usage))}"
    try:
        require_ed25519_or_p256(cert.public_key())
    except (ValueError, UnsupportedAlgorithm) as exc:
        return str(exc)
    return None


def _usage_names(usage: x509.KeyUsage) -> list[str]:
    names = ["digital_signature", "content_commitment", "key_encipherment"]
    names += ["data_encipherment", "key_agreement", "key_cert_sign", "crl_sign"]
    return [n for n in names if getattr(usage, n)]


def role_uris(cert: x509.Certificate, prefix: str) -> list[str]:
    """The certificate's SAN URIs starting with `prefix`, compared case-insensitively.

    RFC 8141 §3.1 makes the scheme and NID case-insensitive, so a differently cased
    URI must count as well, or it could slip past an "exactly one" rule unseen.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return [u for u in uris if u.lower().startswith(prefix.lower())]


# --- a minimal DER codec for SEQUENCE OF UTF8String ----------------------------------
#
# asn1crypto/pyasn1 are not dependencies, and this is the only structure needed. The
# decoder is strict DER (X.690 §10): definite, minimal lengths and no trailing bytes,
# so one value has exactly one encoding and nothing can hide after it.

_SEQUENCE = 0x30
_UTF8_STRING = 0x0C


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _der_tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _read_tlv(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, content, offset after the element) of the element at `offset`."""
    if len(data) - offset < 2:
        raise ValueError("truncated DER element")
    tag, first = data[offset], data[offset + 1]
    offset += 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise ValueError("indefinite length is not DER")
    else:
        count = first & 0x7F
        # Four octets already allow 4 GiB; anything longer cannot be a real extension.
        if count > 4 or len(data) - offset < count:
            raise ValueError("bad DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        if length < 0x80 or data[offset] == 0:
            raise ValueError("DER length is not minimally encoded")
        offset += count
    if len(data) - offset < length:
        raise ValueError("truncated DER element")
    return tag, data[offset : offset + length], offset + length


def encode_utf8_sequence(values: Iterable[str]) -> bytes:
    """DER ``SEQUENCE OF UTF8String`` holding `values` in the given order."""
    return _der_tlv(_SEQUENCE, b"".join(_der_tlv(_UTF8_STRING, v.encode("utf-8")) for v in values))


def decode_utf8_sequence(der: bytes) -> list[str]:
    """The strings of a DER ``SEQUENCE OF UTF8String``; anything else is a ValueError."""
    tag, content, end = _read_tlv(der, 0)
    if tag != _SEQUENCE:
        raise ValueError(f"expected a DER SEQUENCE, found tag 0x{tag:02x}")
    if end != len(der):
        raise ValueError(f"{len(der) - end} bytes after the SEQUENCE")
    values: list[str] = []
    offset = 0
    while offset < len(content):
        tag, value, offset = _read_tlv(content, offset)
        if tag != _UTF8_STRING:
            raise ValueError(f"expected UTF8String elements, found tag 0x{tag:02x}")
        try:
            values.append(value.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ValueError("a UTF8String is not valid UTF-8") from exc
    return values


# OpenSSL and Windows tools still write the pre-RFC 7468 "NEW" label for CSRs.
_CSR_PEM_HEADERS = (
    b"-----BEGIN CERTIFICATE REQUEST-----",
    b"-----BEGIN NEW CERTIFICATE REQUEST-----",
)


def parse_request_public_key(data: bytes) -> PublicKey:
    """The key of a PKCS#10 CSR (whose signature must verify) or a SubjectPublicKeyInfo.

    Both in DER or PEM. Only Ed25519 and P-256 keys are returned.
    """
    if not isinstance(data, bytes):
        raise ValueError("expected bytes (DER or PEM)")
    stripped = data.lstrip()
    key: object
    try:
        if stripped.startswith(b"-----BEGIN"):
            if stripped.startswith(_CSR_PEM_HEADERS):
                key = _csr_key(x509.load_pem_x509_csr(data))
            elif stripped.startswith(b"-----BEGIN PUBLIC KEY-----"):
                key = serialization.load_pem_public_key(data)
            else:
                raise ValueError("PEM block is neither a CERTIFICATE REQUEST nor a PUBLIC KEY")
        else:
            try:
                csr = x509.load_der_x509_csr(data)
            except ValueError:
                key = serialization.load_der_public_key(data)
            else:
                key = _csr_key(csr)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a usable CSR or public key: {exc}") from exc
    return require_ed25519_or_p256(key)


def _csr_key(csr: x509.CertificateSigningRequest) -> object:
    # The signature proves the requester holds the private key (proof of possession);
    # without it anyone could have a certificate issued for someone else's public key.
    if not csr.is_signature_valid:
        raise ValueError("the CSR's signature does not verify")
    return csr.public_key()


def parse_certificate(data: bytes) -> x509.Certificate:
    """A certificate from PEM (the first one, if several) or DER bytes."""
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)
