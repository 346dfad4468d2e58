"""DSSE envelopes (Dead Simple Signing Envelope, protocol v1) for licence content.

https://github.com/secure-systems-lab/dsse. A department signs the *exact bytes*
of a serialized payload (a licence, a status statement, QR claims) together with
its payload type, through the pre-authentication encoding `pae`, so a signature
made for one kind of payload can never be replayed as another.

Callers must parse the payload only after `verify_envelope` has returned: until
then it is attacker-controlled bytes, and a parser is the last thing that should
see it. `parse_envelope` alone checks the shape of an envelope, not who signed it.

Keys are Ed25519 or ECDSA P-256 with SHA-256 (DER signatures), the two algorithms
of `licenceledger.type.v1.SignatureAlgorithm`. A key is named by its key id, the
lowercase hex SHA-256 of its SubjectPublicKeyInfo, as the region CA names it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from licenceledger.type.v1 import crypto_pb2

SigningKey = Ed25519PrivateKey | ec.EllipticCurvePrivateKey
VerifyingKey = Ed25519PublicKey | ec.EllipticCurvePublicKey

LICENCE_PAYLOAD_TYPE = "application/vnd.licence-ledger.licence.v1+protobuf"
STATUS_PAYLOAD_TYPE = "application/vnd.licence-ledger.status-statement.v1+protobuf"
QR_CLAIMS_PAYLOAD_TYPE = "application/vnd.licence-ledger.qr-claims.v1+protobuf"

# A licence envelope is a few kilobytes; the cap bounds the work (and memory) an
# untrusted input can cost before any signature has been checked.
MAX_ENVELOPE_BYTES = 1024 * 1024
# One signature is the norm; a few allow a key rollover with both keys signing.
# Each one may cost a verification, so their number is bounded too.
MAX_SIGNATURES = 8

_ENVELOPE_MEMBERS = frozenset({"payload", "payloadType", "signatures"})
_SIGNATURE_MEMBERS = frozenset({"keyid", "sig"})
# Stateless and immutable: one instance serves every call.
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())


class EnvelopeError(ValueError):
    """An envelope cannot be parsed, verified or made."""


class MalformedEnvelopeError(EnvelopeError):
    """The bytes are not a well-formed DSSE envelope."""


class PayloadTypeError(EnvelopeError):
    """The envelope carries another kind of payload than the one expected."""


class UnknownKeyError(EnvelopeError):
    """No signature names a key the caller trusts."""


class SignatureError(EnvelopeError):
    """A signature by a trusted key does not verify."""


class UnsupportedKeyError(EnvelopeError):
    """The key is neither Ed25519 nor ECDSA on P-256."""


@dataclass(frozen=True, slots=True)
class Signature:
    """One signature of an envelope, as carried (not yet verified)."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed, well-formed envelope whose signatures are not yet verified."""

    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class VerifiedEnvelope:
    """An envelope payload with the id of the trusted key whose signature verified."""

    payload_type: str
    payload: bytes
    keyid: str


def key_id(public_key: VerifyingKey) -> str:
    """Lowercase hex SHA-256 of the key's SubjectPublicKeyInfo (DER)."""
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


def algorithm_of(key: SigningKey | VerifyingKey) -> crypto_pb2.SignatureAlgorithm.ValueType:
    """The `SignatureAlgorithm` enum value of a private or public key."""
    if isinstance(key, Ed25519PrivateKey | Ed25519PublicKey):
        return crypto_pb2.SIGNATURE_ALGORITHM_ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return crypto_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256
        raise UnsupportedKeyError(f"ECDSA keys must be on P-256 (secp256r1), not {key.curve.name}")
    raise UnsupportedKeyError(f"unsupported key type {type(key).__name__}: use Ed25519 or P-256")


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: what is actually signed."""
    type_bytes = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(type_bytes), type_bytes, len(payload), payload)


def _sign_message(key: SigningKey, message: bytes) -> bytes:
    # Ed25519 hashes internally and takes no digest; ECDSA signs SHA-256, DER-encoded.
    if isinstance(key, Ed25519PrivateKey):
        return key.sign(message)
    return key.sign(message, _ECDSA_SHA256)


def _verify_message(key: VerifyingKey, signature: bytes, message: bytes) -> bool:
    algorithm_of(key)  # a trust list entry on another curve is refused, not just failed
    try:
        if isinstance(key, Ed25519PublicKey):
            key.verify(signature, message)
        else:
            key.verify(signature, message, _ECDSA_SHA256)
    except InvalidSignature:
        return False
    return True


def verify_pae(key: VerifyingKey, signature: bytes, payload_type: str, payload: bytes) -> bool:
    """Whether `signature` is `key`'s signature over PAE(payload_type, payload)."""
    return _verify_message(key, signature, pae(payload_type, payload))


def _envelope_json(payload_type: str, payload: bytes, keyid: str, sig: bytes) -> bytes:
    # Member order and separators are fixed so that the same inputs give the same bytes.
    return json.dumps(
        {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": payload_type,
            "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode("ascii")}],
        },
        separators=(",", ":"),
    ).encode("ascii")


def sign_envelope(
    payload_type: str, payload: bytes, key: SigningKey, *, keyid: str | None = None
) -> bytes:
    """A compact JSON envelope with one signature by `key` over the exact `payload` bytes.

    For many signatures with the same key use `Signer`, which derives the key id once.
    """
    algorithm_of(key)  # refuses other key types before signing with them
    if keyid is None:
        keyid = key_id(key.public_key())
    signature = _sign_message(key, pae(payload_type, payload))
    return _envelope_json(payload_type, payload, keyid, signature)


@dataclass(frozen=True, eq=False, init=False)
class Signer:
    """A signing key with its key id and algorithm, derived once for the hot path."""

    key: SigningKey = field(repr=False)
    public_key: VerifyingKey = field(repr=False)
    keyid: str
    algorithm: crypto_pb2.SignatureAlgorithm.ValueType

    def __init__(self, key: SigningKey) -> None:
        # Frozen dataclasses can only be initialised through object.__setattr__.
        object.__setattr__(self, "algorithm", algorithm_of(key))
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "public_key", key.public_key())
        object.__setattr__(self, "keyid", key_id(self.public_key))

    def sign(self, payload_type: str, payload: bytes) -> bytes:
        """The raw signature over PAE(payload_type, payload)."""
        return _sign_message(self.key, pae(payload_type, payload))

    def envelope(self, payload_type: str, payload: bytes) -> bytes:
        """A compact JSON envelope over the exact `payload` bytes, signed by this key."""
        return _envelope_json(payload_type, payload, self.keyid, self.sign(payload_type, payload))


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of duplicate members silently; two parsers that keep
    # different ones would see different envelopes, so duplicates are refused.
    members = dict(pairs)
    if len(members) != len(pairs):
        raise MalformedEnvelopeError("envelope JSON has a duplicate member")
    return members


def _strict_base64(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedEnvelopeError(f"{what} must be a base64 string")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedEnvelopeError(f"{what} is not valid base64") from exc
    # b64decode ignores non-zero padding bits ("QR==" decodes like "QQ=="); only the
    # canonical spelling is accepted, so an envelope has one encoding per payload.
    if base64.b64encode(decoded) != value.encode("ascii"):
        raise MalformedEnvelopeError(f"{what} is not canonical base64")
    return decoded


def _check_members(obj: object, expected: frozenset[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise MalformedEnvelopeError(f"{what} must be a JSON object")
    if extra := sorted(obj.keys() - expected):
        raise MalformedEnvelopeError(f"{what} has unknown members {_shorten(str(extra))}")
    if missing := sorted(expected - obj.keys()):
        raise MalformedEnvelopeError(f"{what} lacks members {missing}")
    return obj


def _parse_signature(obj: object) -> Signature:
    members = _check_members(obj, _SIGNATURE_MEMBERS, "signature")
    keyid = members["keyid"]
    if not isinstance(keyid, str) or not keyid:
        raise MalformedEnvelopeError("signature keyid must be a non-empty string")
    sig = _strict_base64(members["sig"], "signature sig")
    if not sig:
        raise MalformedEnvelopeError("signature sig is empty")
    return Signature(keyid, sig)


def parse_envelope(data: bytes) -> Envelope:
    """Parse an envelope strictly; nothing is verified yet (see `verify_envelope`)."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise MalformedEnvelopeError(f"envelope exceeds {MAX_ENVELOPE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
        document = json.loads(text, object_pairs_hook=_unique_members)
    except MalformedEnvelopeError:
        raise
    # ValueError covers bad UTF-8, bad JSON and oversized numbers; deep nesting
    # surfaces as RecursionError.
    except (ValueError, RecursionError) as exc:
        raise MalformedEnvelopeError(f"envelope is not valid UTF-8 JSON: {exc}") from exc
    members = _check_members(document, _ENVELOPE_MEMBERS, "envelope")
    payload_type = members["payloadType"]
    if not isinstance(payload_type, str) or not payload_type:
        raise MalformedEnvelopeError("payloadType must be a non-empty string")
    payload = _strict_base64(members["payload"], "payload")
    signatures = members["signatures"]
    if not isinstance(signatures, list):
        raise MalformedEnvelopeError("signatures must be a JSON array")
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise MalformedEnvelopeError(f"an envelope needs 1 to {MAX_SIGNATURES} signatures")
    return Envelope(payload_type, payload, tuple(_parse_signature(s) for s in signatures))


def _shorten(text: str, limit: int = 80) -> str:
    # Key ids in messages come from untrusted input; keep log lines bounded.
    return text if len(text) <= limit else text[:limit] + "…"


def verify_envelope(
    data: bytes, keys: Mapping[str, VerifyingKey], *, payload_type: str
) -> VerifiedEnvelope:
    """Parse `data` and verify one signature by a key in `keys` (key id → public key).

    Only a successful return makes the payload trustworthy; parse it afterwards.
    """
    envelope = parse_envelope(data)
    if envelope.payload_type != payload_type:
        raise PayloadTypeError(
            f"expected payload type {payload_type!r}, got {_shorten(envelope.payload_type)!r}"
        )
    message = pae(envelope.payload_type, envelope.payload)
    tried = False
    for signature in envelope.signatures:
        key = keys.get(signature.keyid)
        if key is None:
            continue
        tried = True
        # On failure another trusted key may still have signed: keep looking.
        if _verify_message(key, signature.sig, message):
            return VerifiedEnvelope(envelope.payload_type, envelope.payload, signature.keyid)
    if tried:
        raise SignatureError("no signature by a trusted key verifies")
    names = ", ".join(_shorten(s.keyid) for s in envelope.signatures)
    raise UnknownKeyError(f"no trusted key among the envelope's key ids: {names}")
