"""The region CA's certificate revocation list: signed, complete, and read by pyHanko."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509

from signer import pki
from signer.crl import DEFAULT_LIFETIME, Revocation, revocation_list

NOW = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> pki.RegionCA:
    return pki.create_region_ca("310000", "上海市测试区域", now=NOW - timedelta(days=1))


def test_an_empty_list_is_signed_by_the_region_root_for_a_day(ca: pki.RegionCA) -> None:
    crl = x509.load_der_x509_crl(revocation_list(ca, [], number=7, now=NOW))
    assert crl.issuer == ca.certificate.subject
    assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
    assert crl.last_update_utc == NOW
    assert crl.next_update_utc == NOW + DEFAULT_LIFETIME
    assert crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 7
    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert len(crl) == 0


def test_revoked_certificates_are_listed_with_their_dates(ca: pki.RegionCA) -> None:
    compromised = Revocation(
        20,
        NOW - timedelta(hours=1),
        invalid_since=NOW - timedelta(days=3),
        reason=x509.ReasonFlags.key_compromise,
    )
    retired = Revocation(10, NOW - timedelta(hours=2))
    crl = x509.load_der_x509_crl(revocation_list(ca, [compromised, retired], number=8, now=NOW))
    assert [entry.serial_number for entry in crl] == [10, 20]
    first = crl.get_revoked_certificate_by_serial_number(10)
    assert first is not None
    assert first.revocation_date_utc == NOW - timedelta(hours=2)
    assert len(first.extensions) == 0
    second = crl.get_revoked_certificate_by_serial_number(20)
    assert second is not None
    assert second.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    invalidity = second.extensions.get_extension_for_class(x509.InvalidityDate).value
    assert invalidity.invalidity_date_utc == NOW - timedelta(days=3)


def test_an_invalidity_date_after_the_revocation_is_left_out(ca: pki.RegionCA) -> None:
    late = Revocation(5, NOW - timedelta(hours=1), invalid_since=NOW)
    crl = x509.load_der_x509_crl(revocation_list(ca, [late], number=1, now=NOW))
    entry = crl.get_revoked_certificate_by_serial_number(5)
    assert entry is not None
    with pytest.raises(x509.ExtensionNotFound):
        entry.extensions.get_extension_for_class(x509.InvalidityDate)


@pytest.mark.parametrize(
    ("number", "lifetime", "match"),
    [(-1, DEFAULT_LIFETIME, "number"), (1, timedelta(0), "valid")],
)
def test_impossible_lists_are_refused(
    ca: pki.RegionCA, number: int, lifetime: timedelta, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        revocation_list(ca, [], number=number, now=NOW, lifetime=lifetime)
