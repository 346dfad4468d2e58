"""DSSE envelopes: the PAE of the spec, round trips, and every tampering refused."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from licenceledger.type.v1 import crypto_pb2
from signer.dsse import (
    LICENCE_PAYLOAD_TYPE,
    MAX_ENVELOPE_BYTES,
    MAX_SIGNATURES,
    STATUS_PAYLOAD_TYPE,
    EnvelopeError,
    MalformedEnvelopeError,
    PayloadTypeError,
    SignatureError,
    Signer,
    SigningKey,
    UnknownKeyError,
    UnsupportedKeyError,
    VerifyingKey,
    algorithm_of,
    key_id,
    pae,
    parse_envelope,
    sign_envelope,
    verify_envelope,
    verify_pae,
)

# Generated once: key generation is the slow part, and no test depends on fresh keys.
ED25519 = Signer(Ed25519PrivateKey.generate())
P256 = Signer(ec.generate_private_key(ec.SECP256R1()))
OTHER = Signer(Ed25519PrivateKey.generate())
SIGNERS = pytest.mark.parametrize("signer", [ED25519, P256], ids=["ed25519", "p256"])

PAYLOAD = b"\x0a\x05hello\x12\x03\xe4\xb8\xad"  # protobuf-like bytes, not UTF-8 text


def trusted(*signers: Signer) -> dict[str, VerifyingKey]:
    return {s.keyid: s.public_key for s in signers}


def as_json(envelope: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(envelope)
    return document


def to_bytes(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def flip_base64_byte(value: str, index: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[index] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_pae_matches_the_spec_example() -> None:
    assert (
        pae("http://example.com/HelloWorld", b"hello world")
        == b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_utf8_bytes_of_the_type() -> None:
    assert pae("证照", b"") == b"DSSEv1 6 \xe8\xaf\x81\xe7\x85\xa7 0 "


@SIGNERS
def test_round_trip(signer: Signer) -> None:
    envelope = signer.envelope(LICENCE_PAYLOAD_TYPE, PAYLOAD)
    verified = verify_envelope(envelope, trusted(signer), payload_type=LICENCE_PAYLOAD_TYPE)
    assert verified.payload == PAYLOAD
    assert verified.payload_type == LICENCE_PAYLOAD_TYPE
    assert verified.keyid == signer.keyid


@SIGNERS
def test_envelope_is_compact_json_in_member_order(signer: Signer) -> None:
    envelope = sign_envelope(LICENCE_PAYLOAD_TYPE, PAYLOAD, signer.key)
    document = as_json(envelope)
    assert list(document) == ["payload", "payloadType", "signatures"]
    assert list(document["signatures"][0]) == ["keyid", "sig"]
    assert document["payload"] == base64.b64encode(PAYLOAD).decode()
    assert document["signatures"][0]["keyid"] == signer.keyid
    assert envelope == to_bytes(document)  # no whitespace anywhere
    sig = base64.b64decode(document["signatures"][0]["sig"])
    assert verify_pae(signer.public_key, sig, LICENCE_PAYLOAD_TYPE, PAYLOAD)


def test_explicit_keyid_is_used() -> None:
    envelope = sign_envelope(STATUS_PAYLOAD_TYPE, PAYLOAD, ED25519.key, keyid="dept-2025")
    verified = verify_envelope(
        envelope, {"dept-2025": ED25519.public_key}, payload_type=STATUS_PAYLOAD_TYPE
    )
    assert verified.keyid == "dept-2025"


@SIGNERS
def test_raw_signature_is_over_pae(signer: Signer) -> None:
    sig = signer.sign(STATUS_PAYLOAD_TYPE, PAYLOAD)
    assert verify_pae(signer.public_key, sig, STATUS_PAYLOAD_TYPE, PAYLOAD)
    assert not verify_pae(signer.public_key, sig, LICENCE_PAYLOAD_TYPE, PAYLOAD)
    assert not verify_pae(signer.public_key, sig, STATUS_PAYLOAD_TYPE, PAYLOAD + b"\x00")


@SIGNERS
def test_key_id_is_sha256_of_spki_der(signer: Signer) -> None:
    spki = signer.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_id(signer.public_key) == hashlib.sha256(spki).hexdigest() == signer.keyid
    assert signer.keyid == signer.keyid.lower()


def test_algorithm_of_private_and_public_keys() -> None:
    assert algorithm_of(ED25519.key) == crypto_pb2.SIGNATURE_ALGORITHM_ED25519 == 1
    assert algorithm_of(ED25519.public_key) == 1
    assert algorithm_of(P256.key) == crypto_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256 == 2
    assert algorithm_of(P256.public_key) == 2
    assert ED25519.algorithm == 1
    assert P256.algorithm == 2


def test_other_curves_and_key_types_are_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(UnsupportedKeyError, match="P-256"):
        Signer(p384)
    with pytest.raises(UnsupportedKeyError, match="P-256"):
        sign_envelope(LICENCE_PAYLOAD_TYPE, PAYLOAD, p384)
    x25519: Any = X25519PrivateKey.generate()  # a key agreement key, not a signing key
    with pytest.raises(UnsupportedKeyError, match="X25519PrivateKey"):
        algorithm_of(x25519)
    # A trust list entry on another curve is an error, not merely a failed signature.
    envelope = ED25519.envelope(LICENCE_PAYLOAD_TYPE, PAYLOAD)
    with pytest.raises(UnsupportedKeyError):
        verify_envelope(
            envelope, {ED25519.keyid: p384.public_key()}, payload_type=LICENCE_PAYLOAD_TYPE
        )


def _flip_payload(d: dict[str, Any]) -> None:
    d["payload"] = flip_base64_byte(d["payload"], 3)


def _flip_signature(d: dict[str, Any]) -> None:
    d["signatures"][0]["sig"] = flip_base64_byte(d["signatures"][0]["sig"], 10)


def _change_type_to_status(d: dict[str, Any]) -> None:
    d["payloadType"] = STATUS_PAYLOAD_TYPE


def _swap_keyid_to_other_trusted_key(d: dict[str, Any]) -> None:
    d["signatures"][0]["keyid"] = OTHER.keyid


def _unknown_keyid(d: dict[str, Any]) -> None:
    d["signatures"][0]["keyid"] = "00" * 32


def _resign_by_other_key(d: dict[str, Any]) -> None:
    payload = base64.b64decode(d["payload"])
    sig = OTHER.sign(d["payloadType"], payload)  # keyid still names the genuine key
    d["signatures"][0]["sig"] = base64.b64encode(sig).decode()


@SIGNERS
@pytest.mark.parametrize(
    ("tamper", "error"),
    [
        (_flip_payload, SignatureError),
        (_flip_signature, SignatureError),
        (_swap_keyid_to_other_trusted_key, SignatureError),
        (_resign_by_other_key, SignatureError),
        (_change_type_to_status, PayloadTypeError),
        (_unknown_keyid, UnknownKeyError),
    ],
)
def test_tampered_envelope_is_refused(
    signer: Signer, tamper: Any, error: type[EnvelopeError]
) -> None:
    document = as_json(signer.envelope(LICENCE_PAYLOAD_TYPE, PAYLOAD))
    tamper(document)
    with pytest.raises(error):
        verify_envelope(
            to_bytes(document), trusted(signer, OTHER), payload_type=LICENCE_PAYLOAD_TYPE
        )


def test_changed_type_fails_the_signature_even_when_expected() -> None:
    # An attacker who also controls what the caller expects still cannot rebind the
    # signature to another payload type: the type is inside the PAE.
    document = as_json(ED25519.envelope(LICENCE_PAYLOAD_TYPE, PAYLOAD))
    document["payloadType"] = STATUS_PAYLOAD_TYPE
    with pytest.raises(SignatureError):
        verify_envelope(to_bytes(document), trusted(ED25519), payload_type=STATUS_PAYLOAD_TYPE)


def test_any_signature_by_a_trusted_key_suffices() -> None:
    # A key rollover: the old key is no longer trusted, the new one is.
    document = as_json(ED25519.envelope(LICENCE_PAYLOAD_TYPE, PAYLOAD))
    document["signatures"] = [
        {"keyid": OTHER.keyid, "sig": "AAAA"},  # trusted but bad: keep looking
        {"keyid": "retired", "sig": "AAAA"},
        *document["signatures"],
    ]
    verified = verify_envelope(
        to_bytes(document), trusted(ED25519, OTHER), payload_type=LICENCE_PAYLOAD_TYPE
    )
    assert verified.keyid == ED25519.keyid


def _valid() -> bytes:
    return ED25519.envelope(LICENCE_PAYLOAD_TYPE, PAYLOAD)


def _with(**members: Any) -> bytes:
    document = as_json(_valid())
    document.update(members)
    return to_bytes(document)


def _with_signature(**members: Any) -> bytes:
    document = as_json(_valid())
    document["signatures"][0].update(members)
    return to_bytes(document)


def _without(member: str) -> bytes:
    document = as_json(_valid())
    del document[member]
    return to_bytes(document)


MALFORMED = {
    "duplicate payload": _valid().replace(b'{"payload":', b'{"payload":"AAAA","payload":', 1),
    "duplicate in signature": _valid().replace(b'{"keyid":', b'{"keyid":"x","keyid":', 1),
    "extra member": _with(extra="1"),
    "extra signature member": _with_signature(cert="x"),
    "missing payload": _without("payload"),
    "missing keyid": _valid().replace(b'"keyid":"' + ED25519.keyid.encode() + b'",', b"", 1),
    "payload not base64": _with(payload="not base64!"),
    "payload url-safe base64": _with(payload="-_-_"),
    "payload unpadded": _with(payload="QQ"),
    "payload non-canonical": _with(payload="QR=="),
    "payload with newline": _with(payload="QUJD\nREVG"),
    "sig not base64": _with_signature(sig="%%%%"),
    "sig empty": _with_signature(sig=""),
    "keyid empty": _with_signature(keyid=""),
    "keyid not a string": _with_signature(keyid=7),
    "payload not a string": _with(payload=["AAAA"]),
    "payloadType empty": _with(payloadType=""),
    "payloadType not a string": _with(payloadType=None),
    "signatures empty": _with(signatures=[]),
    "signatures not a list": _with(signatures={"keyid": "k", "sig": "AAAA"}),
    "signature not an object": _with(signatures=["AAAA"]),
    "too many signatures": _with(signatures=[{"keyid": "k", "sig": "AAAA"}] * (MAX_SIGNATURES + 1)),
    "truncated": _valid()[:-2],
    "empty": b"",
    "array": b"[]",
    "not utf-8": b'{"payload":"\xff"}',
    "utf-8 bom": b"\xef\xbb\xbf" + _valid(),
    "deep nesting": b"[" * 100_000 + b"]" * 100_000,
    "oversize": b" " * (MAX_ENVELOPE_BYTES + 1),
}


@pytest.mark.parametrize("data", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_envelope_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedEnvelopeError):
        parse_envelope(data)
    with pytest.raises(MalformedEnvelopeError):
        verify_envelope(data, trusted(ED25519), payload_type=LICENCE_PAYLOAD_TYPE)


def test_parse_envelope_returns_unverified_parts() -> None:
    envelope = parse_envelope(P256.envelope(STATUS_PAYLOAD_TYPE, PAYLOAD))
    assert envelope.payload_type == STATUS_PAYLOAD_TYPE
    assert envelope.payload == PAYLOAD
    [signature] = envelope.signatures
    assert signature.keyid == P256.keyid
    assert verify_pae(P256.public_key, signature.sig, STATUS_PAYLOAD_TYPE, PAYLOAD)


def test_errors_are_value_errors() -> None:
    assert issubclass(EnvelopeError, ValueError)
    for error in (MalformedEnvelopeError, PayloadTypeError, UnknownKeyError, SignatureError):
        assert issubclass(error, EnvelopeError)


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=512), payload_type=st.text(min_size=1, max_size=40))
def test_random_payloads_round_trip(payload: bytes, payload_type: str) -> None:
    for signer in (ED25519, P256):
        envelope = signer.envelope(payload_type, payload)
        verified = verify_envelope(envelope, trusted(signer), payload_type=payload_type)
        assert (verified.payload_type, verified.payload) == (payload_type, payload)


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=64), data=st.data())
def test_single_byte_change_never_yields_another_payload(
    payload: bytes, data: st.DataObject
) -> None:
    key: SigningKey = ED25519.key
    envelope = bytearray(sign_envelope(LICENCE_PAYLOAD_TYPE, payload, key))
    index = data.draw(st.integers(0, len(envelope) - 1), label="index")
    value = data.draw(st.integers(0, 255).filter(lambda b: b != envelope[index]), label="value")
    envelope[index] = value
    try:
        verified = verify_envelope(
            bytes(envelope), trusted(ED25519), payload_type=LICENCE_PAYLOAD_TYPE
        )
    except EnvelopeError:
        return
    # Only a change to insignificant JSON may still verify, and then nothing differs.
    assert verified.payload == payload
    assert verified.payload_type == LICENCE_PAYLOAD_TYPE
