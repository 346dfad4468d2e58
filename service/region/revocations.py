"""Validation data for PAdES B-LT seals: the region's CRL and the operator's files.

A B-LT seal carries, in the document, revocation data for every certificate below
a trust root: the seal certificate (the region CA's own CRL, made here from the
registry) and the timestamp authority's chain (CRLs or OCSP responses the operator
puts in a directory, as a TSA publishes them). Nothing is fetched while sealing.

The region CRL is remade when a revocation is recorded, and otherwise every
`REFRESH`, so that its validity always covers the moment a document is sealed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from google.protobuf.timestamp_pb2 import Timestamp

from ledger import LedgerReader
from licenceledger.registry.v1 import registry_pb2
from licenceledger.seal.v1 import seal_pb2
from service.region import index, seal_index
from service.region.sealing import LtvData
from signer import crl, pki

REFRESH = timedelta(minutes=1)
_MAX_FILE_BYTES = 16 << 20


class ValidationDataError(ValueError):
    """A file in the revocation-data directory is not a CRL or OCSP response."""


@dataclass(frozen=True)
class LtvSettings:
    """What the operator configured: the TSA's trust roots and its revocation data."""

    timestamp_roots: tuple[bytes, ...]  # DER certificates
    revocation_dir: Path | None  # *.crl (DER or PEM) and *.ocsp (DER OCSPResponse)

    @classmethod
    def load(cls, roots_pem: Path, revocation_dir: Path | None) -> LtvSettings:
        roots = x509.load_pem_x509_certificates(roots_pem.read_bytes())
        der = serialization.Encoding.DER
        return cls(tuple(c.public_bytes(der) for c in roots), revocation_dir)


def _moment(ts: Timestamp) -> datetime | None:
    return ts.ToDatetime(tzinfo=UTC) if ts.seconds or ts.nanos else None


def _serial(der: bytes) -> int:
    return x509.load_der_x509_certificate(der).serial_number


def revoked_certificates(view: LedgerReader) -> Iterator[crl.Revocation]:
    """Every certificate of the region's registry that is revoked: seals, department keys."""
    prefix = seal_index.SEAL_PREFIX
    for _, value in view.index_scan(prefix, index.prefix_end(prefix)):
        seal = seal_pb2.Seal.FromString(value)
        if seal.status == seal_pb2.SEAL_STATUS_REVOKED:
            revoked_at = _moment(seal.status_changed_at) or _moment(seal.registered_at)
            if revoked_at is not None:
                yield crl.Revocation(
                    _serial(seal.certificate.certificate), revoked_at, _moment(seal.invalid_since)
                )
    prefix = index.department_key("")
    for _, value in view.index_scan(prefix, index.prefix_end(prefix)):
        department = registry_pb2.Department.FromString(value)
        for key in department.keys:
            if key.status == registry_pb2.KEY_STATUS_REVOKED:
                revoked_at = _moment(key.retired_at)
                if revoked_at is not None:
                    yield crl.Revocation(
                        _serial(key.certificate.certificate), revoked_at, _moment(key.invalid_since)
                    )


class LtvSource:
    """The validation data each B-LT sealing job carries."""

    def __init__(
        self,
        ledger: LedgerReader,
        ca: pki.RegionCA,
        settings: LtvSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._ledger = ledger
        self._ca = ca
        self._settings = settings
        self._clock = clock
        self._crl: tuple[datetime, bytes] | None = None

    def revoked(self) -> None:
        """A revocation was recorded: the next list is made afresh, to name it."""
        self._crl = None

    def region_crl(self) -> bytes:
        now = self._clock()
        if self._crl is None or now - self._crl[0] >= REFRESH:
            # Numbered by the second it was made: increasing across restarts as well.
            number = int(now.timestamp())
            made = crl.revocation_list(
                self._ca, revoked_certificates(self._ledger), number=number, now=now
            )
            self._crl = (now, made)
        return self._crl[1]

    def material(self) -> LtvData:
        """Trust roots (the region's and the TSA's), CRLs and OCSP responses, in DER."""
        crls, ocsps = [self.region_crl()], []
        directory = self._settings.revocation_dir
        for path in sorted(directory.iterdir()) if directory is not None else ():
            if path.suffix == ".crl":
                crls.append(_crl_der(path))
            elif path.suffix == ".ocsp":
                ocsps.append(_ocsp_der(path))
        region_root = self._ca.certificate.public_bytes(serialization.Encoding.DER)
        roots = (region_root, *self._settings.timestamp_roots)
        return LtvData(roots, tuple(crls), tuple(ocsps))


def _bounded(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) > _MAX_FILE_BYTES:
        raise ValidationDataError(f"{path} is larger than {_MAX_FILE_BYTES} bytes")
    return data


def _ocsp_der(path: Path) -> bytes:
    data = _bounded(path)
    try:
        ocsp.load_der_ocsp_response(data)
    except ValueError as exc:
        raise ValidationDataError(f"{path} is not an OCSP response: {exc}") from exc
    return data


def _crl_der(path: Path) -> bytes:
    data = _bounded(path)
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            loaded = x509.load_pem_x509_crl(data)
        else:
            loaded = x509.load_der_x509_crl(data)
    except ValueError as exc:
        raise ValidationDataError(f"{path} is not a CRL: {exc}") from exc
    return loaded.public_bytes(serialization.Encoding.DER)
