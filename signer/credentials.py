"""A licence credential's two signed forms: the DSSE envelope and the QR payload.

Both are made from the licence's one serialization. The QR claims are the printed
facts plus the digest of that serialization (which binds the QR code to the full
credential) and the ledger index the credential is recorded at, so an inspector
can ask for its proof.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.type.v1 import crypto_pb2
from signer import dsse, qr


class SignedCredential(NamedTuple):
    envelope: bytes  # DSSE JSON over the licence payload
    qr_payload: bytes  # `LL1:` + Base45, ASCII


def qr_claims(licence: lpb.Licence, payload: bytes, ledger_index: int) -> lpb.QrClaims:
    """The QR claims of `licence`, whose exact serialization is `payload`."""
    claims = lpb.QrClaims(
        licence_id=licence.licence_id,
        licence_type_code=licence.licence_type_code,
        licence_type_name=licence.licence_type_name,
        licence_number=licence.licence_number,
        holder=licence.holder,
        issuer=licence.issuer,
        issued_at=licence.issued_at,
        valid_from=licence.valid_from,
        face_fields=licence.face_fields,
        credential_payload_digest=crypto_pb2.Digest(
            algorithm=crypto_pb2.DIGEST_ALGORITHM_SHA256,
            value=hashlib.sha256(payload).digest(),
        ),
        ledger_index=ledger_index,
        version=licence.version,
    )
    if licence.HasField("valid_until"):
        claims.valid_until.CopyFrom(licence.valid_until)
    return claims


def sign_credential(
    signer: dsse.Signer, payload: bytes, ledger_index: int, licence: lpb.Licence | None = None
) -> SignedCredential:
    """Sign the licence serialized as `payload` (parsed from it unless given)."""
    if licence is None:
        licence = lpb.Licence.FromString(payload)
    return SignedCredential(
        signer.envelope(dsse.LICENCE_PAYLOAD_TYPE, payload),
        qr.encode_qr(qr_claims(licence, payload, ledger_index), signer),
    )
