"""Unary round trips over TLS: a ledger read RPC beside a bare grpc.aio echo server.

Both run in this process with the client on the same event loop and the same TLS
identity, so the ratio isolates what the service adds to a round trip (the guard
interceptor, authorization, the servicer and protobuf work) from gRPC's own cost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from licenceledger.ledger.v1 import ledger_service_pb2 as pb
from licenceledger.ledger.v1 import ledger_service_pb2_grpc as pb_grpc
from service.config import ServerSettings
from service.server import RegionServer, prepare

IN_FLIGHT = 64
_ECHO = "/bench.Echo/Echo"


async def _round_trips_per_s(call: Callable[[], Awaitable[Any]], seconds: float) -> float:
    for _ in range(200):  # warm up connections and code paths
        await call()
    count = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await call()
            count += 1

    start = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(IN_FLIGHT)))
    return count / (time.perf_counter() - start)


async def _echo_per_s(key_pem: bytes, cert_pem: bytes, ca_pem: bytes, seconds: float) -> float:
    async def echo(request: bytes, context: Any) -> bytes:
        return request

    server = grpc.aio.server()
    handler: Any = grpc.unary_unary_rpc_method_handler(echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Echo", {"Echo": handler}),)
    )
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials([(key_pem, cert_pem)]))
    await server.start()
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
