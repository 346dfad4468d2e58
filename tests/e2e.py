"""Shared parts of the end-to-end tests: a region with a catalogue and two departments.

`open_region` starts a real server process on a fresh data directory, registers two
licence types and two departments (one Ed25519, one ECDSA P-256), each with a client
certificate issued for a key generated here; `call` and `failure` talk to it over
mutual TLS (or plain TLS without an identity).
"""

from __future__ import annotations

import asyncio
import io
import os
import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from licenceledger.ledger.v1 import ledger_service_pb2 as ledger_pb
from licenceledger.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.licence.v1 import licence_service_pb2 as pb
from licenceledger.licence.v1 import licence_service_pb2_grpc as pb_grpc
from licenceledger.registry.v1 import registry_pb2
from licenceledger.registry.v1 import registry_service_pb2 as reg
from licenceledger.registry.v1 import registry_service_pb2_grpc as reg_grpc
from licenceledger.seal.v1 import seal_service_pb2 as sp
from licenceledger.seal.v1 import seal_service_pb2_grpc as seal_grpc
from licenceledger.type.v1 import crypto_pb2
from licenceledger.verification.v1 import verification_service_pb2_grpc as verify_grpc
from service.bootstrap import client_credentials_pem, unencrypted_pem
from service.datadir import DataDir
from signer import identifiers, sealimage
from signer.keystore import PASSPHRASE_ENV
from tests.conftest import TEST_PASSPHRASE
from tests.serverproc import Server, free_ports

FOOD = "SPJY"  # 食品经营许可证
PERMIT = "JZXK"  # a type no department here is authorised for
DEPT_A = identifiers.make_uscc("11310000MB01234" + "56")
DEPT_B = identifiers.make_uscc("11310000MB09876" + "54")
COMPANY = identifiers.make_uscc("91310000MA1K00001")
PERSON = identifiers.resident_id_check_char("11010519491231002") and "11010519491231002X"

FACE_FIELDS = [
    registry_pb2.FaceFieldSpec(
        name="business_scope",
        label_zh="经营项目",
        required=True,
        max_length=200,
        format=registry_pb2.FACE_FIELD_FORMAT_STRING,
    ),
    registry_pb2.FaceFieldSpec(
        name="residence",
        label_zh="住所",
        required=True,
        format=registry_pb2.FACE_FIELD_FORMAT_STRING,
    ),
    registry_pb2.FaceFieldSpec(
        name="established_on",
        label_zh="成立日期",
        required=False,
        format=registry_pb2.FACE_FIELD_FORMAT_DATE,
    ),
]


def fields(scope: str = "预包装食品销售") -> list[lpb.FaceField]:
    return [
        lpb.FaceField(name="business_scope", value=scope),
        lpb.FaceField(name="residence", value="上海市黄浦区中山东一路1号"),
        lpb.FaceField(name="established_on", value="2020-05-01"),
    ]


def rid() -> str:
    return str(uuid.uuid4())


@dataclass
class Region:
    server: Server
    admin: tuple[bytes, bytes]
    dept_a: tuple[bytes, bytes]
    dept_b: tuple[bytes, bytes]
    department_certs: dict[str, x509.Certificate]
    vkey: str

    def stub(self, identity: tuple[bytes, bytes] | None) -> Any:
        return self.server.channel(identity)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _call(
    identity: tuple[bytes, bytes] | None, server: Server, method: str, request: Any
) -> Any:
    async with server.channel(identity) as channel:
        stubs = (
            pb_grpc.LicenceServiceStub(channel),
            reg_grpc.RegistryServiceStub(channel),
            seal_grpc.SealServiceStub(channel),
            verify_grpc.VerificationServiceStub(channel),
        )
        service = next(s for s in stubs if hasattr(s, method))
        return await getattr(service, method)(request, timeout=30)


def call(region: Region, identity: tuple[bytes, bytes] | None, method: str, request: Any) -> Any:
    return run(_call(identity, region.server, method, request))


def failure(
    region: Region, identity: tuple[bytes, bytes] | None, method: str, request: Any
) -> tuple[grpc.StatusCode, str, list[str]]:
    """Code, ErrorInfo reason and BadRequest fields of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        call(region, identity, method, request)
    error = caught.value
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    reason, fields_ = "", []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields_ = [v.field for v in bad.field_violations]
    return error.code(), reason, fields_


def ledger_size(region: Region) -> int:
    async def go() -> int:
        async with region.server.channel() as channel:
            head = await ledger_grpc.LedgerServiceStub(channel).GetCheckpoint(
                ledger_pb.GetCheckpointRequest()
            )
            return int(head.checkpoint.tree_size)

    return int(run(go()))


def client_key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, spki


def open_region(tmp_path_factory: pytest.TempPathFactory, name: str, *server_args: str) -> Region:
    """A started server with the catalogue and both departments; the caller stops it."""
    os.environ[PASSPHRASE_ENV] = TEST_PASSPHRASE
    data = DataDir(tmp_path_factory.mktemp(name))
    port, mtls_port = free_ports(2)
    server = Server(data, port, mtls_port, extra_args=server_args)
    server.start()
    try:
        return _set_up_region(server, data)
    except BaseException:
        server.stop()  # a failed set-up leaves no server behind
        raise


def _set_up_region(server: Server, data: DataDir) -> Region:
    admin = client_credentials_pem(data, "admin")
    partial = Region(server, admin, admin, admin, {}, data.vkey_path.read_text().strip())
    for code, name in ((FOOD, "食品经营许可证"), (PERMIT, "建筑施工许可证")):
        call(
            partial,
            admin,
            "RegisterLicenceType",
            reg.RegisterLicenceTypeRequest(
                request_id=rid(), licence_type_code=code, name=name, face_fields=FACE_FIELDS
            ),
        )
    identities = []
    for code, algorithm in (
        (DEPT_A, crypto_pb2.SIGNATURE_ALGORITHM_ED25519),
        (DEPT_B, crypto_pb2.SIGNATURE_ALGORITHM_ECDSA_P256_SHA256),
    ):
        key, spki = client_key()
        reply = call(
            partial,
            admin,
            "RegisterDepartment",
            reg.RegisterDepartmentRequest(
                request_id=rid(),
                department_code=code,
                name=f"上海市市场监督管理局{code[-2:]}",
                region_code="310101",
                authorized_licence_type_codes=[FOOD],
                client_key=crypto_pb2.CertificateRequest(public_key=spki),
                issuing_key_algorithm=algorithm,
            ),
        )
        cert = x509.load_der_x509_certificate(reply.client_certificate.certificate)
        identities.append((unencrypted_pem(key), cert.public_bytes(serialization.Encoding.PEM)))
        issuing = reply.department.keys[0].certificate
        partial.department_certs[code] = x509.load_der_x509_certificate(issuing.certificate)
        assert issuing.algorithm == algorithm
    partial.dept_a, partial.dept_b = identities
    return partial


def close_region(region: Region) -> None:
    server = region.server
    if server.process is not None and server.process.poll() is None:
        server.stop()


def issue_request(number: str, **overrides: Any) -> pb.IssueLicenceRequest:
    request = pb.IssueLicenceRequest(
        request_id=rid(),
        licence_type_code=FOOD,
        licence_number=number,
        holder=lpb.Holder(
            name="上海示例餐饮有限公司",
            id_type=lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE,
            id_number=COMPANY,
        ),
        face_fields=fields(),
    )
    return fill(request, overrides)


M = TypeVar("M", bound=Message)


def fill(message: M, changes: dict[str, Any]) -> M:
    """`message` with fields replaced: lists, sub-messages and scalars alike."""
    for name, value in changes.items():
        if isinstance(value, list):
            del getattr(message, name)[:]
            getattr(message, name).extend(value)
        elif isinstance(value, Message):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    return message


YEAR = 365 * 24 * 3600


def later(seconds: int) -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    ts.seconds += seconds
    return ts


def plain_pdf(pages: int = 2, *, encrypt: str | None = None) -> bytes:
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, invariant=True, encrypt=encrypt)
    for number in range(pages):
        page.drawString(72, 760, f"Contract page {number + 1}")
        page.showPage()
    page.save()
    return out.getvalue()


def register_seal(region: Region, owner: str, seal_type: int, **extra: Any) -> Any:
    request = sp.RegisterSealRequest(
        request_id=rid(),
        owner_department_code=owner,
        name="上海市市场监督管理局证照专用章",
        seal_type=seal_type,  # type: ignore[arg-type]
        image_png=sealimage.make_dev_seal_png("上海市市场监督管理局"),
        valid_until=later(YEAR),
    )
    return call(region, region.admin, "RegisterSeal", fill(request, extra))
