"""The verifier of one region: credentials, QR codes and sealed PDFs, each to a report.

`Verifier` holds only caches (the last verified checkpoint, accepted issuer
certificates); every verification reads the region's records afresh through
`RegionRecords`. It is synchronous and CPU-bound, except for PDFs, whose heavy half
(`inspect_signatures`) can run in another process and be handed to `verify_pdf`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from cryptography.hazmat.primitives.serialization import Encoding

from ledger.checkpoint import SignedCheckpoint
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.record.v1 import record_pb2
from licenceledger.type.v1 import crypto_pb2
from licenceledger.type.v1 import trust_list_pb2 as trust_pb
from licenceledger.verification.v1 import report_pb2 as rp
from signer import dsse, qr
from verifier import credentials as cr
from verifier import licence_checks as lc
from verifier import pdf
from verifier.issuers import AcceptedIssuer, IssuerCertificates
from verifier.ledger_checks import CheckpointCache
from verifier.pdf_signatures import PdfFindings, inspect_signatures
from verifier.policy import VerificationPolicy
from verifier.records import RegionRecords
from verifier.report import Checks, apply, worst

MAX_CREDENTIAL_BYTES = dsse.MAX_ENVELOPE_BYTES
DEFAULT_POLICY = VerificationPolicy()


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Verifier:
    def __init__(self, records: RegionRecords, clock: Callable[[], datetime] = _utc_now) -> None:
        self._records = records
        self._clock = clock
        self._checkpoints = CheckpointCache()
        self._issuers = IssuerCertificates(records)
        root = records.root_certificate
        self._trust_list = trust_pb.TrustListSnapshot(
            # Until regions recognise each other, the trust list is this region's
            # own root: named by its certificate's digest.
            operator=f"region {records.region_code}",
            digest=crypto_pb2.Digest(
                algorithm=crypto_pb2.DIGEST_ALGORITHM_SHA256,
                value=hashlib.sha256(root.public_bytes(Encoding.DER)).digest(),
            ),
            issued_at=lc.timestamp(root.not_valid_before_utc),
            next_update=lc.timestamp(root.not_valid_after_utc),
        )

    # -- shared ------------------------------------------------------------------------

    def _start(self, policy: VerificationPolicy) -> tuple[rp.VerificationReport, datetime]:
        at = policy.validation_time or self._clock()
        report = rp.VerificationReport(
            validation_time=lc.timestamp(at),
            trust_list=self._trust_list,
            region_code=self._records.region_code,
        )
        return report, at

    def _checkpoint(self, report: rp.VerificationReport) -> SignedCheckpoint | str:
        opened = self._checkpoints.open(self._records)
        if isinstance(opened, str):
            return opened
        report.checkpoint.CopyFrom(opened[1])
        return opened[0]

    @staticmethod
    def _malformed(checks: Checks, zh: str, en: str) -> None:
        checks.failed("input.format", rp.VERIFICATION_REASON_MALFORMED_INPUT, zh, en)

    @staticmethod
    def _finish(report: rp.VerificationReport, checks: Checks, kind: str) -> rp.VerificationReport:
        cr.skip_rest(checks, kind)
        apply(checks.conclusion(), report)
        report.checks.extend(checks.items)
        return report

    def _after_content(
        self,
        checks: Checks,
        report: rp.VerificationReport,
        authentic: cr.Authentic,
        at: datetime,
        policy: VerificationPolicy,
        from_ledger: Callable[[record_pb2.LedgerRecord], lpb.Licence] | None = None,
    ) -> None:
        """issuer.scope through licence.holder, shared by credentials and QR codes."""
        licence = authentic.licence
        cr.check_scope(checks, licence, authentic.issuer)
        checkpoint = self._checkpoint(report)
        state = self._records.licence_state(cr.licence_id(licence.licence_id).lineage)
        if isinstance(checkpoint, str):
            checks.failed(
                "ledger.inclusion",
                rp.VERIFICATION_REASON_LEDGER_PROOF_INVALID,
                f"账本检查点无法验证：{checkpoint}",
                checkpoint,
            )
            found = None
        else:
            found = cr.find_in_ledger(checks, self._records, checkpoint, authentic, state)
        record = found[0] if found else None
        signed_at = cr.signing_time(record, at)
        if record is not None:
            report.signing_time.CopyFrom(record.recorded_at)
            if from_ledger is not None:
                licence = from_ledger(record)
                report.licence.CopyFrom(licence)
        self._key_status(checks, authentic.issuer, signed_at, record is not None)
        if record is None or state is None:
            checks.skipped(
                "licence.status",
                "账本中无该证照记录，无法判断状态",
                "no status: the ledger has no record of this licence",
            )
            lc.check_validity(checks, licence, at)
            lc.check_holder(checks, licence, policy.expected_holder_id_number)
            return
        report.status_source = rp.STATUS_SOURCE_LOCAL_LEDGER
        report.status_as_of.CopyFrom(report.validation_time)
        current = lc.run_licence_checks(
            checks, licence, state, at, policy.expected_holder_id_number
        )
        if current:
            report.current_licence_id = current

    @staticmethod
    def _key_status(
        checks: Checks, issuer: AcceptedIssuer, signed_at: datetime, proven: bool
    ) -> None:
        if not issuer.within_validity(signed_at):
            cert = issuer.certificate
            window = f"{lc.shown(cert.not_valid_before_utc)} – {lc.shown(cert.not_valid_after_utc)}"
            checks.failed(
                "issuer.key_status",
                rp.VERIFICATION_REASON_NO_CERTIFICATE_CHAIN,
                f"签名时间 {lc.shown(signed_at)} 不在签名证书有效期（{window}）内",
                f"the signing time {lc.shown(signed_at)} is outside the certificate's "
                f"validity ({window})",
                sub=rp.SUB_INDICATION_OUT_OF_BOUNDS_NO_POE,
            )
            return
        lc.check_issuer_key(checks, issuer.issuing, signed_at, proven)

    # -- credentials and QR codes ------------------------------------------------------

    def verify_credential(
        self, envelope: bytes, policy: VerificationPolicy = DEFAULT_POLICY
    ) -> rp.VerificationReport:
        report, at = self._start(policy)
        checks = Checks()
        try:
            parsed = dsse.parse_envelope(envelope)
        except dsse.EnvelopeError as exc:
            self._malformed(
                checks, f"不是有效的证照凭证（DSSE 信封）：{exc}", f"not a DSSE envelope: {exc}"
            )
            return self._finish(report, checks, "credential")
        if parsed.payload_type != dsse.LICENCE_PAYLOAD_TYPE:
            self._malformed(
                checks,
                "信封内容类型不是证照",
                f"the envelope's payload type is not {dsse.LICENCE_PAYLOAD_TYPE}",
            )
            return self._finish(report, checks, "credential")
        checks.passed("input.format", "证照凭证格式正确", "a well-formed licence credential")
        authed = cr.authenticate(checks, self._records, self._issuers, cr.envelope_form(parsed))
        if authed is not None:
            licence = cr.parse_content(
                checks, "credential", lambda: lpb.Licence.FromString(parsed.payload)
            )
            if licence is not None:
                report.licence.CopyFrom(licence)
                authentic = cr.Authentic(
                    licence, authed[0], cr.same_envelope_payload(parsed, envelope), None
                )
                self._after_content(checks, report, authentic, at, policy)
        return self._finish(report, checks, "credential")

    def verify_qr_code(
        self, payload: bytes, policy: VerificationPolicy = DEFAULT_POLICY
    ) -> rp.VerificationReport:
        report, at = self._start(policy)
        checks = Checks()
        try:
            code = qr.decode_qr(payload.strip())
        except qr.QrError as exc:
            self._malformed(checks, f"不是有效的证照二维码：{exc}", f"not a licence QR code: {exc}")
            return self._finish(report, checks, "qr")
        checks.passed("input.format", "二维码格式正确", "a well-formed licence QR code")
        authed = cr.authenticate(checks, self._records, self._issuers, cr.qr_form(code))
        if authed is not None:
            licence = cr.parse_content(
                checks, "qr", lambda: cr.licence_from_claims(lpb.QrClaims.FromString(code.claims))
            )
            if licence is not None:
                report.licence.CopyFrom(licence)
                claimed_index = lpb.QrClaims.FromString(code.claims).ledger_index
                authentic = cr.Authentic(licence, authed[0], cr.same_qr_claims(code), claimed_index)
                self._after_content(
                    checks, report, authentic, at, policy, from_ledger=cr.recorded_licence
                )
        return self._finish(report, checks, "qr")

    # -- PDFs --------------------------------------------------------------------------

    def verify_pdf(
        self, data: bytes, policy: VerificationPolicy = DEFAULT_POLICY
    ) -> rp.VerificationReport:
        """Inspect and judge in this process (see `judge_pdf` to split the two)."""
        return self.judge_pdf(inspect_signatures(data), policy)

    def judge_pdf(
        self, findings: PdfFindings, policy: VerificationPolicy = DEFAULT_POLICY
    ) -> rp.VerificationReport:
        report, at = self._start(policy)
        before, after = Checks(), Checks()
        if findings.problem is not None:
            self._malformed(before, f"不是可读取的 PDF：{findings.problem}", f"{findings.problem}")
            return self._conclude_pdf(report, before, after, [])
        before.passed("input.format", "PDF 格式正确", "a readable PDF")
        fingerprints = dict(self._records.seal_fingerprints())
        if not self._signatures_present(before, findings, fingerprints):
            return self._conclude_pdf(report, before, after, [])
        opened = self._checkpoint(report)
        checkpoint = None if isinstance(opened, str) else opened
        outcomes = []
        for position, found in enumerate(findings.signatures):
            later = {s.field_name for s in findings.signatures[position + 1 :]}
            shown = [
                fingerprints[image.fingerprint]
                for image in findings.images
                if image.signature_field == found.field_name and image.fingerprint in fingerprints
            ]
            outcomes.append(pdf.judge_signature(self._records, checkpoint, found, later, shown, at))
        passed_fields = {
            o.report.field_name
            for o in outcomes
            if o.conclusion.indication != rp.INDICATION_TOTAL_FAILED
        }
        pdf.seal_images_check(after, findings, fingerprints, passed_fields)
        self._licence_pdf(report, after, outcomes, checkpoint, at, policy)
        return self._conclude_pdf(report, before, after, outcomes)

    @staticmethod
    def _signatures_present(
        checks: Checks, findings: PdfFindings, fingerprints: dict[bytes, frozenset[str]]
    ) -> bool:
        if findings.signature_problem is not None:
            checks.failed(
                "pdf.signatures",
                rp.VERIFICATION_REASON_MALFORMED_INPUT,
                f"签名无法读取：{findings.signature_problem}",
                findings.signature_problem,
            )
            return False
        if not findings.signatures:
            pasted = [
                i for i in findings.images if i.looks_like_seal or i.fingerprint in fingerprints
            ]
            if pasted:
                checks.failed(
                    "pdf.signatures",
                    rp.VERIFICATION_REASON_SEAL_IMAGE_WITHOUT_SIGNATURE,
                    f"第 {pasted[0].page + 1} 页有印章图像，但文档没有任何电子签名（套用印章）",
                    f"page {pasted[0].page + 1} shows a seal image, but the document carries "
                    "no signature at all (a pasted seal)",
                )
            else:
                checks.failed(
                    "pdf.signatures",
                    rp.VERIFICATION_REASON_NO_SIGNATURE,
                    "文档没有电子签名",
                    "the document carries no signature",
                )
            return False
        count = len(findings.signatures)
        checks.passed("pdf.signatures", f"文档有 {count} 个电子签名", f"{count} signature(s) found")
        return True

    def _licence_pdf(
        self,
        report: rp.VerificationReport,
        checks: Checks,
        outcomes: list[pdf.SignatureOutcome],
        checkpoint: SignedCheckpoint | None,
        at: datetime,
        policy: VerificationPolicy,
    ) -> None:
        licence_id = next((o.sealing.licence_id for o in outcomes if o.sealing), "")
        if not licence_id or checkpoint is None:
            return
        found = pdf.licence_of_sealing(self._records, checkpoint, licence_id)
        if found is None:
            return
        licence, state = found
        report.licence.CopyFrom(licence)
        report.status_source = rp.STATUS_SOURCE_LOCAL_LEDGER
        report.status_as_of.CopyFrom(report.validation_time)
        current = lc.run_licence_checks(
            checks,
            licence,
            state,
            at,
            policy.expected_holder_id_number,
        )
        if current:
            report.current_licence_id = current

    @staticmethod
    def _conclude_pdf(
        report: rp.VerificationReport,
        before: Checks,
        after: Checks,
        outcomes: list[pdf.SignatureOutcome],
    ) -> rp.VerificationReport:
        conclusion = worst(
            [before.conclusion(), *(o.conclusion for o in outcomes), after.conclusion()]
        )
        apply(conclusion, report)
        report.checks.extend(before.items + after.items)
        for outcome in outcomes:
            report.signatures.append(outcome.report)
        if outcomes:
            first = outcomes[0].report
            if first.HasField("seal"):
                report.seal.CopyFrom(first.seal)
            if first.HasField("signing_time"):
                report.signing_time.CopyFrom(first.signing_time)
        return report
