"""The report's conclusion: the first failure decides, else the first inconclusive check."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from licenceledger.verification.v1 import report_pb2 as rp
from verifier.report import PASSED_CONCLUSION, Checks, apply, reason_code, worst

_REASONS = [v for v in rp.VerificationReason.values() if v != rp.VERIFICATION_REASON_UNSPECIFIED]
_RESULTS = [rp.CHECK_RESULT_PASSED, rp.CHECK_RESULT_FAILED, rp.CHECK_RESULT_INDETERMINATE]
_RESULTS.append(rp.CHECK_RESULT_SKIPPED)


def _record(checks: Checks, result: int, reason: int) -> None:
    if result == rp.CHECK_RESULT_PASSED:
        checks.passed("x", "通过", "passed")
    elif result == rp.CHECK_RESULT_FAILED:
        checks.failed("x", reason, "失败", "failed")  # type: ignore[arg-type]
    elif result == rp.CHECK_RESULT_INDETERMINATE:
        checks.indeterminate("x", reason, "不确定", "inconclusive")  # type: ignore[arg-type]
    else:
        checks.skipped("x", "跳过", "skipped")


@given(st.lists(st.tuples(st.sampled_from(_RESULTS), st.sampled_from(_REASONS)), max_size=12))
def test_conclusion_matches_a_naive_reading(outcomes: list[tuple[int, int]]) -> None:
    checks = Checks()
    for result, reason in outcomes:
        _record(checks, result, reason)
    conclusion = checks.conclusion()
    failed = [r for res, r in outcomes if res == rp.CHECK_RESULT_FAILED]
    inconclusive = [r for res, r in outcomes if res == rp.CHECK_RESULT_INDETERMINATE]
    if failed:
        assert conclusion.indication == rp.INDICATION_TOTAL_FAILED
        assert conclusion.reason == failed[0]
    elif inconclusive:
        assert conclusion.indication == rp.INDICATION_INDETERMINATE
        assert conclusion.reason == inconclusive[0]
    else:
        assert conclusion == PASSED_CONCLUSION
    assert checks.ok == (not failed and not inconclusive)


def test_reason_codes_are_enum_names_without_prefix() -> None:
    assert reason_code(rp.VERIFICATION_REASON_SEAL_REVOKED) == "SEAL_REVOKED"
    checks = Checks()
    checks.failed("licence.status", rp.VERIFICATION_REASON_LICENCE_REVOKED, "吊销", "revoked")
    assert checks.items[0].reason_code == "LICENCE_REVOKED"


def test_a_pass_with_a_remark_keeps_its_code_but_passes() -> None:
    checks = Checks()
    checks.passed(
        "seal.status", "晚于", "after", reason=rp.VERIFICATION_REASON_SEAL_REVOKED_AFTER_SIGNING
    )
    assert checks.items[0].reason_code == "SEAL_REVOKED_AFTER_SIGNING"
    assert checks.conclusion() == PASSED_CONCLUSION


def test_sub_indications_follow_the_reason_unless_a_check_names_one() -> None:
    checks = Checks()
    checks.failed("seal.status", rp.VERIFICATION_REASON_SEAL_REVOKED, "吊销", "revoked")
    assert checks.conclusion().sub_indication == rp.SUB_INDICATION_REVOKED
    checks = Checks()
    checks.failed(
        "seal.status",
        rp.VERIFICATION_REASON_SEAL_REVOKED,
        "吊销",
        "revoked",
        sub=rp.SUB_INDICATION_REVOKED_NO_POE,
    )
    conclusion = checks.conclusion()
    assert conclusion.sub_indication == rp.SUB_INDICATION_REVOKED_NO_POE
    report = rp.VerificationReport()
    apply(conclusion, report)
    assert (report.indication, report.reason_code) == (rp.INDICATION_TOTAL_FAILED, "SEAL_REVOKED")


def test_worst_prefers_the_first_failure_over_earlier_inconclusive_ones() -> None:
    inconclusive, failed = Checks(), Checks()
    inconclusive.indeterminate("a", rp.VERIFICATION_REASON_LICENCE_NOT_YET_VALID, "未", "not yet")
    failed.failed("b", rp.VERIFICATION_REASON_HOLDER_MISMATCH, "不符", "mismatch")
    chosen = worst([inconclusive.conclusion(), failed.conclusion()])
    assert chosen.reason == rp.VERIFICATION_REASON_HOLDER_MISMATCH
    assert worst([]) == PASSED_CONCLUSION
