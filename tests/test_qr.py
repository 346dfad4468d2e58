"""Licence QR payloads: Base45 per RFC 9285, the size budget, and tampering refused."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from licenceledger.licence.v1 import licence_pb2
from licenceledger.type.v1 import crypto_pb2
from signer import dsse
from signer.qr import (
    MAX_QR_PAYLOAD_BYTES,
    QR_PREFIX,
    MalformedQrError,
    QrError,
    QrSignatureError,
    UnknownQrKeyError,
    base45_decode,
    base45_encode,
    decode_qr,
    encode_qr,
    verify_qr,
)

ED25519 = dsse.Signer(Ed25519PrivateKey.generate())
P256 = dsse.Signer(ec.generate_private_key(ec.SECP256R1()))
OTHER = dsse.Signer(Ed25519PrivateKey.generate())
SIGNERS = pytest.mark.parametrize("signer", [ED25519, P256], ids=["ed25519", "p256"])

# A food business licence of a supermarket as a Hangzhou district would issue it:
# ten face fields, a business scope of 56 characters, three addresses.
SUPERMARKET_FACE_FIELDS = [
    (
        "business_scope",
        "预包装食品销售（含冷藏冷冻食品）；散装食品销售（不含散装熟食）；"
        "保健食品销售；婴幼儿配方乳粉销售；热食类食品制售",
    ),
    ("main_format", "食品销售经营者（超市）"),
    ("legal_representative", "王建国"),
    ("residence", "浙江省杭州市西湖区文三路478号华星时代广场A座1201室"),
    ("business_premises", "浙江省杭州市西湖区古墩路701号紫金广场B座一层"),
    ("warehouse_address", "杭州市余杭区仓前街道良睦路1288号3号仓库"),
    ("person_in_charge", "李晓梅"),
    ("food_safety_officer", "陈志强"),
    ("supervising_authority", "西湖区市场监督管理局文新市场监督管理所"),
    ("complaint_hotline", "12315"),
]

# A small restaurant's licence: also ten face fields, but short ones.
SMALL_CATERING_FACE_FIELDS = [
    ("business_scope", "热食类食品制售；冷食类食品制售；自制饮品制售（不含自酿酒）"),
    ("main_format", "小餐饮"),
    ("operator", "王建国"),
    ("premises", "西湖区文三路478号"),
    ("area_m2", "45.50"),
    ("seats", "24"),
    ("staff", "4"),
    ("health_cert", "有"),
    ("authority", "文新市场监管所"),
    ("hotline", "12315"),
]


def claims(face_fields: list[tuple[str, str]]) -> licence_pb2.QrClaims:
    return licence_pb2.QrClaims(
        licence_id=(
            "1.2.156.3005.2.11100000MB0143028R001.11330106002493083X.JY13301060123456.001.K"
        ),
        licence_type_code="11100000MB0143028R001",
        licence_type_name="食品经营许可证",
        licence_number="JY13301060123456",
        holder=licence_pb2.Holder(
            name="杭州西湖鲜果连锁超市有限公司",
            id_type=licence_pb2.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE,
            id_number="91330106MA2B3C4D5E",
        ),
        issuer=licence_pb2.Issuer(
            department_code="11330106002493083X",
            department_name="杭州市西湖区市场监督管理局",
            region_code="330106",
        ),
        issued_at=Timestamp(seconds=1_767_225_600),  # 2026-01-01T00:00:00Z
        valid_from=Timestamp(seconds=1_767_225_600),
        valid_until=Timestamp(seconds=1_924_992_000),  # 2031-01-01T00:00:00Z
        face_fields=[licence_pb2.FaceField(name=n, value=v) for n, v in face_fields],
        credential_payload_digest=crypto_pb2.Digest(
            algorithm=crypto_pb2.DIGEST_ALGORITHM_SHA256,
            value=hashlib.sha256(b"the serialized Licence").digest(),
        ),
        ledger_index=1_234_567,
        version=1,
    )


def short_id(signer: dsse.Signer) -> bytes:
    return bytes.fromhex(signer.keyid)[:8]


def trusted(*signers: dsse.Signer) -> dict[bytes, dsse.VerifyingKey]:
    return {short_id(s): s.public_key for s in signers}


def rebuild(code: licence_pb2.QrCode) -> bytes:
    return (QR_PREFIX + base45_encode(code.SerializeToString(deterministic=True))).encode()


RFC_9285_VECTORS = [
    (b"AB", "BB8"),
    (b"Hello!!", "%69 VD92EX0"),
    (b"base-45", "UJCLQE7W581"),
    (b"ietf!", "QED8WEX0"),
    (b"", ""),
]


@pytest.mark.parametrize(("raw", "text"), RFC_9285_VECTORS)
def test_base45_rfc_9285_vectors(raw: bytes, text: str) -> None:
    assert base45_encode(raw) == text
    assert base45_decode(text) == raw


@pytest.mark.parametrize(
    "text",
    [
        "GGW",  # RFC 9285 section 6: 65536 does not fit in two bytes
        "ZZZ",  # the largest triplet, 91124
        "::",  # a final pair of 2024, more than one byte
        "A",  # a single character encodes nothing
        "BB8B",  # nor does a lone character after a triplet
        "bb8",  # lower case is not in the alphabet
        "BB8=",
        "BB\u00e9",
    ],
)
def test_invalid_base45_is_refused(text: str) -> None:
    with pytest.raises(MalformedQrError):
        base45_decode(text)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=100))
def test_base45_round_trips(raw: bytes) -> None:
    text = base45_encode(raw)
    assert len(text) == len(raw) // 2 * 3 + len(raw) % 2 * 2
    assert base45_decode(text) == raw


@SIGNERS
def test_ten_short_face_fields_fit(signer: dsse.Signer) -> None:
    original = claims(SMALL_CATERING_FACE_FIELDS)
    payload = encode_qr(original, signer)
    print(f"small catering licence, {signer.algorithm=}: {len(payload)} bytes")
    assert len(payload) <= MAX_QR_PAYLOAD_BYTES
    assert payload.startswith(b"LL1:")
    verified = verify_qr(payload, trusted(signer, OTHER))
    assert verified == original
    assert len(verified.face_fields) == 10
    assert not verified.face_fields_omitted


@SIGNERS
def test_realistic_supermarket_licence_fits_without_face_fields(signer: dsse.Signer) -> None:
    # These ten face fields are 704 bytes of protobuf on their own, while the
    # 1,200-character budget leaves about 360 bytes for face fields after the other
    # claims (351 bytes) and the signature: they are dropped.
    original = claims(SUPERMARKET_FACE_FIELDS)
    payload = encode_qr(original, signer)
    print(f"supermarket licence, {signer.algorithm=}: {len(payload)} bytes")
    assert len(payload) <= MAX_QR_PAYLOAD_BYTES
    verified = verify_qr(payload.decode(), trusted(signer))
    assert verified.face_fields_omitted
    assert not verified.face_fields
    assert verified.credential_payload_digest == original.credential_payload_digest
    assert verified.holder == original.holder
    assert len(original.face_fields) == 10  # the caller's message is left alone


@settings(max_examples=40, deadline=None)
@given(st.integers(300, 420))
def test_payload_never_exceeds_the_budget(length: int) -> None:
    # Face fields around the limit: kept or dropped, the payload always fits,
    # whatever the length of the particular ECDSA signature.
    original = claims([("note", "x" * length)])
    for signer in (ED25519, P256):
        payload = encode_qr(original, signer)
        assert len(payload) <= MAX_QR_PAYLOAD_BYTES
        verified = verify_qr(payload, trusted(signer))
        if verified.face_fields_omitted:
            assert not verified.face_fields
        else:
            assert verified == original


def test_claims_that_cannot_fit_are_refused() -> None:
    too_big = claims(SMALL_CATERING_FACE_FIELDS)
    too_big.holder.name = "某" * 300
    with pytest.raises(QrError, match="even without face fields"):
        encode_qr(too_big, ED25519)


@SIGNERS
def test_qr_signature_is_over_the_pae_of_the_claims(signer: dsse.Signer) -> None:
    code = decode_qr(encode_qr(claims(SMALL_CATERING_FACE_FIELDS), signer))
    assert code.algorithm == signer.algorithm
    assert code.key_id == short_id(signer)
    assert dsse.verify_pae(
        signer.public_key, code.signature, dsse.QR_CLAIMS_PAYLOAD_TYPE, code.claims
    )


def _tampered_claim() -> bytes:
    code = decode_qr(encode_qr(claims(SMALL_CATERING_FACE_FIELDS), ED25519))
    changed = licence_pb2.QrClaims.FromString(code.claims)
    changed.valid_until.seconds += 10 * 365 * 86_400
    code.claims = changed.SerializeToString(deterministic=True)
    return rebuild(code)


def _resigned_by(signer: dsse.Signer) -> bytes:
    # Signed by `signer` but naming ED25519's key.
    code = decode_qr(encode_qr(claims(SMALL_CATERING_FACE_FIELDS), signer))
    code.key_id = short_id(ED25519)
    return rebuild(code)


def _with_algorithm(algorithm: int) -> bytes:
    code = decode_qr(encode_qr(claims(SMALL_CATERING_FACE_FIELDS), ED25519))
    code.algorithm = crypto_pb2.SignatureAlgorithm.ValueType(algorithm)
    return rebuild(code)


def _unknown_key() -> bytes:
    return encode_qr(claims(SMALL_CATERING_FACE_FIELDS), P256)


def _valid() -> bytes:
    return encode_qr(claims(SMALL_CATERING_FACE_FIELDS), ED25519)


def _with_code(**fields: bytes) -> bytes:
    code = decode_qr(_valid())
    for name, value in fields.items():
        setattr(code, name, value)
    return rebuild(code)


def _raw_valid() -> bytes:
    return base45_decode(_valid()[len(QR_PREFIX) :].decode())


def _with_raw(raw: bytes) -> bytes:
    return (QR_PREFIX + base45_encode(raw)).encode()


TAMPERED: dict[str, tuple[bytes | str, type[QrError]]] = {
    "changed claim": (_tampered_claim(), QrSignatureError),
    "signed by another key": (_resigned_by(OTHER), QrSignatureError),
    "signed by a P-256 key": (_resigned_by(P256), QrSignatureError),
    "algorithm changed": (_with_algorithm(2), QrSignatureError),
    "algorithm unknown": (_with_algorithm(9), QrSignatureError),
    "algorithm unset": (_with_algorithm(0), MalformedQrError),
    "unknown key": (_unknown_key(), UnknownQrKeyError),
    "wrong prefix": (b"LL2:" + _valid()[4:], MalformedQrError),
    "no prefix": (_valid()[4:], MalformedQrError),
    "lower case": (_valid().lower(), MalformedQrError),
    "garbage": (b"LL1:" + b"ABC" * 40, MalformedQrError),
    "truncated text": (_valid()[:-3], MalformedQrError),
    "empty": (b"", MalformedQrError),
    "not ascii": ("LL1:" + "证" * 3, MalformedQrError),
    "not ascii bytes": (b"LL1:\xe8\xaf\x81", MalformedQrError),
    "short key id": (_with_code(key_id=short_id(ED25519)[:7]), MalformedQrError),
    "full key id": (_with_code(key_id=bytes.fromhex(ED25519.keyid)), MalformedQrError),
    "no signature": (_with_code(signature=b""), MalformedQrError),
    "no claims": (_with_code(claims=b""), MalformedQrError),
    "unknown field": (_with_raw(_raw_valid() + b"\x28\x01"), MalformedQrError),  # 5: 1
    "truncated message": (_with_raw(_raw_valid()[:-2]), MalformedQrError),
    "lower case body": (b"LL1:" + _valid()[4:].lower(), MalformedQrError),
    "oversize": (b"LL1:" + b"0" * MAX_QR_PAYLOAD_BYTES, MalformedQrError),
}


@pytest.mark.parametrize(("payload", "error"), TAMPERED.values(), ids=TAMPERED.keys())
def test_tampered_payload_is_refused(payload: bytes | str, error: type[QrError]) -> None:
    with pytest.raises(error):
        verify_qr(payload, trusted(ED25519, OTHER))


def test_swapped_key_fails_the_signature() -> None:
    # The trust list maps the key id to another key: the signature cannot verify.
    keys: dict[bytes, dsse.VerifyingKey] = {short_id(ED25519): OTHER.public_key}
    with pytest.raises(QrSignatureError):
        verify_qr(_valid(), keys)


def test_errors_are_value_errors() -> None:
    for error in (MalformedQrError, UnknownQrKeyError, QrSignatureError):
        assert issubclass(error, QrError)
    assert issubclass(QrError, ValueError)
