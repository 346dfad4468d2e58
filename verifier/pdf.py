"""Judging a PDF's findings (`verifier.pdf_signatures`) against the region's records.

Report-level checks: ``input.format``, ``pdf.signatures``; then, per signature,

    pdf.signature.integrity → pdf.signature.modifications → pdf.signature.chain →
    seal.registration → seal.signer → seal.status → seal.validity → seal.purpose →
    ledger.inclusion

and last ``pdf.seal_images`` and, for a licence PDF, ``licence.status``,
``licence.validity`` and ``licence.holder``.

The seal's constraints judge the signature at its sealing time: the time of the
ledger's DOCUMENT_SEALED entry when there is one (proof of existence, so a seal
revoked afterwards does not undo earlier work), else the validation time, since a
time the signature merely claims proves nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from ledger.checkpoint import SignedCheckpoint
from licenceledger.index.v1 import index_pb2
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.record.v1 import record_pb2
from licenceledger.seal.v1 import seal_pb2
from licenceledger.type.v1 import crypto_pb2
from licenceledger.verification.v1 import report_pb2 as rp
from signer import pki, seal_pki
from signer.identifiers import IdentifierError
from verifier import licence_checks as lc
from verifier.credentials import licence_id as licence_id_of
from verifier.credentials import recorded_licence
from verifier.ledger_checks import ProofFailure, ProvenEntry, prove_entry
from verifier.pdf_signatures import PdfFindings, SignatureFindings
from verifier.records import RegionRecords
from verifier.report import Checks, Conclusion, apply

LICENCE_PURPOSE = "licence_issuing"
_LATER_CHANGES_ALLOWED = ("NONE", "LTA_UPDATES")
_SIGNATURE_CHECKS = (
    "pdf.signature.modifications",
    "pdf.signature.chain",
    "seal.registration",
    "seal.signer",
    "seal.status",
    "seal.validity",
    "seal.purpose",
    "ledger.inclusion",
)


@dataclass
class SignatureOutcome:
    report: rp.SignatureReport
    conclusion: Conclusion
    sealing: record_pb2.DocumentSealed | None  # proven by the ledger


def _integrity(checks: Checks, found: SignatureFindings) -> bool:
    name = "pdf.signature.integrity"
    if found.problem is not None:
        checks.failed(
            name,
            rp.VERIFICATION_REASON_MALFORMED_INPUT,
            f"签名无法读取：{found.problem}",
            f"the signature cannot be read: {found.problem}",
        )
        return False
    if not found.intact:
        checks.failed(
            name,
            rp.VERIFICATION_REASON_BYTE_RANGE_MISMATCH,
            "签名覆盖的字节与签名摘要不符：签名移植自其他文档，或签名范围内的内容被改动",
            "the covered bytes do not match the signed digest: the signature was transplanted "
            "from another document, or bytes inside its range were changed",
        )
        return False
    if not found.valid:
        checks.failed(
            name,
            rp.VERIFICATION_REASON_SIGNATURE_INVALID,
            "签名值无法用签名证书验证",
            "the signature value does not verify with the signing certificate",
        )
        return False
    checks.passed(
        name,
        "签名完整有效，覆盖的字节未被改动",
        "the signature is intact and valid over the bytes it covers",
    )
    return True


def _modifications(checks: Checks, found: SignatureFindings, later_fields: set[str]) -> None:
    name = "pdf.signature.modifications"
    if found.coverage == "ENTIRE_FILE":
        checks.passed(name, "签名覆盖整个文件，签名后无改动", "the signature covers the whole file")
        return
    level = found.modification_level
    signatures_only = level == "FORM_FILLING" and set(found.changed_fields) <= later_fields
    if found.coverage == "ENTIRE_REVISION" and (level in _LATER_CHANGES_ALLOWED or signatures_only):
        checks.passed(
            name,
            "签名后仅追加了其他签章或验证数据",
            "after this signature only further seals or validation data were added",
        )
        return
    what = found.modification_problem or (
        f"modification level {level}" if level else f"coverage {found.coverage or 'unknown'}"
    )
    checks.failed(
        name,
        rp.VERIFICATION_REASON_MODIFIED_AFTER_SIGNING,
        f"文档在签章后被修改（增量更新改动了内容、页面或叠加层）：{what}",
        f"the document was changed after sealing (an update altered content, pages or "
        f"overlays): {what}",
    )


def _certificate(checks: Checks, der: bytes) -> x509.Certificate | None:
    try:
        cert = x509.load_der_x509_certificate(der)
        cert.subject.rfc4514_string()
    except ValueError as exc:
        checks.failed(
            "pdf.signature.chain",
            rp.VERIFICATION_REASON_NO_CERTIFICATE_CHAIN,
            f"签名证书无法解析：{exc}",
            f"the signing certificate cannot be read: {exc}",
        )
        return None
    return cert


def _chain(checks: Checks, cert: x509.Certificate, root: x509.Certificate) -> bool:
    try:
        # Validity is judged at the sealing time under seal.validity.
        pki.check_issued_and_current(cert, root, cert.not_valid_before_utc)
    except pki.CertificateRejectedError as exc:
        checks.failed(
            "pdf.signature.chain",
            rp.VERIFICATION_REASON_NO_CERTIFICATE_CHAIN,
            f"签名证书无法链接到本地区根证书：{exc}",
            f"the signing certificate does not chain to the region root: {exc}",
        )
        return False
    checks.passed(
        "pdf.signature.chain",
        "签名证书由本地区根证书签发",
        "the signing certificate chains to the region root",
    )
    return True


def _registration(
    checks: Checks, cert: x509.Certificate, records: RegionRecords
) -> seal_pb2.Seal | None:
    try:
        scope = seal_pki.check_seal_certificate(
            cert, records.root_certificate, at=cert.not_valid_before_utc
        )
    except (pki.PkiError, ValueError) as exc:
        checks.failed(
            "seal.registration",
            rp.VERIFICATION_REASON_SEAL_NOT_REGISTERED,
            f"签名证书不是电子印章证书：{exc}",
            f"the signing certificate is not a seal certificate: {exc}",
        )
        return None
    seal = records.seal(scope.seal_id)
    if seal is None:
        checks.failed(
            "seal.registration",
            rp.VERIFICATION_REASON_SEAL_NOT_REGISTERED,
            f"印章 {scope.seal_id} 未在本地区登记",
            f"seal {scope.seal_id} is not registered in this region",
        )
        return None
    checks.passed(
        "seal.registration",
        f"印章已登记：{seal.name}（{seal.seal_id}，属于 {seal.owner_department_code}）",
        f"the seal is registered: {seal.seal_id} of {seal.owner_department_code}",
    )
    return seal


def _signer(
    checks: Checks,
    seal: seal_pb2.Seal,
    der: bytes,
    shown_seals: list[frozenset[str]],
) -> bool:
    if seal.certificate.certificate != der:
        checks.failed(
            "seal.signer",
            rp.VERIFICATION_REASON_SEAL_SIGNER_NOT_BOUND,
            f"签名证书不是印章 {seal.seal_id} 登记的证书",
            f"the signing certificate is not the one registered for seal {seal.seal_id}",
        )
        return False
    # Several seals may share one image; the image shown must be one of this seal's.
    others = sorted({i for ids in shown_seals if seal.seal_id not in ids for i in ids})
    if others:
        checks.failed(
            "seal.signer",
            rp.VERIFICATION_REASON_SEAL_SIGNER_NOT_BOUND,
            f"签章外观显示的是印章 {'、'.join(others)} 的图像，而签名者是印章 {seal.seal_id}",
            f"the signature shows the image of seal {', '.join(others)}, but was made with "
            f"seal {seal.seal_id}",
        )
        return False
    checks.passed(
        "seal.signer",
        f"签名者与印章 {seal.seal_id} 绑定",
        f"the signer is bound to seal {seal.seal_id}",
    )
    return True


def _status(checks: Checks, seal: seal_pb2.Seal, at: datetime, proven: bool) -> None:
    name = "seal.status"
    if seal.status == seal_pb2.SEAL_STATUS_REVOKED:
        since = seal.invalid_since if seal.HasField("invalid_since") else seal.status_changed_at
        revoked = lc.as_datetime(since)
        if revoked <= at:
            checks.failed(
                name,
                rp.VERIFICATION_REASON_SEAL_REVOKED,
                f"印章自 {lc.shown(revoked)} 起已被吊销，早于盖章时间 {lc.shown(at)}",
                f"the seal is revoked as of {lc.shown(revoked)}, before the sealing time "
                f"{lc.shown(at)}",
                sub=None if proven else rp.SUB_INDICATION_REVOKED_NO_POE,
            )
            return
        checks.passed(
            name,
            f"印章于 {lc.shown(revoked)} 被吊销，晚于账本证明的盖章时间 {lc.shown(at)}，"
            "盖章仍然有效",
            f"the seal was revoked as of {lc.shown(revoked)}, after the sealing at "
            f"{lc.shown(at)} that the ledger proves; the sealing stands",
            reason=rp.VERIFICATION_REASON_SEAL_REVOKED_AFTER_SIGNING,
        )
        return
    if seal.status == seal_pb2.SEAL_STATUS_SUSPENDED:
        suspended = lc.as_datetime(seal.status_changed_at)
        if suspended <= at:
            checks.failed(
                name,
                rp.VERIFICATION_REASON_SEAL_SUSPENDED,
                f"印章自 {lc.shown(suspended)} 起暂停使用",
                f"the seal is suspended since {lc.shown(suspended)}",
            )
            return
        checks.passed(
            name,
            f"印章于盖章后（{lc.shown(suspended)}）暂停使用，不影响此前的盖章",
            f"the seal was suspended after this sealing ({lc.shown(suspended)})",
        )
        return
    checks.passed(name, "盖章时印章状态正常", "the seal was in force at the sealing time")


def _validity(checks: Checks, seal: seal_pb2.Seal, cert: x509.Certificate, at: datetime) -> None:
    starts = lc.as_datetime(seal.valid_from) if seal.HasField("valid_from") else None
    ends = lc.as_datetime(seal.valid_until) if seal.HasField("valid_until") else None
    inside = (starts is None or starts <= at) and (ends is None or at < ends)
    inside = inside and cert.not_valid_before_utc <= at <= cert.not_valid_after_utc
    if not inside:
        window = f"{lc.shown(starts) if starts else '—'} – {lc.shown(ends) if ends else '—'}"
        checks.failed(
            "seal.validity",
            rp.VERIFICATION_REASON_SEAL_OUTSIDE_VALIDITY,
            f"盖章时间 {lc.shown(at)} 不在印章有效期（{window}）内",
            f"the sealing time {lc.shown(at)} is outside the seal's validity ({window})",
        )
        return
    checks.passed(
        "seal.validity", "盖章时间在印章有效期内", "the sealing time is within the seal's validity"
    )


def _purpose(
    checks: Checks,
    seal: seal_pb2.Seal,
    cert: x509.Certificate,
    root: x509.Certificate,
    purpose: str | None,
    licence_type: str | None,
) -> None:
    if purpose is None:
        checks.skipped(
            "seal.purpose",
            "账本中无盖章记录，用途未知",
            "the purpose is unknown: the ledger records no such sealing",
        )
        return
    try:
        seal_pki.check_seal_certificate(
            cert,
            root,
            purpose=purpose,
            licence_type_code=licence_type,
            at=cert.not_valid_before_utc,
        )
    except (pki.PkiError, ValueError) as exc:
        checks.failed(
            "seal.purpose",
            rp.VERIFICATION_REASON_SEAL_PURPOSE_NOT_PERMITTED,
            f"印章 {seal.seal_id} 不得用于此用途：{exc}",
            f"seal {seal.seal_id} is not permitted for this use: {exc}",
        )
        return
    what = f"{purpose} {licence_type}" if licence_type else purpose
    checks.passed(
        "seal.purpose", f"用途在印章许可范围内（{what}）", f"the use is permitted ({what})"
    )


def _ledger_sealing(
    records: RegionRecords,
    checkpoint: SignedCheckpoint | None,
    found: SignatureFindings,
    seal_id: str,
) -> ProvenEntry | ProofFailure | None:
    if checkpoint is None:
        return ProofFailure("the ledger's checkpoint does not verify")
    index = records.sealing_entry(found.revision_digest)
    if index is None:
        return None
    proven = prove_entry(records, checkpoint, index)
    if not isinstance(proven, ProvenEntry):
        return proven
    sealed = proven.record.document_sealed
    if (
        proven.record.WhichOneof("change") != "document_sealed"
        or sealed.seal_id != seal_id
        or sealed.digest_after.value != found.revision_digest
        or sealed.signature_field != found.field_name
    ):
        return None
    return proven


def _ledger_check(checks: Checks, result: ProvenEntry | ProofFailure | None) -> None:
    if isinstance(result, ProofFailure):
        checks.failed(
            "ledger.inclusion",
            rp.VERIFICATION_REASON_LEDGER_PROOF_INVALID,
            f"账本证明不成立：{result.message}",
            f"the ledger proof fails: {result.message}",
        )
    elif result is None:
        checks.failed(
            "ledger.inclusion",
            rp.VERIFICATION_REASON_NOT_IN_LEDGER,
            "账本中没有这次盖章的记录：签章未经本系统加盖",
            "the ledger has no record of this sealing: it was not made through the service",
        )
    else:
        checks.passed(
            "ledger.inclusion",
            f"盖章记录位于账本第 {result.index} 条，已由签名检查点证明",
            f"sealed in ledger entry {result.index}, proven under the signed checkpoint",
        )


def _licence_type(licence_id: str | None) -> str | None:
    if not licence_id:
        return None
    try:
        return licence_id_of(licence_id).type_code
    except IdentifierError:
        return None


def judge_signature(
    records: RegionRecords,
    checkpoint: SignedCheckpoint | None,
    found: SignatureFindings,
    later_fields: set[str],
    shown_seals: list[frozenset[str]],
    at: datetime,
) -> SignatureOutcome:
    checks = Checks()
    report = rp.SignatureReport(field_name=found.field_name)
    sealed: record_pb2.DocumentSealed | None = None
    if found.claimed_signing_time is not None:
        report.claimed_signing_time.CopyFrom(lc.timestamp(found.claimed_signing_time))
    if found.revision_digest:
        report.signed_revision_digest.algorithm = crypto_pb2.DIGEST_ALGORITHM_SHA256
        report.signed_revision_digest.value = found.revision_digest
    report.covers_whole_document = found.coverage == "ENTIRE_FILE"
    if _integrity(checks, found):
        _modifications(checks, found, later_fields)
        root = records.root_certificate
        cert = _certificate(checks, found.signer_certificate)
        if cert is not None:
            report.signer_subject = cert.subject.rfc4514_string()
        chained = cert is not None and _chain(checks, cert, root)
        seal = _registration(checks, cert, records) if cert is not None and chained else None
        if seal is not None and cert is not None:
            report.seal.CopyFrom(seal)
            report.seal.ClearField("image_png")
            _signer(checks, seal, found.signer_certificate, shown_seals)
            ledger = _ledger_sealing(records, checkpoint, found, seal.seal_id)
            proven = isinstance(ledger, ProvenEntry)
            when = at
            if isinstance(ledger, ProvenEntry):
                sealed = ledger.record.document_sealed
                report.signing_time.CopyFrom(ledger.record.recorded_at)
                when = lc.as_datetime(ledger.record.recorded_at)
            _status(checks, seal, when, proven)
            _validity(checks, seal, cert, when)
            if sealed is not None:
                purpose: str | None = sealed.purpose
                licence_type = _licence_type(sealed.licence_id)
            elif found.licence_id:
                purpose, licence_type = LICENCE_PURPOSE, _licence_type(found.licence_id)
            else:
                purpose = licence_type = None
            _purpose(checks, seal, cert, root, purpose, licence_type)
            _ledger_check(checks, ledger)
    checks.skip_missing(_SIGNATURE_CHECKS)
    conclusion = checks.conclusion()
    apply(conclusion, report)
    report.checks.extend(checks.items)
    return SignatureOutcome(report, conclusion, sealed)


def licence_of_sealing(
    records: RegionRecords, checkpoint: SignedCheckpoint, licence_id: str
) -> tuple[lpb.Licence, index_pb2.LicenceState] | None:
    """The recorded licence a licence PDF's sealing names, with its lineage's state."""
    try:
        lid = licence_id_of(licence_id)
    except IdentifierError:
        return None
    state = records.licence_state(lid.lineage)
    version = (
        next((v for v in state.versions if v.licence_id == licence_id), None) if state else None
    )
    if state is None or version is None:
        return None
    proven = prove_entry(records, checkpoint, version.ledger_index)
    if not isinstance(proven, ProvenEntry):
        return None
    return recorded_licence(proven.record), state


def seal_images_check(
    checks: Checks,
    findings: PdfFindings,
    fingerprints: dict[bytes, frozenset[str]],
    passed_fields: set[str],
) -> None:
    loose = [
        image
        for image in findings.images
        if (image.looks_like_seal or image.fingerprint in fingerprints)
        and (image.signature_field is None or image.signature_field not in passed_fields)
    ]
    if loose:
        image = loose[0]
        which = sorted(fingerprints.get(image.fingerprint, ()))
        named_zh = f"（印章 {'、'.join(which)} 的图像）" if which else ""
        named_en = f" (the image of seal {', '.join(which)})" if which else ""
        checks.failed(
            "pdf.seal_images",
            rp.VERIFICATION_REASON_SEAL_IMAGE_WITHOUT_SIGNATURE,
            f"第 {image.page + 1} 页有印章图像{named_zh}，但没有有效签名支撑（套用印章）",
            f"page {image.page + 1} shows a seal image{named_en} that no valid signature "
            "stands behind (a pasted seal)",
        )
        return
    checks.passed(
        "pdf.seal_images",
        "文档中的印章图像均有有效签名支撑",
        "every seal image in the document belongs to a valid signature",
    )
