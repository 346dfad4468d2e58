"""End to end over gRPC: the registry and the licence lifecycle against a real server.

One server process for the module (fresh data directory, bootstrapped on first run).
The admin registers licence types and two departments (one Ed25519, one ECDSA
P-256), each with a client certificate issued for a key generated here. Every
credential the server returns is checked client-side: the envelope and QR signature
against the department certificate, the identifier's check character, and the
ledger proof against the checkpoint key.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.field_mask_pb2 import FieldMask

from ledger import ProofBundle
from ledger.note import Ed25519NoteVerifier
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.licence.v1 import licence_service_pb2 as pb
from licenceledger.licence.v1 import licence_service_pb2_grpc as pb_grpc
from licenceledger.record.v1 import record_pb2
from licenceledger.registry.v1 import registry_pb2
from licenceledger.registry.v1 import registry_service_pb2 as reg
from licenceledger.type.v1 import crypto_pb2
from service.region.index import reindex
from signer import dsse, identifiers, pki, qr
from tests.e2e import (
    COMPANY,
    DEPT_A,
    DEPT_B,
    FACE_FIELDS,
    FOOD,
    PERMIT,
    PERSON,
    Region,
    call,
    close_region,
    failure,
    fields,
    fill,
    issue_request,
    ledger_size,
    open_region,
    rid,
    run,
)


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    opened = open_region(tmp_path_factory, "licences")
    yield opened
    close_region(opened)


def check_credential(
    region: Region, credential: lpb.LicenceCredential, department: str
) -> lpb.Licence:
    """Everything a holder receives verifies client-side, offline."""
    cert = region.department_certs[department]
    ca = pki.load_certificate((region.server.data.root / "pki" / "region-ca.pem").read_bytes())
    pki.check_department_certificate(cert, ca, licence_type_code=FOOD, department_code=department)
    public = cert.public_key()
    assert isinstance(public, Ed25519PublicKey | ec.EllipticCurvePublicKey)
    keyid = pki.key_id_of(public)
    verified = dsse.verify_envelope(
        credential.envelope, {keyid: public}, payload_type=dsse.LICENCE_PAYLOAD_TYPE
    )
    licence = lpb.Licence.FromString(verified.payload)
    assert licence == credential.licence
    assert identifiers.LicenceId.parse(licence.licence_id).issuer_code == department
    claims = qr.verify_qr(credential.qr_payload, {bytes.fromhex(keyid)[:8]: public})
    assert claims.licence_id == licence.licence_id
    assert claims.credential_payload_digest.value == hashlib.sha256(verified.payload).digest()
    assert len(credential.qr_payload) <= qr.MAX_QR_PAYLOAD_BYTES
    # The proof: the entry is the record of exactly this envelope, under a signed checkpoint.
    verifier = Ed25519NoteVerifier.from_vkey(region.vkey)
    bundle = ProofBundle.from_text(credential.proof.tlog_proof, verifier)
    bundle.verify(credential.proof.entry)
    record = record_pb2.LedgerRecord.FromString(credential.proof.entry)
    assert record.licence_version_issued.envelope == credential.envelope
    assert record.licence_version_issued.qr_payload == credential.qr_payload
    assert credential.proof.leaf_index == claims.ledger_index
    return licence


def test_issue_returns_a_credential_that_verifies_offline(region: Region) -> None:
    for department, identity, algorithm in (
        (DEPT_A, region.dept_a, crypto_pb2.SIGNATURE_ALGORITHM_ED25519),
        (DEPT_B, region.dept_b, crypto_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256),
    ):
        reply = call(region, identity, "IssueLicence", issue_request(f"JY{department[-4:]}0001"))
        credential = reply.credential
        assert credential.signature_algorithm == algorithm
        licence = check_credential(region, credential, department)
        assert (licence.version, licence.status) == (1, lpb.LICENCE_STATUS_VALID)
        assert licence.issuer.department_code == department


def test_a_retry_returns_the_first_result_and_appends_nothing(region: Region) -> None:
    request = issue_request("JY-RETRY-1")
    first = call(region, region.dept_a, "IssueLicence", request)
    size = ledger_size(region)
    again = call(region, region.dept_a, "IssueLicence", request)
    assert ledger_size(region) == size
    assert again.credential.envelope == first.credential.envelope
    assert again.credential.qr_payload == first.credential.qr_payload
    assert again.credential.licence == first.credential.licence
    assert again.credential.proof.leaf_index == first.credential.proof.leaf_index
    # The same key for a different request is refused, and records nothing.
    changed = issue_request("JY-RETRY-2", request_id=request.request_id)
    code, reason, _ = failure(region, region.dept_a, "IssueLicence", changed)
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "IDEMPOTENCY_KEY_REUSED")
    # Concurrent retries of one request: one licence, one entry.
    burst = issue_request("JY-RETRY-3")

    async def together() -> list[Any]:
        async with region.server.channel(region.dept_a) as channel:
            stub = pb_grpc.LicenceServiceStub(channel)
            return list(await asyncio.gather(*(stub.IssueLicence(burst) for _ in range(8))))

    size = ledger_size(region)
    replies = run(together())
    assert len({r.credential.envelope for r in replies}) == 1
    assert ledger_size(region) == size + 1
    assert ledger_size(region) == size + 1


def test_registry_retry_is_idempotent_too(region: Region) -> None:
    request = reg.RegisterLicenceTypeRequest(
        request_id=rid(), licence_type_code="RETRY1", name="重试许可证", face_fields=FACE_FIELDS
    )
    first = call(region, region.admin, "RegisterLicenceType", request)
    size = ledger_size(region)
    again = call(region, region.admin, "RegisterLicenceType", request)
    assert again == first or again.licence_type == first.licence_type
    assert ledger_size(region) == size
    code, reason, _ = failure(
        region,
        region.admin,
        "RegisterLicenceType",
        reg.RegisterLicenceTypeRequest(
            request_id=rid(), licence_type_code="RETRY1", name="重试许可证", face_fields=FACE_FIELDS
        ),
    )
    assert (code, reason) == (grpc.StatusCode.ALREADY_EXISTS, "LICENCE_TYPE_ALREADY_REGISTERED")


@pytest.mark.parametrize(
    ("overrides", "code", "reason", "fields_"),
    [
        (
            {
                "holder": lpb.Holder(
                    name="某公司",
                    id_type=lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE,
                    id_number=COMPANY[:-1] + ("0" if COMPANY[-1] != "0" else "1"),
                )
            },
            grpc.StatusCode.INVALID_ARGUMENT,
            "UNIFIED_SOCIAL_CREDIT_CODE_INVALID",
            ["holder.id_number"],
        ),
        (
            {
                "holder": lpb.Holder(
                    name="张三",
                    id_type=lpb.HOLDER_ID_TYPE_RESIDENT_IDENTITY_NUMBER,
                    id_number="110105194912310021",
                )
            },
            grpc.StatusCode.INVALID_ARGUMENT,
            "RESIDENT_IDENTITY_NUMBER_INVALID",
            ["holder.id_number"],
        ),
        (
            {
                "face_fields": [
                    lpb.FaceField(name="residence", value="上海"),
                    lpb.FaceField(name="established_on", value="2020-02-30"),
                ]
            },
            grpc.StatusCode.INVALID_ARGUMENT,
            "FACE_FIELDS_INVALID",
            ["face_fields[1].value", "face_fields"],
        ),
        (
            {"licence_type_code": PERMIT},
            grpc.StatusCode.PERMISSION_DENIED,
            "LICENCE_TYPE_NOT_AUTHORISED",
            [],
        ),
        (
            {"request_id": ""},
            grpc.StatusCode.INVALID_ARGUMENT,
            "REQUEST_ID_MISSING",
            ["request_id"],
        ),
        ({"department_code": DEPT_B}, grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER", []),
    ],
    ids=[
        "bad-uscc",
        "bad-resident-id",
        "face-fields",
        "unauthorised-type",
        "no-request-id",
        "other-department",
    ],
)
def test_refused_issuance_appends_nothing(
    region: Region,
    overrides: dict[str, Any],
    code: grpc.StatusCode,
    reason: str,
    fields_: list[str],
) -> None:
    size = ledger_size(region)
    got = failure(
        region, region.dept_a, "IssueLicence", issue_request(f"JY-BAD-{reason}", **overrides)
    )
    assert got == (code, reason, fields_)
    assert ledger_size(region) == size


def test_the_same_licence_number_twice_is_already_exists(region: Region) -> None:
    call(region, region.dept_a, "IssueLicence", issue_request("JY-DUP-1"))
    size = ledger_size(region)
    got = failure(region, region.dept_b, "IssueLicence", issue_request("JY-DUP-1"))
    assert got[:2] == (grpc.StatusCode.ALREADY_EXISTS, "LICENCE_NUMBER_ALREADY_ISSUED")
    assert ledger_size(region) == size


def test_lifecycle_amend_suspend_reinstate_revoke(region: Region) -> None:
    issued = call(region, region.dept_a, "IssueLicence", issue_request("JY-LIFE-1")).credential
    v1 = issued.licence.licence_id
    amended = call(
        region,
        region.dept_a,
        "AmendLicence",
        pb.AmendLicenceRequest(
            request_id=rid(),
            licence_id=v1,
            reason="经营项目变更",
            amendment=pb.LicenceAmendment(face_fields=fields("预包装食品销售；热食类食品制售")),
            update_mask=FieldMask(paths=["face_fields"]),
            expected_version=1,
        ),
    ).credential
    v2 = check_credential(region, amended, DEPT_A)
    assert (v2.version, v2.predecessor_licence_id) == (2, v1)
    assert (
        identifiers.LicenceId.parse(v2.licence_id).lineage
        == identifiers.LicenceId.parse(v1).lineage
    )
    # The superseded version can no longer be changed; the other department never could.
    stale = pb.ChangeLicenceStatusRequest(
        request_id=rid(), licence_id=v1, status=lpb.LICENCE_STATUS_SUSPENDED, reason="检查"
    )
    assert failure(region, region.dept_a, "ChangeLicenceStatus", stale)[1] == "LICENCE_SUPERSEDED"
    for method, request in (
        (
            "ChangeLicenceStatus",
            pb.ChangeLicenceStatusRequest(
                request_id=rid(),
                licence_id=v2.licence_id,
                status=lpb.LICENCE_STATUS_REVOKED,
                reason="越权",
            ),
        ),
        (
            "AmendLicence",
            pb.AmendLicenceRequest(
                request_id=rid(),
                licence_id=v2.licence_id,
                reason="越权",
                amendment=pb.LicenceAmendment(licence_number="X"),
                update_mask=FieldMask(paths=["licence_number"]),
            ),
        ),
        ("GetLicence", pb.GetLicenceRequest(licence_id=v2.licence_id)),
    ):
        assert failure(region, region.dept_b, method, request)[:2] == (
            grpc.StatusCode.PERMISSION_DENIED,
            "NOT_OWNER",
        )

    def change(status: lpb.LicenceStatus.ValueType, reason: str) -> Any:
        return call(
            region,
            region.dept_a,
            "ChangeLicenceStatus",
            pb.ChangeLicenceStatusRequest(
                request_id=rid(), licence_id=v2.licence_id, status=status, reason=reason
            ),
        )

    suspended = change(lpb.LICENCE_STATUS_SUSPENDED, "涉嫌违法经营，暂扣")
    assert (suspended.licence.status, suspended.change.previous_status) == (
        lpb.LICENCE_STATUS_SUSPENDED,
        lpb.LICENCE_STATUS_VALID,
    )
    assert change(lpb.LICENCE_STATUS_VALID, "整改完成").licence.status == lpb.LICENCE_STATUS_VALID
    revoked = change(lpb.LICENCE_STATUS_REVOKED, "严重违法，吊销")
    bundle = ProofBundle.from_text(
        revoked.proof.tlog_proof, Ed25519NoteVerifier.from_vkey(region.vkey)
    )
    bundle.verify(revoked.proof.entry)
    size = ledger_size(region)
    final = pb.ChangeLicenceStatusRequest(
        request_id=rid(), licence_id=v2.licence_id, status=lpb.LICENCE_STATUS_VALID, reason="恢复"
    )
    assert (
        failure(region, region.dept_a, "ChangeLicenceStatus", final)[1]
        == "STATUS_TRANSITION_NOT_ALLOWED"
    )
    assert ledger_size(region) == size
    got = call(
        region,
        region.admin,
        "GetLicence",
        pb.GetLicenceRequest(licence_id=v1, include_credential=True),
    )
    assert got.current_licence_id == v2.licence_id
    assert [v.version for v in got.versions] == [1, 2]
    assert [c.status for c in got.status_history] == [
        lpb.LICENCE_STATUS_SUSPENDED,
        lpb.LICENCE_STATUS_VALID,
        lpb.LICENCE_STATUS_REVOKED,
    ]
    assert got.licence.status == lpb.LICENCE_STATUS_REVOKED
    assert got.credential.envelope == issued.envelope


def test_renewal_makes_a_new_valid_version(region: Region) -> None:
    issued = call(region, region.dept_b, "IssueLicence", issue_request("JY-RENEW-1")).credential
    renewed = call(
        region,
        region.dept_b,
        "RenewLicence",
        pb.RenewLicenceRequest(
            request_id=rid(),
            licence_id=issued.licence.licence_id,
            reason="到期换证",
            valid_until=issued.licence.issued_at.__class__(
                seconds=issued.licence.issued_at.seconds + 5 * 365 * 86400
            ),
        ),
    ).credential
    licence = check_credential(region, renewed, DEPT_B)
    assert (licence.version, licence.status) == (2, lpb.LICENCE_STATUS_VALID)
    stale = pb.RenewLicenceRequest(
        request_id=rid(), licence_id=issued.licence.licence_id, expected_version=1, reason="再次"
    )
    assert failure(region, region.dept_b, "RenewLicence", stale)[1] == "LICENCE_SUPERSEDED"


def test_listing_by_holder_and_issuer_pages_newest_first(region: Region) -> None:
    person = lpb.Holder(
        name="李四", id_type=lpb.HOLDER_ID_TYPE_RESIDENT_IDENTITY_NUMBER, id_number=PERSON
    )
    numbers = [f"JY-LIST-{i}" for i in range(5)]
    for number in numbers:
        call(region, region.dept_a, "IssueLicence", issue_request(number, holder=person))
    seen: list[str] = []
    token = ""
    while True:
        page = call(
            region,
            region.admin,
            "ListLicences",
            pb.ListLicencesRequest(holder_id_number=PERSON, page_size=2, page_token=token),
        )
        seen += [licence.licence_number for licence in page.licences]
        token = page.next_page_token
        if not token:
            break
    assert seen == numbers[::-1]
    mine = call(region, region.dept_a, "ListLicences", pb.ListLicencesRequest(page_size=1000))
    assert {licence.issuer.department_code for licence in mine.licences} == {DEPT_A}
    assert (
        failure(
            region, region.dept_a, "ListLicences", pb.ListLicencesRequest(department_code=DEPT_B)
        )[1]
        == "NOT_OWNER"
    )
    bad_token = pb.ListLicencesRequest(
        holder_id_number=COMPANY, page_token=token or "bm90LWEtdG9rZW4"
    )
    assert (
        failure(region, region.admin, "ListLicences", bad_token)[0]
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_registry_reads_and_key_rotation(region: Region) -> None:
    got = call(region, None, "GetDepartment", reg.GetDepartmentRequest(department_code=DEPT_A))
    assert got.department.authorized_licence_type_codes == [FOOD]
    listed = call(
        region, None, "ListDepartments", reg.ListDepartmentsRequest(licence_type_code=FOOD)
    )
    assert [d.department_code for d in listed.departments] == sorted([DEPT_A, DEPT_B])
    # Issued just before the rotation, so the region holds the department parsed.
    check_credential(
        region,
        call(region, region.dept_b, "IssueLicence", issue_request("JY-ROT-0")).credential,
        DEPT_B,
    )
    rotated = call(
        region,
        region.admin,
        "RotateDepartmentKey",
        reg.RotateDepartmentKeyRequest(request_id=rid(), department_code=DEPT_B),
    )
    statuses = [k.status for k in rotated.department.keys]
    assert statuses == [registry_pb2.KEY_STATUS_ROTATED, registry_pb2.KEY_STATUS_ACTIVE]
    region.department_certs[DEPT_B] = x509.load_der_x509_certificate(
        rotated.certificate.certificate
    )
    check_credential(
        region,
        call(region, region.dept_b, "IssueLicence", issue_request("JY-ROT-1")).credential,
        DEPT_B,
    )
    revoked = call(
        region,
        region.admin,
        "RevokeDepartmentKey",
        reg.RevokeDepartmentKeyRequest(
            request_id=rid(),
            department_code=DEPT_B,
            key_id=rotated.certificate.key_id,
            reason=registry_pb2.REVOCATION_REASON_KEY_COMPROMISE,
            comment="测试",
        ),
    )
    assert revoked.department.keys[-1].status == registry_pb2.KEY_STATUS_REVOKED
    got = failure(region, region.dept_b, "IssueLicence", issue_request("JY-ROT-2"))
    assert got[:2] == (grpc.StatusCode.FAILED_PRECONDITION, "DEPARTMENT_KEY_NOT_ACTIVE")
    assert (
        failure(
            region,
            region.dept_a,
            "RegisterLicenceType",
            reg.RegisterLicenceTypeRequest(request_id=rid()),
        )[0]
        == grpc.StatusCode.PERMISSION_DENIED
    )


@pytest.mark.parametrize(
    ("change", "reason", "fields_"),
    [
        ({"region_code": "320100"}, "FIELD_INVALID", ["region_code"]),
        ({"region_code": "31010"}, "REGION_CODE_INVALID", ["region_code"]),
        (
            {"department_code": DEPT_A[:-1] + "0"},
            "UNIFIED_SOCIAL_CREDIT_CODE_INVALID",
            ["department_code"],
        ),
        (
            {"authorized_licence_type_codes": ["NOPE"]},
            "FIELD_INVALID",
            ["authorized_licence_type_codes[0]"],
        ),
        ({"department_code": DEPT_A}, "DEPARTMENT_ALREADY_REGISTERED", []),
    ],
    ids=["other-province", "short-region", "bad-check-char", "unknown-type", "duplicate"],
)
def test_refused_registration_appends_nothing(
    region: Region, change: dict[str, Any], reason: str, fields_: list[str]
) -> None:
    request = reg.RegisterDepartmentRequest(
        request_id=rid(),
        department_code=identifiers.make_uscc("11310000MB0555555"),
        name="测试局",
        region_code="310115",
        authorized_licence_type_codes=[FOOD],
    )
    size = ledger_size(region)
    got = failure(region, region.admin, "RegisterDepartment", fill(request, change))
    assert got[1:] == (reason, fields_)
    assert ledger_size(region) == size


def test_rebuilt_indexes_equal_the_live_ones(region: Region) -> None:
    # Runs last in the module: it stops the server to take the ledger's writer lock.
    assert region.server.stop() == 0
    path = region.server.data.ledger_path
    report = reindex(path, check_only=True)
    assert report.differences == 0
    assert report.keys > 0
    # Damage the live index, then rebuild it from the ledger alone.
    from ledger import RocksDBStorage

    storage = RocksDBStorage(path)
    try:
        storage.replace_index(iter([(b"lic/bogus", b"x")]))
    finally:
        storage.close()
    damaged = reindex(path, check_only=True)
    assert damaged.differences == report.keys + 1
    assert reindex(path).rewritten
    assert reindex(path, check_only=True).differences == 0
