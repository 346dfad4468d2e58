"""The region CA's certificate revocation list (RFC 5280 §5).

PAdES B-LT puts revocation data for every certificate below a trust root into the
document (its /DSS), so that the seal can be validated later with nothing fetched.
For a seal certificate that data is the region CA's own CRL: the region knows
every certificate it revoked (seals and department keys), because each revocation
is a ledger entry, and it signs the list with the root key that issued them.

The list is short-lived on purpose: a document sealed at time t carries a CRL whose
validity covers t, which is what a validator needs; it never has to be fetched again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer import _x509
from signer.pki import RegionCA

# Long enough for the validator's clock to sit inside it; short so that a stolen
# list stops vouching soon. A server regenerates its list well within this.
DEFAULT_LIFETIME = timedelta(days=1)


@dataclass(frozen=True)
class Revocation:
    """A certificate the region CA revoked."""

    serial_number: int
    revoked_at: datetime  # when the revocation was recorded
    # When the key stopped being trustworthy, if earlier (RFC 5280 §5.3.2).
    invalid_since: datetime | None = None
    reason: x509.ReasonFlags = x509.ReasonFlags.unspecified


def revocation_list(
    ca: RegionCA,
    revoked: Iterable[Revocation],
    *,
    number: int,
    now: datetime | None = None,
    lifetime: timedelta = DEFAULT_LIFETIME,
) -> bytes:
    """A DER CRL signed by `ca` listing `revoked`; `number` must grow with each list."""
    if number < 0:
        raise ValueError("a CRL number is not negative")
    if lifetime <= timedelta(0):
        raise ValueError("a CRL must be valid for some time")
    at = _x509.utc_now(now)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(at)
        .next_update(at + lifetime)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.private_key.public_key()),
            critical=False,
        )
    )
    for item in sorted(revoked, key=lambda r: r.serial_number):
        entry = (
            x509.RevokedCertificateBuilder()
            .serial_number(item.serial_number)
            .revocation_date(_x509.utc_now(item.revoked_at))
        )
        if item.reason is not x509.ReasonFlags.unspecified:
            entry = entry.add_extension(x509.CRLReason(item.reason), critical=False)
        if item.invalid_since is not None and item.invalid_since < item.revoked_at:
            invalid = _x509.utc_now(item.invalid_since)
            entry = entry.add_extension(x509.InvalidityDate(invalid), critical=False)
        builder = builder.add_revoked_certificate(entry.build())
    key = ca.private_key
    digest = None if isinstance(key, Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, digest).public_bytes(serialization.Encoding.DER)
