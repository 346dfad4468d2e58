"""Building a verification report: checks in order, and the conclusion drawn from them.

The conclusion follows ETSI TS 119 102-1: the first check that FAILED decides
(TOTAL_FAILED); failing none, the first INDETERMINATE one (INDETERMINATE); else
TOTAL_PASSED. Checks are recorded in the order they are specified to run, so "the
first" is well defined and a report is reproducible from its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

from licenceledger.verification.v1 import report_pb2 as rp

Reason: TypeAlias = rp.VerificationReason.ValueType
SubIndication: TypeAlias = rp.SubIndication.ValueType

PASSED = rp.CHECK_RESULT_PASSED
FAILED = rp.CHECK_RESULT_FAILED
INDETERMINATE = rp.CHECK_RESULT_INDETERMINATE
SKIPPED = rp.CHECK_RESULT_SKIPPED

_REASON_PREFIX = "VERIFICATION_REASON_"

# The ETSI sub-indication each of our reasons maps to when it decides a report.
_SUB_INDICATION: dict[int, SubIndication] = {
    rp.VERIFICATION_REASON_SIGNATURE_INVALID: rp.SUB_INDICATION_SIG_CRYPTO_FAILURE,
    rp.VERIFICATION_REASON_NO_CERTIFICATE_CHAIN: rp.SUB_INDICATION_NO_CERTIFICATE_CHAIN_FOUND,
    rp.VERIFICATION_REASON_ISSUER_NOT_AUTHORISED: rp.SUB_INDICATION_CHAIN_CONSTRAINTS_FAILURE,
    rp.VERIFICATION_REASON_NOT_IN_LEDGER: rp.SUB_INDICATION_SIG_CONSTRAINTS_FAILURE,
    rp.VERIFICATION_REASON_LICENCE_SUSPENDED: rp.SUB_INDICATION_REVOKED,
    rp.VERIFICATION_REASON_LICENCE_WITHDRAWN: rp.SUB_INDICATION_REVOKED,
    rp.VERIFICATION_REASON_LICENCE_CANCELLED: rp.SUB_INDICATION_REVOKED,
    rp.VERIFICATION_REASON_LICENCE_REVOKED: rp.SUB_INDICATION_REVOKED,
    rp.VERIFICATION_REASON_LICENCE_TRANSFERRED_OUT: rp.SUB_INDICATION_REVOKED,
    rp.VERIFICATION_REASON_LICENCE_EXPIRED: rp.SUB_INDICATION_EXPIRED,
    rp.VERIFICATION_REASON_LICENCE_NOT_YET_VALID: rp.SUB_INDICATION_NOT_YET_VALID,
    rp.VERIFICATION_REASON_LICENCE_SUPERSEDED: rp.SUB_INDICATION_SIG_CONSTRAINTS_FAILURE,
    rp.VERIFICATION_REASON_HOLDER_MISMATCH: rp.SUB_INDICATION_SIG_CONSTRAINTS_FAILURE,
    rp.VERIFICATION_REASON_MODIFIED_AFTER_SIGNING: rp.SUB_INDICATION_SIG_CONSTRAINTS_FAILURE,
    rp.VERIFICATION_REASON_SEAL_IMAGE_WITHOUT_SIGNATURE: rp.SUB_INDICATION_SIGNED_DATA_NOT_FOUND,
    rp.VERIFICATION_REASON_BYTE_RANGE_MISMATCH: rp.SUB_INDICATION_HASH_FAILURE,
    rp.VERIFICATION_REASON_SEAL_REVOKED: rp.SUB_INDICATION_REVOKED,
    rp.VERIFICATION_REASON_SEAL_OUTSIDE_VALIDITY: rp.SUB_INDICATION_OUT_OF_BOUNDS_NO_POE,
    rp.VERIFICATION_REASON_SEAL_PURPOSE_NOT_PERMITTED: rp.SUB_INDICATION_SIG_CONSTRAINTS_FAILURE,
    rp.VERIFICATION_REASON_SEAL_SIGNER_NOT_BOUND: rp.SUB_INDICATION_SIG_CONSTRAINTS_FAILURE,
    rp.VERIFICATION_REASON_LEDGER_PROOF_INVALID: rp.SUB_INDICATION_HASH_FAILURE,
    rp.VERIFICATION_REASON_MALFORMED_INPUT: rp.SUB_INDICATION_FORMAT_FAILURE,
    rp.VERIFICATION_REASON_NO_SIGNATURE: rp.SUB_INDICATION_SIGNED_DATA_NOT_FOUND,
    rp.VERIFICATION_REASON_ISSUER_KEY_REVOKED: rp.SUB_INDICATION_REVOKED,
    rp.VERIFICATION_REASON_SEAL_NOT_REGISTERED: rp.SUB_INDICATION_CHAIN_CONSTRAINTS_FAILURE,
    rp.VERIFICATION_REASON_SEAL_SUSPENDED: rp.SUB_INDICATION_REVOKED,
}


def reason_code(reason: Reason) -> str:
    """The stable code of a reason: its enum name without the prefix."""
    return rp.VerificationReason.Name(reason).removeprefix(_REASON_PREFIX)


@dataclass(frozen=True, slots=True)
class Conclusion:
    indication: rp.Indication.ValueType
    sub_indication: SubIndication
    reason: Reason

    @property
    def reason_code(self) -> str:
        return "" if self.reason == rp.VERIFICATION_REASON_UNSPECIFIED else reason_code(self.reason)


PASSED_CONCLUSION = Conclusion(
    rp.INDICATION_TOTAL_PASSED, rp.SUB_INDICATION_UNSPECIFIED, rp.VERIFICATION_REASON_UNSPECIFIED
)


@dataclass
class Checks:
    """The checks of one report (or of one PDF signature), in the order they ran."""

    items: list[rp.Check] = field(default_factory=list)
    # A check may name a finer sub-indication than its reason's default (e.g.
    # REVOKED_NO_POE when no ledger entry proves the signing time).
    _sub_indications: dict[int, SubIndication] = field(default_factory=dict)

    def _add(
        self,
        name: str,
        result: rp.CheckResult.ValueType,
        reason: Reason,
        zh: str,
        en: str,
        sub: SubIndication | None,
    ) -> None:
        code = "" if reason == rp.VERIFICATION_REASON_UNSPECIFIED else reason_code(reason)
        if sub is not None:
            self._sub_indications[len(self.items)] = sub
        self.items.append(
            rp.Check(
                name=name,
                result=result,
                reason_code=code,
                reason=reason,
                message_zh=zh,
                message_en=en,
            )
        )

    def passed(
        self, name: str, zh: str, en: str, reason: Reason = rp.VERIFICATION_REASON_UNSPECIFIED
    ) -> None:
        """A pass; `reason` marks a pass with a remark (e.g. revoked after signing)."""
        self._add(name, PASSED, reason, zh, en, None)

    def failed(
        self, name: str, reason: Reason, zh: str, en: str, sub: SubIndication | None = None
    ) -> None:
        self._add(name, FAILED, reason, zh, en, sub)

    def indeterminate(
        self, name: str, reason: Reason, zh: str, en: str, sub: SubIndication | None = None
    ) -> None:
        self._add(name, INDETERMINATE, reason, zh, en, sub)

    def skipped(self, name: str, zh: str, en: str) -> None:
        self._add(name, SKIPPED, rp.VERIFICATION_REASON_UNSPECIFIED, zh, en, None)

    def skip_missing(self, names: list[str] | tuple[str, ...]) -> None:
        """Record as SKIPPED each of `names` that did not run, so every report of a
        kind lists the same checks in the same order."""
        done = {c.name for c in self.items}
        for name in names:
            if name not in done:
                self.skipped(name, "前序检查未通过，未执行", "not run: an earlier check failed")

    @property
    def ok(self) -> bool:
        """No check has failed or been inconclusive so far."""
        return all(c.result in (PASSED, SKIPPED) for c in self.items)

    @property
    def has_failed(self) -> bool:
        return any(c.result == FAILED for c in self.items)

    def conclusion(self) -> Conclusion:
        for wanted, indication in (
            (FAILED, rp.INDICATION_TOTAL_FAILED),
            (INDETERMINATE, rp.INDICATION_INDETERMINATE),
        ):
            for position, check in enumerate(self.items):
                if check.result == wanted:
                    sub = self._sub_indications.get(position) or _SUB_INDICATION.get(
                        check.reason, rp.SUB_INDICATION_GENERIC
                    )
                    return Conclusion(indication, sub, check.reason)
        return PASSED_CONCLUSION


def worst(conclusions: list[Conclusion]) -> Conclusion:
    """The first failure, else the first indeterminate conclusion, else a pass."""
    for indication in (rp.INDICATION_TOTAL_FAILED, rp.INDICATION_INDETERMINATE):
        for conclusion in conclusions:
            if conclusion.indication == indication:
                return conclusion
    return PASSED_CONCLUSION


def apply(conclusion: Conclusion, report: rp.VerificationReport | rp.SignatureReport) -> None:
    """Write a conclusion into a report or signature report."""
    report.indication = conclusion.indication
    report.sub_indication = conclusion.sub_indication
    report.reason = conclusion.reason
    report.reason_code = conclusion.reason_code
