"""Verifying a licence credential (DSSE envelope) or a licence QR code.

Checks run in this order, each recorded in the report:

    input.format → issuer.certificate → {credential|qr}.signature →
    {credential|qr}.content → issuer.scope → ledger.inclusion → issuer.key_status →
    licence.status → licence.validity → licence.holder

Nothing signed is parsed before its signature verifies. A check whose inputs an
earlier failure took away is recorded as SKIPPED, so every report lists the same
checks in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from google.protobuf.message import DecodeError

from ledger.checkpoint import SignedCheckpoint
from licenceledger.index.v1 import index_pb2
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.record.v1 import record_pb2
from licenceledger.verification.v1 import report_pb2 as rp
from signer import dsse, qr
from signer.identifiers import IdentifierError, LicenceId
from verifier import licence_checks as lc
from verifier.issuers import AcceptedIssuer, IssuerCertificates
from verifier.ledger_checks import ProofFailure, prove_entry
from verifier.records import IssuingKey, RegionRecords
from verifier.report import Checks

AFTER_FORMAT = (
    "issuer.certificate",
    "{kind}.signature",
    "{kind}.content",
    "issuer.scope",
    "ledger.inclusion",
    "issuer.key_status",
    "licence.status",
    "licence.validity",
    "licence.holder",
)


@dataclass(frozen=True, slots=True)
class SignedForm:
    """What one signed form (envelope or QR code) offers to the common checks."""

    kind: str  # "credential" or "qr"
    signatures: Sequence[tuple[str | bytes, bytes]]  # key id (or QR prefix), signature
    verify: Callable[[dsse.VerifyingKey, bytes], bool]


@dataclass(frozen=True, slots=True)
class Authentic:
    """Content whose signature verified: a licence, or a QR code's claims."""

    licence: lpb.Licence
    issuer: AcceptedIssuer
    # Whether `ledger_record` records exactly this signed content.
    matches: Callable[[record_pb2.LedgerRecord], bool]
    ledger_index: int | None  # where it claims to be (QR codes say so), else looked up


@lru_cache(maxsize=4096)
def licence_id(text: str) -> LicenceId:
    """`LicenceId.parse`, remembered: one verification reads the same id several times,
    and recomputing its check characters was a tenth of a credential's verification."""
    return LicenceId.parse(text)


def skip_rest(checks: Checks, kind: str) -> None:
    checks.skip_missing([name.format(kind=kind) for name in AFTER_FORMAT])


def _issuers(
    records: RegionRecords, certificates: IssuerCertificates, key_ids: Sequence[str | bytes]
) -> tuple[list[tuple[int, AcceptedIssuer]], list[str]]:
    accepted: list[tuple[int, AcceptedIssuer]] = []
    problems: list[str] = []
    for position, key_id in enumerate(key_ids):
        candidates: list[IssuingKey]
        if isinstance(key_id, bytes):
            candidates = records.issuing_keys_by_prefix(key_id)
        else:
            found = records.issuing_key(key_id)
            candidates = [found] if found else []
        for candidate in candidates:
            result = certificates.accept(candidate)
            if isinstance(result, str):
                problems.append(result)
            else:
                accepted.append((position, result))
    return accepted, problems


def authenticate(
    checks: Checks,
    records: RegionRecords,
    certificates: IssuerCertificates,
    form: SignedForm,
) -> tuple[AcceptedIssuer, int] | None:
    """issuer.certificate and the signature check; the issuer and signature that verified."""
    accepted, problems = _issuers(records, certificates, [k for k, _ in form.signatures])
    if not accepted:
        detail = "; ".join(problems[:3]) or "its key is not a registered issuing key"
        checks.failed(
            "issuer.certificate",
            rp.VERIFICATION_REASON_NO_CERTIFICATE_CHAIN,
            f"签名密钥无法链接到本地区根证书（{records.region_code}）：{detail}",
            f"the signing key does not chain to the root of region {records.region_code}: {detail}",
        )
        return None
    first = accepted[0][1]
    checks.passed(
        "issuer.certificate",
        f"签名证书由本地区根证书签发，属于部门 {first.department_code}",
        f"the signing certificate chains to the region root and belongs to department "
        f"{first.department_code}",
    )
    for position, issuer in accepted:
        if form.verify(issuer.public_key, form.signatures[position][1]):
            checks.passed(
                f"{form.kind}.signature",
                "签名验证通过，内容自签名后未被改动",
                "the signature verifies: the content is unchanged since signing",
            )
            return issuer, position
    checks.failed(
        f"{form.kind}.signature",
        rp.VERIFICATION_REASON_SIGNATURE_INVALID,
        "签名验证失败：内容在签名后被改动，或签名是伪造的",
        "the signature does not verify: the content was changed after signing, or forged",
    )
    return None


def check_scope(checks: Checks, licence: lpb.Licence, issuer: AcceptedIssuer) -> None:
    lid = licence_id(licence.licence_id)
    code = issuer.department_code
    named = licence.issuer.department_code
    if named != code or lid.issuer_code != code:
        checks.failed(
            "issuer.scope",
            rp.VERIFICATION_REASON_ISSUER_NOT_AUTHORISED,
            f"证照署名的签发部门 {named} 与签名密钥所属部门 {code} 不一致",
            f"the licence names issuer {named}, but the key belongs to department {code}",
        )
        return
    if licence.licence_type_code not in issuer.scope or lid.type_code != (
        licence.licence_type_code
    ):
        allowed = "、".join(sorted(issuer.scope)) or "—"
        checks.failed(
            "issuer.scope",
            rp.VERIFICATION_REASON_ISSUER_NOT_AUTHORISED,
            f"部门 {code} 无权签发证照类型 {licence.licence_type_code}（授权范围：{allowed}）",
            f"department {code} is not authorised for licence type "
            f"{licence.licence_type_code} (its certificate allows: {allowed})",
        )
        return
    checks.passed(
        "issuer.scope",
        f"部门 {code} 有权签发证照类型 {licence.licence_type_code}",
        f"department {code} is authorised for licence type {licence.licence_type_code}",
    )


def find_in_ledger(
    checks: Checks,
    records: RegionRecords,
    checkpoint: SignedCheckpoint,
    authentic: Authentic,
    state: index_pb2.LicenceState | None,
) -> tuple[record_pb2.LedgerRecord, int] | None:
    """ledger.inclusion: the proven entry that records exactly this signed content.

    `state` is the index's record of the licence's lineage, if any: where to look
    when the signed content does not say.
    """
    licence = authentic.licence
    index = authentic.ledger_index
    if index is None:
        version = (
            next((v for v in state.versions if v.licence_id == licence.licence_id), None)
            if state
            else None
        )
        index = version.ledger_index if version else None
    proven = None if index is None else prove_entry(records, checkpoint, index)
    if isinstance(proven, ProofFailure):
        checks.failed(
            "ledger.inclusion",
            rp.VERIFICATION_REASON_LEDGER_PROOF_INVALID,
            f"账本证明不成立（账本数据可能遭篡改）：{proven.message}",
            f"the ledger proof fails (the ledger may have been tampered with): {proven.message}",
        )
        return None
    if proven is None or not authentic.matches(proven.record):
        checks.failed(
            "ledger.inclusion",
            rp.VERIFICATION_REASON_NOT_IN_LEDGER,
            f"账本中没有该证照 {licence.licence_id} 的签发记录：签名有效但证照未经本系统签发",
            f"the ledger has no issuance of licence {licence.licence_id}: the signature is "
            "valid but the licence was never issued through the service",
        )
        return None
    cp = checkpoint.checkpoint
    checks.passed(
        "ledger.inclusion",
        f"签发记录位于账本第 {proven.index} 条，已由签名检查点（规模 {cp.size}）证明",
        f"issued in ledger entry {proven.index}, proven under the signed checkpoint of size "
        f"{cp.size}",
    )
    return proven.record, proven.index


def licence_from_claims(claims: lpb.QrClaims) -> lpb.Licence:
    licence = lpb.Licence(
        licence_id=claims.licence_id,
        licence_type_code=claims.licence_type_code,
        licence_type_name=claims.licence_type_name,
        licence_number=claims.licence_number,
        holder=claims.holder,
        issuer=claims.issuer,
        face_fields=claims.face_fields,
        version=claims.version,
    )
    for name in ("issued_at", "valid_from", "valid_until"):
        if claims.HasField(name):
            getattr(licence, name).CopyFrom(getattr(claims, name))
    return licence


def parse_content(
    checks: Checks, kind: str, parse: Callable[[], lpb.Licence]
) -> lpb.Licence | None:
    try:
        licence = parse()
        licence_id(licence.licence_id)
    except (DecodeError, IdentifierError) as exc:
        checks.failed(
            f"{kind}.content",
            rp.VERIFICATION_REASON_MALFORMED_INPUT,
            f"签名内容不是有效的证照：{exc}",
            f"the signed content is not a valid licence: {exc}",
        )
        return None
    checks.passed(
        f"{kind}.content",
        f"证照内容有效：{licence.licence_id}",
        f"the content is a well-formed licence: {licence.licence_id}",
    )
    return licence


def envelope_form(envelope: dsse.Envelope) -> SignedForm:
    def verify(key: dsse.VerifyingKey, signature: bytes) -> bool:
        return dsse.verify_pae(key, signature, envelope.payload_type, envelope.payload)

    return SignedForm("credential", [(s.keyid, s.sig) for s in envelope.signatures], verify)


def qr_form(code: lpb.QrCode) -> SignedForm:
    def verify(key: dsse.VerifyingKey, signature: bytes) -> bool:
        try:
            if dsse.algorithm_of(key) != code.algorithm:
                return False
        except dsse.UnsupportedKeyError:
            return False
        return dsse.verify_pae(key, signature, dsse.QR_CLAIMS_PAYLOAD_TYPE, code.claims)

    return SignedForm("qr", [(code.key_id, code.signature)], verify)


def same_envelope_payload(
    envelope: dsse.Envelope, presented: bytes
) -> Callable[[record_pb2.LedgerRecord], bool]:
    def matches(record: record_pb2.LedgerRecord) -> bool:
        if record.WhichOneof("change") != "licence_version_issued":
            return False
        if record.licence_version_issued.envelope == presented:
            return True
        try:
            recorded = dsse.parse_envelope(record.licence_version_issued.envelope)
        except dsse.EnvelopeError:
            return False
        return (recorded.payload_type, recorded.payload) == (
            envelope.payload_type,
            envelope.payload,
        )

    return matches


def same_qr_claims(code: lpb.QrCode) -> Callable[[record_pb2.LedgerRecord], bool]:
    def matches(record: record_pb2.LedgerRecord) -> bool:
        if record.WhichOneof("change") != "licence_version_issued":
            return False
        try:
            recorded = qr.decode_qr(record.licence_version_issued.qr_payload)
        except qr.QrError:
            return False
        return recorded.claims == code.claims

    return matches


def recorded_licence(record: record_pb2.LedgerRecord) -> lpb.Licence:
    """The licence a proven LicenceVersionIssued entry records (written by the service)."""
    envelope = dsse.parse_envelope(record.licence_version_issued.envelope)
    return lpb.Licence.FromString(envelope.payload)


def signing_time(record: record_pb2.LedgerRecord | None, fallback: datetime) -> datetime:
    return lc.as_datetime(record.recorded_at) if record is not None else fallback
