"""Issuing keys accepted as the region's licence signers, with their certificate checked once.

A department certificate is checked against the region root (issuer signature,
licence-signing purpose, department binding, readable scope) the first time its key
signs something we verify; the result is kept, since a certificate never changes.
What does change, the key's status, is always read fresh; and the certificate's
validity period is judged against each signing time (`within_validity`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signer import dsse, pki
from verifier.records import IssuingKey, RegionRecords

_MAX_CACHED = 10_000


@dataclass(frozen=True, slots=True)
class AcceptedIssuer:
    issuing: IssuingKey
    certificate: x509.Certificate
    public_key: dsse.VerifyingKey
    scope: frozenset[str]

    @property
    def department_code(self) -> str:
        return self.issuing.department_code

    def within_validity(self, at: datetime) -> bool:
        cert = self.certificate
        return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


class IssuerCertificates:
    def __init__(self, records: RegionRecords) -> None:
        self._records = records
        self._accepted: dict[bytes, AcceptedIssuer | str] = {}

    def accept(self, issuing: IssuingKey) -> AcceptedIssuer | str:
        """The key as an accepted issuer, or why its certificate is not one."""
        der = issuing.key.certificate.certificate
        cached = self._accepted.get(der)
        if cached is None:
            cached = self._check(issuing, der)
            if len(self._accepted) >= _MAX_CACHED:
                self._accepted.clear()
            self._accepted[der] = cached
        if isinstance(cached, str):
            return cached
        return dataclasses.replace(cached, issuing=issuing)

    def _check(self, issuing: IssuingKey, der: bytes) -> AcceptedIssuer | str:
        try:
            cert = x509.load_der_x509_certificate(der)
            # The time is judged per signature (`within_validity`), so the chain
            # check looks at the certificate at the start of its own validity.
            pki.check_department_certificate(
                cert,
                self._records.root_certificate,
                department_code=issuing.department_code,
                at=cert.not_valid_before_utc,
            )
            scope = pki.licence_type_scope_of(cert)
        except (ValueError, pki.PkiError) as exc:
            return f"{exc}"
        key = cert.public_key()
        if not isinstance(key, Ed25519PublicKey | ec.EllipticCurvePublicKey) or (
            isinstance(key, ec.EllipticCurvePublicKey) and not isinstance(key.curve, ec.SECP256R1)
        ):
            return "the certificate's key is neither Ed25519 nor ECDSA P-256"
        if dsse.key_id(key) != issuing.key.certificate.key_id:
            return "the registered key id is not the certificate's key"
        return AcceptedIssuer(issuing, cert, key, scope or frozenset())
