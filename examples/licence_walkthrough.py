"""A region admin and a department, end to end, against `make run`'s server on ./data.

    python examples/licence_walkthrough.py [DATA_DIR]

The admin registers a licence type and a department (which gets a client certificate
for a key made here) and two seals for it (a licence-issuing seal and a contract
seal, with development seal images); the department issues a licence with its
printable PDF, suspends and reinstates it, and seals a contract; the credential is
then checked offline (envelope signature, QR code and ledger proof) and, by anyone
on the public port, with the verification service: credential, QR code and both
PDFs, each to a report. The PDFs are written to the current directory. Run it again
and it issues another licence (request ids and numbers are fresh).
"""

from __future__ import annotations

import io
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.timestamp_pb2 import Timestamp
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from ledger import ProofBundle
from ledger.note import Ed25519NoteVerifier
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.licence.v1 import licence_service_pb2 as lic
from licenceledger.licence.v1 import licence_service_pb2_grpc as lic_rpc
from licenceledger.registry.v1 import registry_pb2
from licenceledger.registry.v1 import registry_service_pb2 as reg
from licenceledger.registry.v1 import registry_service_pb2_grpc as reg_rpc
from licenceledger.seal.v1 import seal_pb2
from licenceledger.seal.v1 import seal_service_pb2 as seal
from licenceledger.seal.v1 import seal_service_pb2_grpc as seal_rpc
from licenceledger.type.v1 import crypto_pb2
from licenceledger.verification.v1 import report_pb2 as rp
from licenceledger.verification.v1 import verification_service_pb2 as ver
from licenceledger.verification.v1 import verification_service_pb2_grpc as ver_rpc
from service.bootstrap import client_credentials_pem, unencrypted_pem
from service.datadir import DataDir
from signer import dsse, identifiers, pki, qr, sealimage
from verifier.render import render_report

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "data")
CA_PEM = (DATA / "pki" / "region-ca.pem").read_bytes()
MTLS = "localhost:50052"  # departments and admins
PUBLIC = "localhost:50051"  # everyone: verification and ledger reads
FOOD = "SPJY"
# A new department each run: an 18-character code with its GB 32100 check character.
DEPARTMENT = identifiers.make_uscc(f"11310000MB{uuid.uuid4().int % 10**7:07d}")


def channel(key_pem: bytes, cert_pem: bytes) -> grpc.Channel:
    return grpc.secure_channel(MTLS, grpc.ssl_channel_credentials(CA_PEM, key_pem, cert_pem))


# --- the admin: catalogue and department ---------------------------------------------
admin = client_credentials_pem(DataDir(DATA), "admin")
with channel(*admin) as ch:
    registry = reg_rpc.RegistryServiceStub(ch)
    try:
        registry.GetLicenceType(reg.GetLicenceTypeRequest(licence_type_code=FOOD))
    except grpc.RpcError:
        registry.RegisterLicenceType(
            reg.RegisterLicenceTypeRequest(
                request_id=str(uuid.uuid4()),
                licence_type_code=FOOD,
                name="食品经营许可证",
                name_en="Food Business Licence",
                face_fields=[
                    registry_pb2.FaceFieldSpec(
                        name="business_scope",
                        label_zh="经营项目",
                        required=True,
                        format=registry_pb2.FACE_FIELD_FORMAT_STRING,
                        max_length=200,
                    ),
                    registry_pb2.FaceFieldSpec(
                        name="residence",
                        label_zh="住所",
                        required=True,
                        format=registry_pb2.FACE_FIELD_FORMAT_STRING,
                    ),
                ],
            )
        )
    # The department's TLS key stays here; only its public key goes to the region CA.
    tls_key = ec.generate_private_key(ec.SECP256R1())
    spki = tls_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    registered = registry.RegisterDepartment(
        reg.RegisterDepartmentRequest(
            request_id=str(uuid.uuid4()),  # a retry with the same id returns this same result
            department_code=DEPARTMENT,
            name="上海市黄浦区市场监督管理局",
            region_code="310101",
            authorized_licence_type_codes=[FOOD],
            client_key=crypto_pb2.CertificateRequest(public_key=spki),
        )
    )
    print("registered department", DEPARTMENT, "at ledger index", registered.proof.leaf_index)

    # Its seals: the image is a development seal drawn here; real seals use the image
    # of the physical seal. The region's key store makes each seal's key.
    one_year = Timestamp()
    one_year.FromDatetime(datetime.now(UTC) + timedelta(days=365))
    seals = seal_rpc.SealServiceStub(ch)
    image = sealimage.make_dev_seal_png("上海市黄浦区市场监督管理局")
    for seal_type, name, extra in (
        (
            seal_pb2.SEAL_TYPE_LICENCE_ISSUING,
            "证照专用章",
            {"permitted_licence_type_codes": [FOOD]},
        ),
        (seal_pb2.SEAL_TYPE_CONTRACT, "合同专用章", {"permitted_purposes": ["contract"]}),
    ):
        registered_seal = seals.RegisterSeal(
            seal.RegisterSealRequest(
                request_id=str(uuid.uuid4()),
                owner_department_code=DEPARTMENT,
                name=f"上海市黄浦区市场监督管理局{name}",
                seal_type=seal_type,
                image_png=image,
                valid_until=one_year,
                **extra,  # type: ignore[arg-type]
            )
        ).seal
        print("registered seal", registered_seal.seal_id, registered_seal.name)
    contract_seal_id = registered_seal.seal_id

department_cert = x509.load_der_x509_certificate(registered.client_certificate.certificate)
department_identity = (
    unencrypted_pem(tls_key),
    department_cert.public_bytes(serialization.Encoding.PEM),
)

# --- the department: issue, suspend, reinstate -----------------------------------------
with channel(*department_identity) as ch:
    licences = lic_rpc.LicenceServiceStub(ch)
    issued = licences.IssueLicence(
        lic.IssueLicenceRequest(
            request_id=str(uuid.uuid4()),
            licence_type_code=FOOD,
            licence_number=f"JY{uuid.uuid4().int % 10**14:014d}",
            holder=lpb.Holder(
                name="上海示例餐饮有限公司",
                id_type=lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE,
                id_number=identifiers.make_uscc("91310000MA1K00001"),
            ),
            face_fields=[
                lpb.FaceField(name="business_scope", value="预包装食品销售；热食类食品制售"),
                lpb.FaceField(name="residence", value="上海市黄浦区中山东一路1号"),
            ],
            want_pdf=True,  # the printable licence, sealed with the licence-issuing seal
        )
    ).credential
    licence_id = issued.licence.licence_id
    print("issued", licence_id, "at ledger index", issued.proof.leaf_index)
    pdf_path = Path(f"licence-{issued.licence.licence_number}.pdf")
    pdf_path.write_bytes(issued.pdf)
    print(f"wrote {pdf_path} ({len(issued.pdf)} bytes, sha256 {issued.pdf_digest.value.hex()})")
    for status, reason in (
        (lpb.LICENCE_STATUS_SUSPENDED, "涉嫌违法经营，暂扣"),
        (lpb.LICENCE_STATUS_VALID, "整改完成，恢复"),
    ):
        changed = licences.ChangeLicenceStatus(
            lic.ChangeLicenceStatusRequest(
                request_id=str(uuid.uuid4()), licence_id=licence_id, status=status, reason=reason
            )
        )
        print("status", lpb.LicenceStatus.Name(changed.licence.status), "-", reason)

    # Seal any PDF: here a one-page contract made on the spot, sealed bottom right.
    contract = io.BytesIO()
    page = canvas.Canvas(contract, pagesize=A4)
    page.drawString(72, 760, "Contract No. 2026-001 (demo)")
    page.save()
    sealed = seal_rpc.SealServiceStub(ch).SealDocument(
        seal.SealDocumentRequest(
            request_id=str(uuid.uuid4()),
            seal_id=contract_seal_id,
            pdf=contract.getvalue(),
            placement=seal_pb2.SealPlacement(page=1, x=400, y=80, width=119, height=119),
            purpose="contract",
            signature_reason="同意",
            signature_location="上海",
        )
    )
    Path("contract-sealed.pdf").write_bytes(sealed.sealed_pdf)
    print("sealed contract-sealed.pdf at ledger index", sealed.proof.leaf_index)

# --- anyone, offline: the credential verifies with the department certificate ----------
issuing = x509.load_der_x509_certificate(registered.department.keys[-1].certificate.certificate)
pki.check_department_certificate(
    issuing, pki.load_certificate(CA_PEM), licence_type_code=FOOD, department_code=DEPARTMENT
)
public = issuing.public_key()
if not isinstance(public, Ed25519PublicKey | ec.EllipticCurvePublicKey):
    sys.exit("the department key is neither Ed25519 nor P-256")
keyid = pki.key_id_of(public)
dsse.verify_envelope(issued.envelope, {keyid: public}, payload_type=dsse.LICENCE_PAYLOAD_TYPE)
claims = qr.verify_qr(issued.qr_payload, {bytes.fromhex(keyid)[:8]: public})
verifier = Ed25519NoteVerifier.from_vkey((DATA / "checkpoint.vkey").read_text().strip())
ProofBundle.from_text(issued.proof.tlog_proof, verifier).verify(issued.proof.entry)
print(f"verified offline: envelope, QR code ({len(issued.qr_payload)} bytes) and ledger proof")
print("QR payload:", issued.qr_payload.decode()[:60], "...")

# --- anyone, online: the verification service gives a reasoned report --------------------
with grpc.secure_channel(PUBLIC, grpc.ssl_channel_credentials(CA_PEM)) as public_channel:
    verification = ver_rpc.VerificationServiceStub(public_channel)
    reports = {
        "credential": verification.VerifyCredential(
            ver.VerifyCredentialRequest(envelope=issued.envelope)
        ).report,
        "QR code": verification.VerifyQrCode(
            ver.VerifyQrCodeRequest(payload=issued.qr_payload)
        ).report,
        pdf_path.name: verification.VerifyPdf(ver.VerifyPdfRequest(pdf=issued.pdf)).report,
        "contract-sealed.pdf": verification.VerifyPdf(
            ver.VerifyPdfRequest(pdf=sealed.sealed_pdf)
        ).report,
    }
for what, report in reports.items():
    indication = rp.Indication.Name(report.indication).removeprefix("INDICATION_")
    print(f"{what}: {indication} {report.reason_code}".rstrip())
print(render_report(reports[pdf_path.name], language="en"))
