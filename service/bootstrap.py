"""First run of a development region: everything a server needs, made once.

    DATA/
      pki/region-ca.pem     the region root (clients pin it to trust the server)
      pki/server.pem        TLS certificate for localhost, 127.0.0.1 and ::1
      pki/admin.pem         admin client certificate (mutual TLS)
      keys/*.key.pem        the matching private keys, encrypted PKCS#8 (0600)
      ledger/, checkpoint.vkey   see service.datadir

Later runs load what exists. Every private key goes through the key store's
encrypted files; decrypted keys live only in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from google.protobuf.timestamp_pb2 import Timestamp

from licenceledger.record.v1 import record_pb2
from service.datadir import DataDir, default_origin
from signer import pki
from signer.keystore import load_encrypted_pkcs8, write_encrypted_pkcs8

SERVER_HOSTNAMES = ("localhost",)
ADMIN_ID = "bootstrap-admin"


@dataclass(frozen=True)
class RegionFiles:
    """Where a data directory keeps its region's certificates and keys."""

    data: DataDir

    @property
    def pki_dir(self) -> Path:
        return self.data.root / "pki"

    @property
    def ca_cert(self) -> Path:
        return self.pki_dir / "region-ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.pki_dir / "server.pem"

    @property
    def admin_cert(self) -> Path:
        return self.pki_dir / "admin.pem"

    def key(self, name: str) -> Path:
        return self.data.keys_path / f"{name}.key.pem"


@dataclass(frozen=True)
class Region:
    """The loaded region: its CA and the server's TLS identity (keys decrypted in memory)."""

    code: str
    ca: pki.RegionCA
    server_certificate_pem: bytes
    server_key_pem: bytes

    @property
    def ca_pem(self) -> bytes:
        return pki.certificate_pem(self.ca.certificate)


def unencrypted_pem(key: pki.SigningKey) -> bytes:
    # Only ever handed to gRPC in memory; never written anywhere.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _records(
    ca: pki.RegionCA, vkey: str, issued: list[tuple[str, str, pki.IssuedCertificate]]
) -> list[bytes]:
    now = Timestamp()
    now.GetCurrentTime()
    root = record_pb2.LedgerRecord(
        recorded_at=now,
        actor="system",
        region_bootstrapped=record_pb2.RegionBootstrapped(
            region_code=ca.region_code,
            region_name=ca.name,
            root_certificate_der=ca.certificate.public_bytes(serialization.Encoding.DER),
            checkpoint_verifier_key=vkey,
        ),
    )
    certificates = [
        record_pb2.LedgerRecord(
            recorded_at=now,
            actor="system",
            certificate_issued=record_pb2.CertificateIssued(
                purpose=purpose,
                subject_id=subject,
                certificate_der=cert.certificate.public_bytes(serialization.Encoding.DER),
            ),
        )
        for purpose, subject, cert in issued
    ]
    return [r.SerializeToString() for r in (root, *certificates)]


async def bootstrap(data: DataDir, region_code: str, region_name: str) -> list[str]:
    """Create the development region in `data`; returns what was made, for people.

    Its registrations become the ledger's first entries (after any already there).
    """
    files = RegionFiles(data)
    passphrase = data.passphrase()
    ca = pki.create_region_ca(region_code, region_name)
    server = pki.issue_server_certificate(ca, SERVER_HOSTNAMES)
    admin = pki.issue_client_certificate(ca, pki.Role.ADMIN, ADMIN_ID, "Bootstrap administrator")
    if server.key is None or admin.key is None:
        raise pki.PkiError("the PKI did not generate the keys it was asked for")
    files.pki_dir.mkdir(parents=True, exist_ok=True)
    for path, key in (
        (files.key("region-ca"), ca.private_key),
        (files.key("server"), server.key),
        (files.key("admin"), admin.key),
    ):
        write_encrypted_pkcs8(path, key, passphrase)
    files.server_cert.write_bytes(server.certificate_chain_pem())
    files.admin_cert.write_bytes(admin.certificate_chain_pem())
    ledger = data.open() if data.exists() else data.create(default_origin(region_code))
    records = _records(
        ca,
        ledger.verifier.vkey(),
        [("server", SERVER_HOSTNAMES[0], server), ("admin", ADMIN_ID, admin)],
    )
    try:
        await ledger.append_many(records)
    finally:
        await ledger.aclose()
    # Written last: its presence is what marks the bootstrap as complete.
    files.ca_cert.write_bytes(pki.certificate_pem(ca.certificate))
    return [
        f"region root CA    {files.ca_cert}",
        f"server TLS cert   {files.server_cert}",
        f"admin client cert {files.admin_cert} (key {files.key('admin')}, encrypted)",
        f"ledger            {data.ledger_path} (checkpoint key {data.vkey_path})",
    ]


def is_bootstrapped(data: DataDir) -> bool:
    return RegionFiles(data).ca_cert.exists() and data.exists()


def load_region(data: DataDir) -> Region:
    files = RegionFiles(data)
    passphrase = data.passphrase()
    ca_cert = pki.load_certificate(files.ca_cert.read_bytes())
    ca = pki.RegionCA.from_parts(ca_cert, load_encrypted_pkcs8(files.key("region-ca"), passphrase))
    server_key = load_encrypted_pkcs8(files.key("server"), passphrase)
    return Region(
        code=ca.region_code,
        ca=ca,
        server_certificate_pem=files.server_cert.read_bytes(),
        server_key_pem=unencrypted_pem(server_key),
    )


def client_credentials_pem(data: DataDir, name: str) -> tuple[bytes, bytes]:
    """(key PEM, certificate chain PEM) of a client identity kept in `data`, for tools."""
    files = RegionFiles(data)
    key = load_encrypted_pkcs8(files.key(name), data.passphrase())
    return unencrypted_pem(key), (files.pki_dir / f"{name}.pem").read_bytes()
