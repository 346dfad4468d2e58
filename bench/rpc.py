"""Unary round trips over TLS: a ledger read RPC beside a bare grpc.aio echo server.

Both run in this process with the client on the same event loop and the same TLS
identity, so the ratio isolates what the service adds to a round trip (the guard
interceptor, authorization, the servicer and protobuf work) from gRPC's own cost.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from licenceledger.ledger.v1 import ledger_service_pb2 as pb
from licenceledger.ledger.v1 import ledger_service_pb2_grpc as pb_grpc
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.licence.v1 import licence_service_pb2 as lpb_service
from licenceledger.licence.v1 import licence_service_pb2_grpc as lpb_grpc
from licenceledger.registry.v1 import registry_pb2
from licenceledger.registry.v1 import registry_service_pb2 as reg
from licenceledger.registry.v1 import registry_service_pb2_grpc as reg_grpc
from licenceledger.type.v1 import crypto_pb2
from service.bootstrap import client_credentials_pem, unencrypted_pem
from service.config import ServerSettings
from service.datadir import DataDir
from service.server import RegionServer, prepare
from signer.identifiers import make_uscc

IN_FLIGHT = 64
BENCH_DEPARTMENT = make_uscc("11310000MB0000000")
BENCH_HOLDER = make_uscc("91310000MA1K00001")
_ECHO = "/bench.Echo/Echo"


async def _round_trips_per_s(
    call: Callable[[], Awaitable[Any]],
    seconds: float,
    *,
    in_flight: int = IN_FLIGHT,
    warm_up: int = 200,
) -> float:
    for _ in range(warm_up):  # connections and code paths
        await call()
    count = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await call()
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return count / (time.perf_counter() - start)


async def _echo_server(
    key_pem: bytes, cert_pem: bytes, ca_pem: bytes, *, mutual: bool = False
) -> tuple[grpc.aio.Server, int]:
    """A bare grpc.aio echo server with the region's TLS identity: the gRPC baseline."""

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    server = grpc.aio.server()
    handler: Any = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler}),)
    )
    creds = grpc.ssl_server_credentials(
        [(key_pem, cert_pem)],
        root_certificates=ca_pem if mutual else None,
        require_client_auth=mutual,
    )
    port = server.add_secure_port("127.0.0.1:0", creds)
    await server.start()
    return server, port


async def _echo_per_s(key_pem: bytes, cert_pem: bytes, ca_pem: bytes, seconds: float) -> float:
    server, port = await _echo_server(key_pem, cert_pem, ca_pem)
    try:
        creds = grpc.ssl_channel_credentials(ca_pem)
        async with grpc.aio.secure_channel(f"localhost:{port}", creds) as channel:
            stub: Any = channel.unary_unary(_ECHO)
            return await _round_trips_per_s(lambda: stub(b"x" * 64), seconds)
    finally:
        await server.stop(0)


async def measure_rpc(scratch: Path, seconds: float) -> tuple[float, float]:
    """(GetCheckpoint round trips/s, bare echo round trips/s), 64 in flight each."""
    settings = ServerSettings(data_dir=scratch, port=0, mtls_port=0, log_level="WARNING")
    region, ledger, keys = await prepare(settings, lambda line: None)
    server = RegionServer(settings, region, ledger, keys)
    await server.start()
    try:
        creds = grpc.ssl_channel_credentials(region.ca_pem)
        async with grpc.aio.secure_channel(f"localhost:{server.port}", creds) as channel:
            stub: Any = pb_grpc.LedgerServiceStub(channel)  # aio: the stubs type it sync
            request = pb.GetCheckpointRequest()
            ledger_rate = await _round_trips_per_s(lambda: stub.GetCheckpoint(request), seconds)
    finally:
        await server.stop()
    echo_rate = await _echo_per_s(
        region.server_key_pem, region.server_certificate_pem, region.ca_pem, seconds
    )
    return ledger_rate, echo_rate


_TYPE = "BENCH"


async def _setup_department(mtls_port: int, data: DataDir, ca_pem: bytes) -> tuple[bytes, bytes]:
    """Register a licence type and a department; the department's mTLS identity."""
    admin = client_credentials_pem(data, "admin")
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    creds = grpc.ssl_channel_credentials(ca_pem, *admin)
    async with grpc.aio.secure_channel(f"localhost:{mtls_port}", creds) as channel:
        registry: Any = reg_grpc.RegistryServiceStub(channel)
        await registry.RegisterLicenceType(
            reg.RegisterLicenceTypeRequest(
                request_id="bench-type",
                licence_type_code=_TYPE,
                name="基准测试许可证",
                face_fields=[
                    registry_pb2.FaceFieldSpec(
                        name=f"field_{i}",
                        label_zh=f"字段{i}",
                        required=True,
                        format=registry_pb2.FACE_FIELD_FORMAT_STRING,
                    )
                    for i in range(10)
                ],
            )
        )
        reply = await registry.RegisterDepartment(
            reg.RegisterDepartmentRequest(
                request_id="bench-department",
                department_code=BENCH_DEPARTMENT,
                name="基准测试局",
                region_code="310000",
                authorized_licence_type_codes=[_TYPE],
                client_key=crypto_pb2.CertificateRequest(public_key=spki),
            )
        )
    cert = x509.load_der_x509_certificate(reply.client_certificate.certificate)
    return unencrypted_pem(key), cert.public_bytes(serialization.Encoding.PEM)


def _issue_request(n: int) -> lpb_service.IssueLicenceRequest:
    return lpb_service.IssueLicenceRequest(
        request_id=f"bench-{n}",
        licence_type_code=_TYPE,
        licence_number=f"BENCH-{n:08d}",
        holder=lpb.Holder(
            name="上海基准测试有限公司",
            id_type=lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE,
            id_number=BENCH_HOLDER,
        ),
        face_fields=[lpb.FaceField(name=f"field_{i}", value=f"第{i}项内容") for i in range(10)],
    )


def _client_process(
    kind: str, port: int, ca_pem: bytes, identity: tuple[bytes, bytes], seconds: float
) -> float:
    """Runs in a separate process, as real clients do: calls/s with 64 in flight."""

    async def go() -> float:
        creds = grpc.ssl_channel_credentials(ca_pem, *identity)
        async with grpc.aio.secure_channel(f"localhost:{port}", creds) as channel:
            if kind == "echo":
                stub: Any = channel.unary_unary(_ECHO)
                return await _round_trips_per_s(lambda: stub(b"x" * 64), seconds)
            licences: Any = lpb_grpc.LicenceServiceStub(channel)
            counter = iter(range(1 << 62))
            return await _round_trips_per_s(
                lambda: licences.IssueLicence(_issue_request(next(counter))), seconds
            )

    return asyncio.run(go())


async def _rate_from_other_process(
    kind: str, port: int, ca_pem: bytes, identity: tuple[bytes, bytes], seconds: float
) -> float:
    context = multiprocessing.get_context("spawn")  # no forked gRPC or RocksDB state
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(_client_process, kind, port, ca_pem, identity, seconds)
        return await asyncio.wrap_future(future)


async def measure_issuance(scratch: Path, seconds: float) -> tuple[float, float, int]:
    """(IssueLicence calls/s, bare mTLS echo calls/s, entries written), 64 in flight each.

    The clients run in another process (the second core), as real clients would, so
    the server's event loop is measured on its own in both figures. The server runs
    as `serve` does, with its front end and its signing worker, which is waited for.
    """
    settings = ServerSettings(data_dir=scratch, port=0, mtls_port=0, log_level="WARNING")
    region, ledger, keys = await prepare(settings, lambda line: None)
    server = RegionServer(settings, region, ledger, keys)
    await server.start()
    try:
        identity = await _setup_department(server.mtls_port, DataDir(scratch), region.ca_pem)
        worker = server.signing_worker
        deadline = time.monotonic() + 30
        while worker is not None and not worker.available:
            if time.monotonic() > deadline:
                raise RuntimeError("the signing worker did not start within 30 s")
            await asyncio.sleep(0.05)
        before = ledger.size
        rate = await _rate_from_other_process(
            "issue", server.mtls_port, region.ca_pem, identity, seconds
        )
        written = ledger.size - before
    finally:
        await server.stop()
    echo, port = await _echo_server(
        region.server_key_pem, region.server_certificate_pem, region.ca_pem, mutual=True
    )
    try:
        echo_rate = await _rate_from_other_process("echo", port, region.ca_pem, identity, seconds)
    finally:
        await echo.stop(0)
    return rate, echo_rate, written
