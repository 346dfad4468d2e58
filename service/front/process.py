"""A front-end process: `python -m service.front.process PARENT_PID` (see `service.front`).

Its stdin and stdout are the frames to and from the region process; logs go to stderr.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import sys
from collections import defaultdict
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

# The region's services, for reflection: their descriptors must be in this process's pool.
from licenceledger.federation.v1 import federation_service_pb2  # noqa: F401
from licenceledger.ledger.v1 import ledger_service_pb2  # noqa: F401
from licenceledger.licence.v1 import licence_service_pb2  # noqa: F401
from licenceledger.registry.v1 import registry_service_pb2  # noqa: F401
from licenceledger.seal.v1 import seal_service_pb2  # noqa: F401
from licenceledger.verification.v1 import verification_service_pb2  # noqa: F401
from service.authz import RegionAuthorizer
from service.event_loop import run_event_loop
from service.frames import FrameReader, read_frame
from service.front import protocol
from service.front.protocol import FrontEndConfig, Message, Outbox
from service.guard import GuardedServer
from service.lifeline import die_with_parent
from signer import pki

log = logging.getLogger("licence_ledger.front")

_CODES = {code.value[0]: code for code in grpc.StatusCode}


class _Forwarder:
    """Each call's handler: forward it to the region process, relay its answer."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._ids = itertools.count()
        # Calls awaiting the region: a future for a unary reply, a queue for a stream.
        self._calls: dict[int, asyncio.Future[Message] | asyncio.Queue[Message]] = {}

    def received(self, message: Message) -> None:
        waiting = self._calls.get(message[1])
        if waiting is None:
            return  # its client went away: the region was told, this crossed on the way
        if isinstance(waiting, asyncio.Future):
            del self._calls[message[1]]
            waiting.set_result(message)
        else:
            waiting.put_nowait(message)

    def handler(self, method: str, streaming: bool) -> grpc.RpcMethodHandler[Any, Any]:
        if streaming:

            async def stream(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> None:
                await self._stream(method, request, context)

            return grpc.unary_stream_rpc_method_handler(stream)

        async def unary(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            return await self._unary(method, request, context)

        return grpc.unary_unary_rpc_method_handler(unary)

    def _call(
        self,
        method: str,
        request: bytes,
        context: grpc.aio.ServicerContext[Any, Any],
        waiting: asyncio.Future[Message] | asyncio.Queue[Message],
    ) -> int:
        call_id = next(self._ids)
        self._calls[call_id] = waiting
        certificates = context.auth_context().get("x509_pem_cert")
        certificate = next(iter(certificates)) if certificates else None
        self._outbox.send((protocol.CALL, call_id, method, certificate, request))
        return call_id

    def _gone(self, call_id: int) -> None:
        if self._calls.pop(call_id, None) is not None:
            self._outbox.send((protocol.CANCEL, call_id))

    async def _unary(
        self, method: str, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        answer: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        call_id = self._call(method, request, context, answer)
        try:
            message = await answer
        except asyncio.CancelledError:
            self._gone(call_id)
            raise
        if message[0] == protocol.REPLY:
            data: bytes = message[2]
            return data
        await _abort(context, message)
        raise AssertionError("unreachable: abort raises")

    async def _stream(
        self, method: str, request: bytes, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        items: asyncio.Queue[Message] = asyncio.Queue()
        call_id = self._call(method, request, context, items)
        try:
            while True:
                message = await items.get()
                if message[0] == protocol.ITEM:
                    await context.write(message[2])
                    self._outbox.send((protocol.ACK, call_id))
                    continue
                self._calls.pop(call_id, None)
                if message[0] == protocol.END:
                    return
                await _abort(context, message)
        finally:
            self._gone(call_id)  # however the stream ended here, the region stops it

    def forward_all(self, server: grpc.aio.Server, methods: dict[str, bool]) -> None:
        services: dict[str, dict[str, grpc.RpcMethodHandler[Any, Any]]] = defaultdict(dict)
        for path, streaming in methods.items():
            service, name = path.lstrip("/").split("/")
            services[service][name] = self.handler(path, streaming)
        for service, handlers in services.items():
            server.add_registered_method_handlers(service, handlers)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], message: Message) -> None:
    _, _, code, details, trailing_metadata = message
    await context.abort(
        _CODES.get(code, grpc.StatusCode.UNKNOWN), details, trailing_metadata=trailing_metadata
    )


class _FrontEnd:
    def __init__(self, config: FrontEndConfig, outbox: Outbox) -> None:
        self._config = config
        self._outbox = outbox
        self.forwarder = _Forwarder(outbox)
        options = [
            ("grpc.max_receive_message_length", config.max_message_bytes),
            ("grpc.max_send_message_length", config.max_message_bytes),
            ("grpc.so_reuseport", int(config.share_ports)),
        ]
        self._grpc = grpc.aio.server(options=options)
        # Health checks and reflection are answered here, inside the same guard as in the
        # region process; every other call is forwarded and guarded there.
        ca = pki.load_certificate(config.ca_pem)
        guarded = GuardedServer(RegionAuthorizer(ca), self._grpc)
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, guarded)
        reflection.enable_server_reflection(
            [
                *config.serving,
                *config.planned,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            guarded,
        )
        self.forwarder.forward_all(self._grpc, config.methods)
        self.stopped = asyncio.get_running_loop().create_future()

    async def start(self) -> None:
        config = self._config
        identity = [(config.server_key_pem, config.server_certificate_pem)]
        try:
            port = self._grpc.add_secure_port(config.address, grpc.ssl_server_credentials(identity))
            mtls_port = self._grpc.add_secure_port(
                config.mtls_address,
                grpc.ssl_server_credentials(
                    identity, root_certificates=config.ca_pem, require_client_auth=True
                ),
            )
        except RuntimeError as exc:  # grpc's "failed to bind"
            self._outbox.send((protocol.FAILED, f"cannot listen: {exc}"))
            self.stopped.set_result(None)
            return
        await self._grpc.start()
        for name in ("", *config.serving):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        for name in config.planned:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self._outbox.send((protocol.READY, port, mtls_port))

    def received(self, data: bytes) -> None:
        for message in protocol.decode(data):
            if message[0] == protocol.STOP:
                asyncio.get_running_loop().create_task(self._stop(message[1]))
            else:
                self.forwarder.received(message)

    async def _stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self._grpc.stop(grace)
        self._outbox.send((protocol.STOPPED,))
        self._outbox.close()
        if not self.stopped.done():
            self.stopped.set_result(None)

    def region_gone(self) -> None:
        if self.stopped.done():
            return
        # Nothing can be served without the region process, and a client is better told
        # at once (its connection drops) than left waiting for a call that cannot end.
        log.error("the region process has gone; this front end stops")
        os._exit(1)


async def _serve(config: FrontEndConfig) -> None:
    loop = asyncio.get_running_loop()
    writer, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(1, "wb", buffering=0))
    outbox = Outbox(writer)
    front = _FrontEnd(config, outbox)
    await loop.connect_read_pipe(
        lambda: FrameReader(front.received, front.region_gone), os.fdopen(0, "rb", buffering=0)
    )
    await front.start()
    await front.stopped


def _read_exactly(fd: int, count: int) -> bytes:
    """Unbuffered, so nothing after the first frame is read before the event loop's pipe."""
    data = b""
    while len(data) < count:
        chunk = os.read(fd, count - len(data))
        if not chunk:
            break
        data += chunk
    return data


class _RawStdin:
    def read(self, count: int) -> bytes:
        return _read_exactly(0, count)


def main(argv: list[str]) -> int:
    # ^C and SIGTERM (systemd sends it to every process of the unit) are for the region
    # process, which then stops its front ends gracefully.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m service.front.process PARENT_PID", file=sys.stderr)
        return 2
    die_with_parent(int(argv[0]))
    sys.stdout = sys.stderr  # nothing else may write to the frames' stream
    first = read_frame(_RawStdin())
    if first is None:
        return 2
    config = protocol.decode_config(first)
    logging.basicConfig(level=config.log_level, stream=sys.stderr)
    run_event_loop(_serve(config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
