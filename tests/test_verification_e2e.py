"""Verification over gRPC and from the command line, against a real server process.

The forged artefacts live in `test_forgery_corpus_e2e`; here are the genuine paths a
business or an inspector takes, the options they can give, and the report's content.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.seal.v1 import seal_pb2
from licenceledger.seal.v1 import seal_service_pb2 as sp
from licenceledger.verification.v1 import report_pb2 as rp
from licenceledger.verification.v1 import verification_service_pb2 as vp
from service.cli import main
from tests.e2e import (
    COMPANY,
    DEPT_A,
    FOOD,
    Region,
    call,
    close_region,
    issue_request,
    open_region,
    plain_pdf,
    register_seal,
    rid,
)
from verifier.licence_checks import timestamp

PASSED = rp.INDICATION_TOTAL_PASSED


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    region = open_region(tmp_path_factory, "verification")
    register_seal(
        region,
        DEPT_A,
        seal_pb2.SEAL_TYPE_LICENCE_ISSUING,
        permitted_purposes=["licence_issuing"],
        permitted_licence_type_codes=[FOOD],
    )
    yield region
    close_region(region)


@pytest.fixture(scope="module")
def credential(region: Region) -> lpb.LicenceCredential:
    reply = call(region, region.dept_a, "IssueLicence", issue_request("JY-V-1", want_pdf=True))
    return reply.credential  # type: ignore[no-any-return]


def _verify(region: Region, method: str, request: Any) -> rp.VerificationReport:
    return call(region, None, method, request).report  # type: ignore[no-any-return]


def _names(report: rp.VerificationReport | rp.SignatureReport) -> list[str]:
    return [c.name for c in report.checks]


CREDENTIAL_CHECKS = [
    "input.format",
    "issuer.certificate",
    "credential.signature",
    "credential.content",
    "issuer.scope",
    "ledger.inclusion",
    "issuer.key_status",
    "licence.status",
    "licence.validity",
    "licence.holder",
]


def test_a_genuine_credential_passes_every_check_in_order(
    region: Region, credential: lpb.LicenceCredential
) -> None:
    report = _verify(
        region,
        "VerifyCredential",
        vp.VerifyCredentialRequest(envelope=credential.envelope, expected_holder_id_number=COMPANY),
    )
    assert report.indication == PASSED, str(report).replace("\n", " | ")
    assert _names(report) == CREDENTIAL_CHECKS
    assert all(c.result == rp.CHECK_RESULT_PASSED for c in report.checks)
    assert all(c.message_zh and c.message_en for c in report.checks)
    assert report.licence == credential.licence
    assert report.signing_time == credential.proof.recorded_at
    assert report.checkpoint.tree_size >= credential.proof.tree_size
    assert report.trust_list.digest.value
    assert report.status_source == rp.STATUS_SOURCE_LOCAL_LEDGER
    assert report.region_code


def test_a_genuine_qr_code_passes_and_reports_the_full_licence(
    region: Region, credential: lpb.LicenceCredential
) -> None:
    report = _verify(region, "VerifyQrCode", vp.VerifyQrCodeRequest(payload=credential.qr_payload))
    assert report.indication == PASSED, str(report).replace("\n", " | ")
    assert _names(report) == [n.replace("credential.", "qr.") for n in CREDENTIAL_CHECKS]
    assert report.licence == credential.licence


def test_a_genuine_licence_pdf_passes_with_its_seal_and_licence(
    region: Region, credential: lpb.LicenceCredential
) -> None:
    report = _verify(region, "VerifyPdf", vp.VerifyPdfRequest(pdf=credential.pdf))
    assert report.indication == PASSED, str(report).replace("\n", " | ")
    assert _names(report) == [
        "input.format",
        "pdf.signatures",
        "pdf.seal_images",
        "licence.status",
        "licence.validity",
        "licence.holder",
    ]
    (signature,) = report.signatures
    assert signature.indication == PASSED
    assert _names(signature) == [
        "pdf.signature.integrity",
        "pdf.signature.modifications",
        "pdf.signature.chain",
        "seal.registration",
        "seal.signer",
        "seal.status",
        "seal.validity",
        "seal.purpose",
        "ledger.inclusion",
    ]
    assert signature.covers_whole_document
    assert signature.seal.owner_department_code == DEPT_A
    assert not signature.seal.image_png  # reports stay small; the digest names the image
    assert signature.signed_revision_digest.value == credential.pdf_digest.value
    assert report.licence == credential.licence
    assert report.seal.seal_id == signature.seal.seal_id


def test_validation_time_before_issuance_is_inconclusive(
    region: Region, credential: lpb.LicenceCredential
) -> None:
    before = datetime.now(UTC) - timedelta(days=400)
    report = _verify(
        region,
        "VerifyCredential",
        vp.VerifyCredentialRequest(envelope=credential.envelope, validation_time=timestamp(before)),
    )
    assert report.indication == rp.INDICATION_INDETERMINATE
    assert report.reason_code == "LICENCE_NOT_YET_VALID"
    assert report.validation_time == timestamp(before)


def test_a_contract_sealed_by_both_parties_passes_with_two_signatures(region: Region) -> None:
    seals = [
        register_seal(region, code, seal_pb2.SEAL_TYPE_CONTRACT, name="合同专用章").seal.seal_id
        for code in (DEPT_A, DEPT_A)
    ]
    pdf = plain_pdf()
    for n, seal_id in enumerate(seals):
        reply = call(
            region,
            region.dept_a,
            "SealDocument",
            sp.SealDocumentRequest(
                request_id=rid(),
                seal_id=seal_id,
                pdf=pdf,
                purpose="contract",
                placement=seal_pb2.SealPlacement(
                    page=1, x=100 + 150 * n, y=100, width=120, height=120
                ),
            ),
        )
        pdf = reply.sealed_pdf
    report = _verify(region, "VerifyPdf", vp.VerifyPdfRequest(pdf=pdf))
    assert report.indication == PASSED, str(report).replace("\n", " | ")
    assert [s.indication for s in report.signatures] == [PASSED, PASSED]
    assert not report.signatures[0].covers_whole_document
    assert report.signatures[1].covers_whole_document
    assert not report.HasField("licence")


def test_the_command_line_prints_the_report_and_exits_by_indication(
    region: Region,
    credential: lpb.LicenceCredential,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = f"127.0.0.1:{region.server.port}"
    ca = str(region.server.data.root / "pki" / "region-ca.pem")
    genuine = tmp_path / "licence.pdf"
    genuine.write_bytes(credential.pdf)
    assert main(["verify", str(genuine), "--server", server, "--ca", ca, "--lang", "zh"]) == 0
    out = capsys.readouterr().out
    assert "通过" in out
    assert "seal.purpose" in out
    qr_file = tmp_path / "qr.txt"
    qr_file.write_bytes(credential.qr_payload)
    args = ["--server", server, "--ca", ca, "--holder", "91310000MA1K00002X"]
    assert main(["verify", str(qr_file), *args]) == 1
    assert "HOLDER_MISMATCH" in capsys.readouterr().out
