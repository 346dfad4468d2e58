"""Verification reports as people read them: plain text in Chinese, English or both.

The text is for terminals and printouts; tools read `report_json`. Enum values are
shown by their stable names without the type prefix (`TOTAL_FAILED`, `REVOKED`), so
a reader can look up the same code in logs, the API and the JSON.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Literal

from google.protobuf import json_format
from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from licenceledger.licence.v1 import licence_pb2
from licenceledger.seal.v1 import seal_pb2
from licenceledger.type.v1 import crypto_pb2
from licenceledger.verification.v1 import report_pb2

Language = Literal["zh", "en", "both"]

_INDICATION_ZH = {
    report_pb2.INDICATION_TOTAL_PASSED: "通过",
    report_pb2.INDICATION_TOTAL_FAILED: "未通过",
    report_pb2.INDICATION_INDETERMINATE: "无法确定",
}

# mark, Chinese, English
_RESULTS = {
    report_pb2.CHECK_RESULT_PASSED: ("✓", "通过", "passed"),
    report_pb2.CHECK_RESULT_FAILED: ("✗", "未通过", "failed"),
    report_pb2.CHECK_RESULT_INDETERMINATE: ("?", "无法确定", "indeterminate"),
    report_pb2.CHECK_RESULT_SKIPPED: ("–", "跳过", "skipped"),
}
_UNKNOWN_RESULT = ("·", "未知", "unknown")

_DIGEST_PREFIX_BYTES = 8

# Strings in a report can come from the input under verification (a forged credential
# picks its holder's name, a PDF its signer's subject). Control characters could drive
# the terminal (ANSI escapes) and bidi controls could reorder what the reader sees.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _escape_controls(line: str) -> str:
    return "".join(
        f"\\u{ord(c):04x}" if c in _BIDI_CONTROLS or unicodedata.category(c) == "Cc" else c
        for c in line
    )


def _enum_name(descriptor: EnumDescriptor, number: int) -> str:
    """`INDICATION_TOTAL_FAILED` → `TOTAL_FAILED`; a value newer than this client by number."""
    # Every enum of the API names its zero value <PREFIX>UNSPECIFIED (buf lint).
    prefix = descriptor.values_by_number[0].name.removesuffix("UNSPECIFIED")
    value = descriptor.values_by_number.get(number)
    return value.name.removeprefix(prefix) if value is not None else f"UNKNOWN({number})"


def _width(text: str) -> int:
    # Chinese characters take two terminal columns.
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _time(ts: Timestamp) -> str:
    try:
        return ts.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError):
        return f"{ts.seconds} s after 1970-01-01 UTC"  # outside what datetime can hold


def _hex_prefix(value: bytes) -> str:
    if len(value) <= _DIGEST_PREFIX_BYTES:
        return value.hex()
    return value[:_DIGEST_PREFIX_BYTES].hex() + "…"


def _digest(digest: crypto_pb2.Digest) -> str:
    algorithm = _enum_name(crypto_pb2.DigestAlgorithm.DESCRIPTOR, digest.algorithm).lower()
    return f"{algorithm} {_hex_prefix(digest.value)}"


class _Writer:
    """Lines of one report in the chosen language(s)."""

    def __init__(self, language: Language) -> None:
        self.language = language
        self.lines: list[str] = []

    def label(self, zh: str, en: str) -> str:
        if self.language == "zh":
            return zh
        if self.language == "en":
            return en
        return f"{zh} {en}"

    def message(self, zh: str, en: str) -> str:
        # A missing translation falls back to the other language rather than to nothing.
        if self.language == "zh":
            return zh or en
        if self.language == "en":
            return en or zh
        return " / ".join(m for m in dict.fromkeys((zh, en)) if m)

    def field(self, indent: str, zh: str, en: str, value: str) -> None:
        if value:
            self.lines.append(f"{indent}{self.label(zh, en)}: {value}")

    def time(self, indent: str, zh: str, en: str, owner: Message, name: str) -> None:
        if owner.HasField(name):
            ts: Timestamp = getattr(owner, name)
            self.field(indent, zh, en, _time(ts))

    def conclusion(
        self,
        indication: report_pb2.Indication.ValueType,
        reason_code: str,
        checks: Sequence[report_pb2.Check],
    ) -> str:
        code = _enum_name(report_pb2.Indication.DESCRIPTOR, indication)
        zh = _INDICATION_ZH.get(indication)
        text = f"{zh} {code}" if zh is not None and self.language != "en" else code
        if reason_code:
            text += f" — {reason_code}"
            decisive = _decisive_check(reason_code, checks)
            if decisive is not None:
                why = self.message(decisive.message_zh, decisive.message_en)
                if why:
                    text += f" ({why})"
        return text

    def checks(self, indent: str, checks: Sequence[report_pb2.Check]) -> None:
        if not checks:
            return
        self.lines.append(f"{indent}{self.label('检查', 'Checks')}:")
        rows = []
        for check in checks:
            mark, zh, en = _RESULTS.get(check.result, _UNKNOWN_RESULT)
            result = zh if self.language == "zh" else en if self.language == "en" else f"{zh}/{en}"
            rows.append((mark, check.name, result, check.reason_code, check))
        name_width = max(_width(name) for _, name, _, _, _ in rows)
        result_width = max(_width(result) for _, _, result, _, _ in rows)
        for mark, name, result, code, check in rows:
            parts = [_pad(name, name_width), _pad(result, result_width)]
            if code:
                parts.append(code)
            message = self.message(check.message_zh, check.message_en)
            if message:
                parts.append(message)
            self.lines.append(f"{indent}  {mark} {'  '.join(parts)}".rstrip())

    def seal(self, indent: str, seal: seal_pb2.Seal) -> None:
        parts = [seal.name or seal.seal_id]
        if seal.name and seal.seal_id:
            parts[0] += f" ({seal.seal_id})"
        if seal.seal_type:
            parts.append(_enum_name(seal_pb2.SealType.DESCRIPTOR, seal.seal_type))
        if seal.status:
            status = _enum_name(seal_pb2.SealStatus.DESCRIPTOR, seal.status)
            parts.append(f"{self.label('状态', 'status')} {status}")
        self.field(indent, "印章", "Seal", "  ".join(p for p in parts if p))


def _decisive_check(
    reason_code: str, checks: Sequence[report_pb2.Check]
) -> report_pb2.Check | None:
    """The check that gave the conclusion its reason: a failing one first, else any."""
    matching = [c for c in checks if c.reason_code == reason_code]
    for check in matching:
        if check.result in (report_pb2.CHECK_RESULT_FAILED, report_pb2.CHECK_RESULT_INDETERMINATE):
            return check
    return matching[0] if matching else None


def _reason_code(code: str, reason: report_pb2.VerificationReason.ValueType) -> str:
    # The string is authoritative: it still names reasons newer than this client's enum.
    if code or not reason:
        return code
    return _enum_name(report_pb2.VerificationReason.DESCRIPTOR, reason)


def _licence(w: _Writer, licence: licence_pb2.Licence) -> None:
    kind = " ".join(p for p in (licence.licence_type_name, licence.licence_number) if p)
    parts = [p for p in (licence.licence_id, kind) if p]
    holder = licence.holder
    if holder.name or holder.id_number:
        who = holder.name
        if holder.id_number:
            who = f"{who} ({holder.id_number})" if who else holder.id_number
        parts.append(f"{w.label('持证主体', 'Holder')}: {who}")
    w.field("", "证照", "Licence", "  ".join(parts))
    issuer = licence.issuer
    name = issuer.department_name or issuer.department_code
    codes = ", ".join(c for c in (issuer.department_code, issuer.region_code) if c and c != name)
    w.field("", "发证机关", "Issuer", f"{name} ({codes})" if name and codes else name)
    valid = [
        _time(getattr(licence, name)) if licence.HasField(name) else ""
        for name in ("valid_from", "valid_until")
    ]
    if any(valid):
        w.field("", "有效期", "Validity", f"{valid[0] or '…'} – {valid[1] or '…'}")
    if licence.status:
        status = _enum_name(licence_pb2.LicenceStatus.DESCRIPTOR, licence.status)
        w.field("", "证照状态", "Licence status", status)


def _signature(w: _Writer, number: int, sig: report_pb2.SignatureReport) -> None:
    code = _reason_code(sig.reason_code, sig.reason)
    title = sig.field_name or w.label("未命名签名", "unnamed signature")
    w.lines.append(f"  [{number}] {title}: {w.conclusion(sig.indication, code, sig.checks)}")
    indent = "      "
    if sig.sub_indication:
        sub = _enum_name(report_pb2.SubIndication.DESCRIPTOR, sig.sub_indication)
        w.field(indent, "子指示", "Sub-indication", sub)
    if sig.HasField("seal"):
        w.seal(indent, sig.seal)
    w.field(indent, "签署者", "Signer", sig.signer_subject)
    w.time(
        indent, "签署时间（账本证明）", "Signing time (proven by the ledger)", sig, "signing_time"
    )
    w.time(
        indent,
        "声称的签署时间（未经证明）",
        "Claimed signing time (unproven)",
        sig,
        "claimed_signing_time",
    )
    coverage = (
        w.label("覆盖整个文件", "covers the whole document")
        if sig.covers_whole_document
        else w.label("未覆盖整个文件", "does not cover the whole document")
    )
    w.field(indent, "覆盖范围", "Coverage", coverage)
    if sig.HasField("signed_revision_digest"):
        w.field(indent, "签署版本摘要", "Signed revision", _digest(sig.signed_revision_digest))
    w.checks(indent, sig.checks)


def _all_checks(report: report_pb2.VerificationReport) -> Iterable[report_pb2.Check]:
    yield from report.checks
    for sig in report.signatures:
        yield from sig.checks


def render_report(report: report_pb2.VerificationReport, *, language: Language = "both") -> str:
    """The report as plain text lines (no colour), ending with a newline."""
    w = _Writer(language)
    code = _reason_code(report.reason_code, report.reason)
    conclusion = w.conclusion(report.indication, code, list(_all_checks(report)))
    w.field("", "结论", "Conclusion", conclusion)
    if report.sub_indication:
        sub = _enum_name(report_pb2.SubIndication.DESCRIPTOR, report.sub_indication)
        w.field("", "子指示", "Sub-indication", sub)
    w.field("", "当前版本", "Current licence", report.current_licence_id)
    if report.HasField("licence"):
        _licence(w, report.licence)
    if report.HasField("seal"):
        w.seal("", report.seal)
    w.field("", "地区", "Region", report.region_code)
    w.time(
        "", "签署时间（账本证明）", "Signing time (proven by the ledger)", report, "signing_time"
    )
    w.time("", "核验时间", "Validation time", report, "validation_time")
    if report.status_source:
        source = _enum_name(report_pb2.StatusSource.DESCRIPTOR, report.status_source)
        if report.HasField("status_as_of"):
            source += f", {w.label('截至', 'as of')} {_time(report.status_as_of)}"
        w.field("", "状态来源", "Status source", source)
    if report.HasField("checkpoint"):
        cp = report.checkpoint
        root = _hex_prefix(cp.root_hash)
        w.field("", "账本检查点", "Checkpoint", f"{cp.origin} size {cp.tree_size} root {root}")
    if report.HasField("trust_list"):
        tl = report.trust_list
        text = f"{tl.operator} #{tl.sequence_number}"
        if tl.HasField("digest"):
            text += f" digest {_hex_prefix(tl.digest.value)}"
        w.field("", "信任列表", "Trust list", text)
    w.checks("", report.checks)
    if report.signatures:
        w.lines.append(f"{w.label('签名', 'Signatures')} (PDF): {len(report.signatures)}")
        for number, sig in enumerate(report.signatures, start=1):
            _signature(w, number, sig)
    return "".join(_escape_controls(line) + "\n" for line in w.lines)


def report_json(report: report_pb2.VerificationReport) -> str:
    """The report in protobuf's canonical JSON (what `json_format.Parse` reads back)."""
    # Chinese messages stay readable instead of \\u escapes; the JSON is still valid.
    return json_format.MessageToJson(report, indent=2, ensure_ascii=False)
