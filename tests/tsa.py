"""An RFC 3161 timestamp authority for tests: pyHanko's DummyTimeStamper, over HTTP.

The TSA's certificate is issued by the caller's CA with what RFC 3161 requires
(digitalSignature, and id-kp-timeStamping as the only, critical, extended key usage).
`serve_tsa` answers timestamp queries on a loopback port, as a real TSA would.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes as CaKey,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko_certvalidator.registry import SimpleCertificateStore


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def tsa_certificate(
    issuer_key: CaKey, issuer: x509.Certificate, key: rsa.RSAPrivateKey
) -> x509.Certificate:
    now = datetime.now(UTC)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.COMMON_NAME, "测试时间戳服务 TSA"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .add_extension(usage, critical=True)
        # RFC 3161 2.3: the only key purpose, and critical.
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )


def make_tsa(issuer_key: CaKey, issuer: x509.Certificate) -> DummyTimeStamper:
    """pyHanko's in-process TSA (RSA only), certified by `issuer`."""
    key = rsa.generate_private_key(65537, 2048)
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return DummyTimeStamper(
        _asn1(tsa_certificate(issuer_key, issuer, key)),
        asn1_keys.PrivateKeyInfo.load(pkcs8),
        certs_to_embed=SimpleCertificateStore.from_certs([_asn1(issuer)]),  # type: ignore[no-untyped-call]
    )


@contextmanager
def serve_tsa(tsa: DummyTimeStamper) -> Iterator[str]:
    """An RFC 3161 HTTP endpoint on loopback answering with `tsa`; yields its URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.headers["Content-Type"] != "application/timestamp-query":
                self.send_error(415)
                return
            query = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            reply = tsa.request_tsa_response(query).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: pytest shows stderr of failing tests

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/tsa"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
