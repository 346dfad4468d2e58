"""CMS containers refilled from pyHanko's template equal what pyHanko itself makes."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from asn1crypto import cms
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.sign import signers
from pyhanko.sign.signers.pdf_cms import PdfCMSSignedAttributes
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signer._cms_template import CmsTemplate
from tests.test_pades import Ca, _identity, _root, _seal_png

Key = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _pyhanko_signer(key: Key, issuer: Ca) -> tuple[signers.SimpleSigner, x509.Certificate]:
    identity = _identity(issuer, key, _seal_png(96))
    der = serialization.Encoding.DER
    pkcs8 = key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(identity.certificate.public_bytes(der)),
        signing_key=asn1_keys.PrivateKeyInfo.load(pkcs8),
        cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [asn1_x509.Certificate.load(issuer.cert.public_bytes(der))]
        ),
    )
    return signer, identity.certificate


def _pyhanko_cms(signer: signers.SimpleSigner, digest: bytes, md: str, **options: Any) -> bytes:
    options.setdefault("use_pades", True)
    options.setdefault("signed_attr_settings", PdfCMSSignedAttributes())
    return bytes(asyncio.run(signer.async_sign(digest, md, **options)).dump())


@pytest.fixture(scope="module")
def issuer() -> Ca:
    return _root(ec.generate_private_key(ec.SECP256R1()), "模板测试根证书")


@pytest.fixture(scope="module")
def ed25519_pair(issuer: Ca) -> tuple[ed25519.Ed25519PrivateKey, signers.SimpleSigner]:
    key = ed25519.Ed25519PrivateKey.generate()
    return key, _pyhanko_signer(key, issuer)[0]


@settings(max_examples=25, deadline=None)
@given(first=st.binary(min_size=64, max_size=64), later=st.binary(min_size=64, max_size=64))
def test_ed25519_containers_are_pyhankos_byte_for_byte(
    ed25519_pair: tuple[ed25519.Ed25519PrivateKey, signers.SimpleSigner],
    first: bytes,
    later: bytes,
) -> None:
    # Ed25519 is deterministic, so a refilled container must be pyHanko's exactly.
    key, signer = ed25519_pair
    template = CmsTemplate.capture(_pyhanko_cms(signer, first, "sha512"), first)
    assert template is not None
    assert template.fill(later, key.sign) == _pyhanko_cms(signer, later, "sha512")


def test_ecdsa_containers_differ_from_pyhankos_only_in_the_signature(issuer: Ca) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    signer, certificate = _pyhanko_signer(key, issuer)
    first, later = hashlib.sha256(b"first").digest(), hashlib.sha256(b"later").digest()
    template = CmsTemplate.capture(_pyhanko_cms(signer, first, "sha256"), first)
    assert template is not None
    assert template.signature_algorithm == "sha256_ecdsa"

    def sign(data: bytes) -> bytes:
        return key.sign(data, ec.ECDSA(hashes.SHA256()))

    ours = cms.ContentInfo.load(template.fill(later, sign))
    theirs = cms.ContentInfo.load(_pyhanko_cms(signer, later, "sha256"))
    ours_signer, theirs_signer = (
        ours["content"]["signer_infos"][0],
        theirs["content"]["signer_infos"][0],
    )
    signature = ours_signer["signature"].native
    ours_signer["signature"] = theirs_signer["signature"].native
    assert ours.dump(force=True) == theirs.dump(force=True)
    signed = ours_signer["signed_attrs"].untag().dump(force=True)
    public = certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, signed, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        public.verify(signature, signed + b"\x00", ec.ECDSA(hashes.SHA256()))


def test_a_container_with_a_signing_time_is_not_a_template(
    ed25519_pair: tuple[ed25519.Ed25519PrivateKey, signers.SimpleSigner],
) -> None:
    # Outside PAdES pyHanko adds a signing-time attribute, which varies per signature.
    _, signer = ed25519_pair
    digest = hashlib.sha512(b"document").digest()
    settings = PdfCMSSignedAttributes(signing_time=datetime.now(UTC))
    made = _pyhanko_cms(signer, digest, "sha512", use_pades=False, signed_attr_settings=settings)
    types = [
        a["type"].native
        for a in cms.ContentInfo.load(made)["content"]["signer_infos"][0]["signed_attrs"]
    ]
    assert "signing_time" in types
    assert CmsTemplate.capture(made, digest) is None


def test_a_container_for_another_digest_is_not_a_template(
    ed25519_pair: tuple[ed25519.Ed25519PrivateKey, signers.SimpleSigner],
) -> None:
    _, signer = ed25519_pair
    made = _pyhanko_cms(signer, hashlib.sha512(b"one").digest(), "sha512")
    assert CmsTemplate.capture(made, hashlib.sha512(b"two").digest()) is None


def test_a_digest_of_another_length_is_refused(
    ed25519_pair: tuple[ed25519.Ed25519PrivateKey, signers.SimpleSigner],
) -> None:
    key, signer = ed25519_pair
    digest = hashlib.sha512(b"document").digest()
    template = CmsTemplate.capture(_pyhanko_cms(signer, digest, "sha512"), digest)
    assert template is not None
    with pytest.raises(ValueError, match="64 bytes"):
        template.fill(hashlib.sha256(b"short").digest(), key.sign)


def test_a_container_the_template_would_not_reproduce_is_not_a_template(
    ed25519_pair: tuple[ed25519.Ed25519PrivateKey, signers.SimpleSigner],
) -> None:
    # The same container with a non-minimal length (valid BER, not DER): a template
    # would write it differently, so it is refused rather than silently changed.
    _, signer = ed25519_pair
    digest = hashlib.sha512(b"document").digest()
    made = _pyhanko_cms(signer, digest, "sha512")
    assert made[:2] == b"\x30\x82"
    padded = b"\x30\x83\x00" + made[2:]
    assert cms.ContentInfo.load(padded)["content"]["signer_infos"][0]["signature"].native
    assert CmsTemplate.capture(padded, digest) is None
