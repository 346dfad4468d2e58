"""The signed payload of a licence QR code: `LL1:` + Base45(QrCode).

A QR code carries the claims a person checks against the printed licence, signed
on their own by the issuing department's key over the DSSE pre-authentication
encoding of `QR_CLAIMS_PAYLOAD_TYPE` and the exact serialized claims, so it can be
verified offline with the trust list. The claims are parsed only after the
signature verifies.

Base45 (RFC 9285) is used because every Base45 character, like those of the
prefix, is in the QR code alphanumeric set, which stores 5.5 bits per character:
three characters (16.5 bits) carry two bytes, barely more than byte mode would
need for them, while the payload stays plain text that any scanner app passes on
intact.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping

from google.protobuf.message import DecodeError

from licenceledger.licence.v1 import licence_pb2
from licenceledger.type.v1 import crypto_pb2
from signer import dsse

QR_PREFIX = "LL1:"
# The bound `LicenceCredential.qr_payload` promises: it keeps the printed QR code
# small enough for phone cameras to read off a licence.
MAX_QR_PAYLOAD_BYTES = 1200
# `QrCode.key_id` holds this many leading bytes of the key id: enough to pick the
# key out of a trust list, while the signature does the authenticating.
SHORT_KEY_ID_BYTES = 8

_BASE45_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_BASE45_VALUES = {char: value for value, char in enumerate(_BASE45_ALPHABET)}


class QrError(ValueError):
    """A QR payload cannot be made, decoded or verified."""


class MalformedQrError(QrError):
    """The payload is not a well-formed licence QR payload."""


class UnknownQrKeyError(QrError):
    """The payload names a key the caller does not trust."""


class QrSignatureError(QrError):
    """The signature does not verify with the named key."""


@functools.cache
def _base45_triplets() -> tuple[str, ...]:
    """The three characters of every two-byte value (built on first use: ~4 MB)."""
    alphabet = _BASE45_ALPHABET
    tails = [alphabet[n % 45] + alphabet[n // 45] for n in range(65536 // 45 + 1)]
    return tuple(alphabet[n % 45] + tails[n // 45] for n in range(65536))


def base45_encode(data: bytes) -> str:
    """RFC 9285 Base45: two bytes become three characters, a last odd byte two."""
    # Issuance encodes one payload per licence: unpack all pairs at once and look each
    # one's three characters up, rather than dividing per pair in Python.
    pairs = struct.unpack(f">{len(data) // 2}H", data[: len(data) & ~1])
    triplets = _base45_triplets()
    text = "".join([triplets[n] for n in pairs])
    if len(data) % 2:
        d, c = divmod(data[-1], 45)
        text += _BASE45_ALPHABET[c] + _BASE45_ALPHABET[d]
    return text


def base45_decode(text: str) -> bytes:
    """Strict RFC 9285 Base45 decoding; anything not produced by an encoder is refused."""
    if len(text) % 3 == 1:
        raise MalformedQrError("Base45 text has an impossible length")
    try:
        values = [_BASE45_VALUES[char] for char in text]
    except KeyError as exc:
        raise MalformedQrError(f"character {exc.args[0]!r} is not in the Base45 alphabet") from exc
    out = bytearray()
    for i in range(0, len(values) - 2, 3):
        n = values[i] + values[i + 1] * 45 + values[i + 2] * 45 * 45
        # Three characters can spell up to 91124, more than two bytes hold.
        if n > 0xFFFF:
            raise MalformedQrError("Base45 triplet exceeds two bytes")
        out += n.to_bytes(2, "big")
    if len(values) % 3 == 2:
        n = values[-2] + values[-1] * 45
        if n > 0xFF:
            raise MalformedQrError("Base45 final pair exceeds one byte")
        out.append(n)
    return bytes(out)


# The longest signature each algorithm makes: Ed25519's are always 64 bytes, DER
# ECDSA P-256 ones 70 to 72. Sizing a payload with the longest lets encode_qr decide
# before signing (so it signs once) and makes whether face fields are kept depend on
# the claims alone, not on the length of one particular signature.
_MAX_SIGNATURE_BYTES = {
    crypto_pb2.SIGNATURE_ALGORITHM_ED25519: 64,
    crypto_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256: 72,
}


def _qr_code(
    claims_bytes: bytes, signer: dsse.Signer, short_key_id: bytes, signature: bytes
) -> licence_pb2.QrCode:
    return licence_pb2.QrCode(
        claims=claims_bytes, algorithm=signer.algorithm, key_id=short_key_id, signature=signature
    )


def _fits(claims_bytes: bytes, signer: dsse.Signer, short_key_id: bytes) -> bool:
    longest = bytes(_MAX_SIGNATURE_BYTES[signer.algorithm])
    size = _qr_code(claims_bytes, signer, short_key_id, longest).ByteSize()
    return len(QR_PREFIX) + size // 2 * 3 + size % 2 * 2 <= MAX_QR_PAYLOAD_BYTES


def encode_qr(claims: licence_pb2.QrClaims, signer: dsse.Signer) -> bytes:
    """The signed QR payload (ASCII), at most `MAX_QR_PAYLOAD_BYTES` long.

    When the face fields make it too long they are left out and
    `face_fields_omitted` is set: `credential_payload_digest` still binds the QR code
    to the full credential, which has them. `claims` itself is not modified.
    """
    short_key_id = bytes.fromhex(signer.keyid)[:SHORT_KEY_ID_BYTES]
    # Deterministic serialisation, signed as exact bytes: the verifier checks these
    # bytes, never a re-serialisation of what it parsed.
    claims_bytes = claims.SerializeToString(deterministic=True)
    if not _fits(claims_bytes, signer, short_key_id):
        reduced = licence_pb2.QrClaims()
        reduced.CopyFrom(claims)
        del reduced.face_fields[:]
        reduced.face_fields_omitted = True
        claims_bytes = reduced.SerializeToString(deterministic=True)
        if not _fits(claims_bytes, signer, short_key_id):
            raise QrError(
                f"QR claims of {len(claims_bytes)} bytes do not fit in "
                f"{MAX_QR_PAYLOAD_BYTES} bytes even without face fields"
            )
    signature = signer.sign(dsse.QR_CLAIMS_PAYLOAD_TYPE, claims_bytes)
    code = _qr_code(claims_bytes, signer, short_key_id, signature)
    text = QR_PREFIX + base45_encode(code.SerializeToString(deterministic=True))
    return text.encode("ascii")


def decode_qr(payload: bytes | str) -> licence_pb2.QrCode:
    """Parse a QR payload strictly into its signed container; nothing is verified yet."""
    if len(payload) > MAX_QR_PAYLOAD_BYTES:
        raise MalformedQrError(f"QR payload exceeds {MAX_QR_PAYLOAD_BYTES} bytes")
    if isinstance(payload, bytes):
        try:
            payload = payload.decode("ascii")
        except UnicodeDecodeError as exc:
            raise MalformedQrError("QR payload is not ASCII text") from exc
    if not payload.startswith(QR_PREFIX):
        raise MalformedQrError(f"QR payload does not start with {QR_PREFIX!r}")
    raw = base45_decode(payload[len(QR_PREFIX) :])
    code = licence_pb2.QrCode()
    try:
        code.ParseFromString(raw)
    except DecodeError as exc:
        raise MalformedQrError("QR payload is not a valid QrCode message") from exc
    # Only what the encoder itself would write is accepted: unknown, repeated or
    # reordered fields would give one signed QR code many spellings. The message is
    # rebuilt from its known fields because re-serialising keeps unknown ones.
    canonical = licence_pb2.QrCode(
        claims=code.claims, algorithm=code.algorithm, key_id=code.key_id, signature=code.signature
    )
    if canonical.SerializeToString(deterministic=True) != raw:
        raise MalformedQrError("QR payload is not canonically encoded")
    if not code.claims or not code.signature:
        raise MalformedQrError("QR payload lacks its claims or signature")
    if code.algorithm == crypto_pb2.SIGNATURE_ALGORITHM_UNSPECIFIED:
        raise MalformedQrError("QR payload does not name its signature algorithm")
    if len(code.key_id) != SHORT_KEY_ID_BYTES:
        raise MalformedQrError(f"QR key id must be {SHORT_KEY_ID_BYTES} bytes")
    return code


def verify_qr(
    payload: bytes | str, keys_by_short_id: Mapping[bytes, dsse.VerifyingKey]
) -> licence_pb2.QrClaims:
    """Verify a QR payload with a trusted key (first 8 key id bytes → public key).

    Only after the signature verifies are the claims parsed and returned.
    """
    code = decode_qr(payload)
    key = keys_by_short_id.get(code.key_id)
    if key is None:
        raise UnknownQrKeyError(f"no trusted key with id prefix {code.key_id.hex()}")
    try:
        algorithm = dsse.algorithm_of(key)
    except dsse.UnsupportedKeyError as exc:
        raise QrError(f"trusted key {code.key_id.hex()} is unusable: {exc}") from exc
    # The algorithm comes with the key, never from the payload; a payload naming
    # another one was not made with this key.
    if code.algorithm != algorithm:
        raise QrSignatureError("QR signature algorithm does not match the key's")
    if not dsse.verify_pae(key, code.signature, dsse.QR_CLAIMS_PAYLOAD_TYPE, code.claims):
        raise QrSignatureError("QR signature does not verify")
    claims = licence_pb2.QrClaims()
    try:
        claims.ParseFromString(code.claims)
    except DecodeError as exc:
        # Signed but unparseable: the signer's fault, still not something to trust.
        raise MalformedQrError("signed QR claims are not a valid QrClaims message") from exc
    return claims
