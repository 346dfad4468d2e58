"""Verification reports rendered for people, in Chinese, English or both, and as JSON."""

from __future__ import annotations

from google.protobuf import json_format

from licenceledger.licence.v1 import licence_pb2
from licenceledger.seal.v1 import seal_pb2
from licenceledger.type.v1 import crypto_pb2
from licenceledger.verification.v1 import report_pb2 as rpb
from verifier.render import render_report, report_json

SIGNED_AT = 1_795_255_200  # 2026-11-21 10:00:00 UTC
VALIDATED_AT = 1_800_000_000  # 2027-01-15 08:00:00 UTC


def check(
    name: str,
    result: rpb.CheckResult.ValueType,
    code: str = "",
    zh: str = "",
    en: str = "",
) -> rpb.Check:
    return rpb.Check(name=name, result=result, reason_code=code, message_zh=zh, message_en=en)


def passed_report() -> rpb.VerificationReport:
    report = rpb.VerificationReport(
        indication=rpb.INDICATION_TOTAL_PASSED,
        region_code="310000",
        status_source=rpb.STATUS_SOURCE_LOCAL_LEDGER,
        licence=licence_pb2.Licence(
            licence_id="1.2.156.3005.2.SPJY.310000.001.X",
            licence_type_name="食品经营许可证",
            licence_number="JY31000000001",
            holder=licence_pb2.Holder(name="某某食品有限公司", id_number="91310000MA1K000001"),
            issuer=licence_pb2.Issuer(
                department_name="上海市市场监督管理局", department_code="SHSCJG"
            ),
            status=licence_pb2.LICENCE_STATUS_VALID,
        ),
        checks=[
            check("input.format", rpb.CHECK_RESULT_PASSED, zh="输入格式正确", en="well formed"),
            check("credential.signature", rpb.CHECK_RESULT_PASSED),
        ],
    )
    report.signing_time.FromSeconds(SIGNED_AT)
    report.validation_time.FromSeconds(VALIDATED_AT)
    report.checkpoint.origin = "licence-ledger.localhost/310000"
    report.checkpoint.tree_size = 42
    report.checkpoint.root_hash = bytes.fromhex("ab" * 32)
    report.trust_list.operator = "国家政务服务平台"
    report.trust_list.sequence_number = 7
    report.trust_list.digest.algorithm = crypto_pb2.DIGEST_ALGORITHM_SHA256
    report.trust_list.digest.value = bytes.fromhex("cd" * 32)
    return report


def revoked_report() -> rpb.VerificationReport:
    report = passed_report()
    report.indication = rpb.INDICATION_TOTAL_FAILED
    report.sub_indication = rpb.SUB_INDICATION_REVOKED
    report.reason = rpb.VERIFICATION_REASON_LICENCE_REVOKED
    report.reason_code = "LICENCE_REVOKED"
    report.licence.status = licence_pb2.LICENCE_STATUS_REVOKED
    report.checks.extend(
        [
            check(
                "licence.status",
                rpb.CHECK_RESULT_FAILED,
                "LICENCE_REVOKED",
                "证照已被吊销",
                "the licence was revoked",
            ),
            check("licence.validity", rpb.CHECK_RESULT_SKIPPED, en="skipped after a failure"),
        ]
    )
    return report


def pdf_report() -> rpb.VerificationReport:
    first = rpb.SignatureReport(
        field_name="Seal1",
        indication=rpb.INDICATION_TOTAL_PASSED,
        signer_subject="CN=上海市市场监督管理局,O=310000",
        covers_whole_document=False,
        seal=seal_pb2.Seal(
            seal_id="SEAL-A",
            name="上海市市场监督管理局",
            seal_type=seal_pb2.SEAL_TYPE_OFFICIAL,
            status=seal_pb2.SEAL_STATUS_ACTIVE,
        ),
        checks=[check("pdf.byte_range", rpb.CHECK_RESULT_PASSED, en="covers revision 1")],
    )
    first.signing_time.FromSeconds(SIGNED_AT)
    first.claimed_signing_time.FromSeconds(SIGNED_AT - 3600)
    first.signed_revision_digest.algorithm = crypto_pb2.DIGEST_ALGORITHM_SHA256
    first.signed_revision_digest.value = bytes.fromhex("ef" * 32)
    second = rpb.SignatureReport(
        field_name="Seal2",
        indication=rpb.INDICATION_TOTAL_FAILED,
        sub_indication=rpb.SUB_INDICATION_HASH_FAILURE,
        reason=rpb.VERIFICATION_REASON_MODIFIED_AFTER_SIGNING,
        reason_code="MODIFIED_AFTER_SIGNING",
        covers_whole_document=True,
        checks=[
            check(
                "pdf.modification",
                rpb.CHECK_RESULT_FAILED,
                "MODIFIED_AFTER_SIGNING",
                "签署后文件被修改",
                "the document was changed after signing",
            )
        ],
    )
    report = rpb.VerificationReport(
        indication=rpb.INDICATION_TOTAL_FAILED,
        sub_indication=rpb.SUB_INDICATION_HASH_FAILURE,
        reason_code="MODIFIED_AFTER_SIGNING",
        signatures=[first, second],
        checks=[check("input.format", rpb.CHECK_RESULT_PASSED)],
    )
    report.seal.CopyFrom(first.seal)
    return report


def indeterminate_report() -> rpb.VerificationReport:
    return rpb.VerificationReport(
        indication=rpb.INDICATION_INDETERMINATE,
        sub_indication=rpb.SUB_INDICATION_TRY_LATER,
        reason=rpb.VERIFICATION_REASON_TRUST_LIST_STALE,  # code left to the enum
        checks=[
            check(
                "trust_list.freshness",
                rpb.CHECK_RESULT_INDETERMINATE,
                "TRUST_LIST_STALE",
                "信任列表已过期",
                "the trust list is stale",
            )
        ],
    )


def test_passed_in_both_languages() -> None:
    text = render_report(passed_report())
    lines = text.splitlines()
    assert lines[0] == "结论 Conclusion: 通过 TOTAL_PASSED"
    assert text.endswith("\n")
    assert (
        "证照 Licence: 1.2.156.3005.2.SPJY.310000.001.X  食品经营许可证 JY31000000001  "
        "持证主体 Holder: 某某食品有限公司 (91310000MA1K000001)"
    ) in lines
    assert "发证机关 Issuer: 上海市市场监督管理局 (SHSCJG)" in lines
    assert "证照状态 Licence status: VALID" in lines
    assert (
        "签署时间（账本证明） Signing time (proven by the ledger): 2026-11-21 10:00:00 UTC" in lines
    )
    assert "核验时间 Validation time: 2027-01-15 08:00:00 UTC" in lines
    assert "状态来源 Status source: LOCAL_LEDGER" in lines
    assert (
        "账本检查点 Checkpoint: licence-ledger.localhost/310000 size 42 root abababababababab…"
    ) in lines
    assert "信任列表 Trust list: 国家政务服务平台 #7 digest cdcdcdcdcdcdcdcd…" in lines
    assert "检查 Checks:" in lines
    assert "  ✓ input.format          通过/passed  输入格式正确 / well formed" in lines
    assert "  ✓ credential.signature  通过/passed" in lines
    # Unset fields leave no line behind.
    for absent in ("Sub-indication", "Seal", "Signatures", "Current licence", "Validity"):
        assert absent not in text


def test_passed_in_one_language() -> None:
    zh = render_report(passed_report(), language="zh")
    assert zh.splitlines()[0] == "结论: 通过 TOTAL_PASSED"
    assert "  ✓ input.format          通过  输入格式正确" in zh.splitlines()
    assert "Conclusion" not in zh
    assert "well formed" not in zh
    en = render_report(passed_report(), language="en")
    assert en.splitlines()[0] == "Conclusion: TOTAL_PASSED"
    assert "  ✓ input.format          passed  well formed" in en.splitlines()
    assert "Holder: 某某食品有限公司 (91310000MA1K000001)" in en
    assert "结论" not in en
    assert "输入格式正确" not in en


def test_failed_names_the_reason_and_marks_each_check() -> None:
    report = revoked_report()
    both = render_report(report).splitlines()
    assert both[0] == (
        "结论 Conclusion: 未通过 TOTAL_FAILED — LICENCE_REVOKED "
        "(证照已被吊销 / the licence was revoked)"
    )
    assert both[1] == "子指示 Sub-indication: REVOKED"
    assert "证照状态 Licence status: REVOKED" in both
    assert (
        "  ✗ licence.status        未通过/failed  LICENCE_REVOKED  "
        "证照已被吊销 / the licence was revoked"
    ) in both
    assert "  – licence.validity      跳过/skipped   skipped after a failure" in both

    zh = render_report(report, language="zh").splitlines()
    assert zh[0] == "结论: 未通过 TOTAL_FAILED — LICENCE_REVOKED (证照已被吊销)"
    assert "子指示: REVOKED" in zh
    assert "  ✗ licence.status        未通过  LICENCE_REVOKED  证照已被吊销" in zh
    # A message missing in the chosen language falls back to the other one.
    assert "  – licence.validity      跳过    skipped after a failure" in zh

    en = render_report(report, language="en").splitlines()
    assert en[0] == "Conclusion: TOTAL_FAILED — LICENCE_REVOKED (the licence was revoked)"
    assert "Sub-indication: REVOKED" in en
    assert "  ✗ licence.status        failed   LICENCE_REVOKED  the licence was revoked" in en


def test_pdf_has_one_block_per_signature() -> None:
    text = render_report(pdf_report())
    lines = text.splitlines()
    assert lines[0] == (
        "结论 Conclusion: 未通过 TOTAL_FAILED — MODIFIED_AFTER_SIGNING "
        "(签署后文件被修改 / the document was changed after signing)"
    )
    assert "印章 Seal: 上海市市场监督管理局 (SEAL-A)  OFFICIAL  状态 status ACTIVE" in lines
    start = lines.index("签名 Signatures (PDF): 2")
    first = lines.index("  [1] Seal1: 通过 TOTAL_PASSED")
    second = lines.index(
        "  [2] Seal2: 未通过 TOTAL_FAILED — MODIFIED_AFTER_SIGNING "
        "(签署后文件被修改 / the document was changed after signing)"
    )
    assert start < first < second
    block1, block2 = lines[first + 1 : second], lines[second + 1 :]
    assert block1 == [
        "      印章 Seal: 上海市市场监督管理局 (SEAL-A)  OFFICIAL  状态 status ACTIVE",
        "      签署者 Signer: CN=上海市市场监督管理局,O=310000",
        "      签署时间（账本证明） Signing time (proven by the ledger): 2026-11-21 10:00:00 UTC",
        "      声称的签署时间（未经证明） Claimed signing time (unproven): 2026-11-21 09:00:00 UTC",
        "      覆盖范围 Coverage: 未覆盖整个文件 does not cover the whole document",
        "      签署版本摘要 Signed revision: sha256 efefefefefefefef…",
        "      检查 Checks:",
        "        ✓ pdf.byte_range  通过/passed  covers revision 1",
    ]
    assert block2 == [
        "      子指示 Sub-indication: HASH_FAILURE",
        "      覆盖范围 Coverage: 覆盖整个文件 covers the whole document",
        "      检查 Checks:",
        "        ✗ pdf.modification  未通过/failed  MODIFIED_AFTER_SIGNING  "
        "签署后文件被修改 / the document was changed after signing",
    ]
    en = render_report(pdf_report(), language="en")
    assert "Signatures (PDF): 2" in en
    assert "  [1] Seal1: TOTAL_PASSED" in en
    assert "      Coverage: does not cover the whole document" in en


def test_indeterminate_takes_its_code_from_the_enum() -> None:
    both = render_report(indeterminate_report()).splitlines()
    assert both[0] == (
        "结论 Conclusion: 无法确定 INDETERMINATE — TRUST_LIST_STALE "
        "(信任列表已过期 / the trust list is stale)"
    )
    assert both[1] == "子指示 Sub-indication: TRY_LATER"
    assert both[3] == (
        "  ? trust_list.freshness  无法确定/indeterminate  TRUST_LIST_STALE  "
        "信任列表已过期 / the trust list is stale"
    )
    en = render_report(indeterminate_report(), language="en").splitlines()
    assert en[0] == "Conclusion: INDETERMINATE — TRUST_LIST_STALE (the trust list is stale)"


def test_values_newer_than_the_client_show_their_number() -> None:
    report = rpb.VerificationReport(
        indication=rpb.INDICATION_TOTAL_FAILED,
        sub_indication=99,  # type: ignore[arg-type]
        reason_code="SOME_FUTURE_REASON",
        checks=[rpb.Check(name="future.check", result=42)],  # type: ignore[arg-type]
    )
    lines = render_report(report, language="en").splitlines()
    assert lines[0] == "Conclusion: TOTAL_FAILED — SOME_FUTURE_REASON"
    assert lines[1] == "Sub-indication: UNKNOWN(99)"
    assert "  · future.check  unknown" in lines


def test_control_characters_from_the_input_are_escaped() -> None:
    report = passed_report()
    report.licence.holder.name = "Evil\x1b[2J\x1b[31mCo\u202edcba\nnext"
    text = render_report(report, language="en")
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert "Holder: Evil\\u001b[2J\\u001b[31mCo\\u202edcba\\u000anext (" in text
    assert len(text.splitlines()) == len(render_report(passed_report(), language="en").splitlines())


def test_json_round_trips() -> None:
    for report in (passed_report(), revoked_report(), pdf_report(), indeterminate_report()):
        text = report_json(report)
        assert json_format.Parse(text, rpb.VerificationReport()) == report
    text = report_json(revoked_report())
    assert '"indication": "INDICATION_TOTAL_FAILED"' in text
    assert "证照已被吊销" in text  # readable, not \\u escapes
