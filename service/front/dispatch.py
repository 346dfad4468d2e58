"""The region's side of forwarded calls: each runs through the guarded handlers.

A forwarded call meets the same guard as a call served in this process: the
authorizer reads the client certificate the front end saw (the front end's TLS proved
the client holds its key), the request's bytes are parsed only then, the servicer
runs, and whatever escapes becomes a
`google.rpc.Status`, which goes back to the front end as code, message and trailing
metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import grpc
from grpc_status import rpc_status

from service.errors import ServiceError, to_rpc_status
from service.front import protocol
from service.front.protocol import Message, Outbox
from service.guard import GuardedServer

log = logging.getLogger("licence_ledger.front")


class ForwardedContext:
    """What the guard and the servicers use of a grpc.aio context, for a forwarded call."""

    def __init__(self, certificate: bytes | None) -> None:
        self._auth: dict[str, Sequence[bytes]] = (
            {"x509_pem_cert": (certificate,)} if certificate is not None else {}
        )
        self.status: tuple[int, str, tuple[tuple[str, str | bytes], ...]] | None = None

    def auth_context(self) -> Mapping[str, Sequence[bytes]]:
        return self._auth

    async def abort_with_status(self, status: grpc.Status) -> NoReturn:
        self.status = (status.code.value[0], status.details, tuple(status.trailing_metadata))
        raise grpc.aio.AbortError

    async def abort(
        self,
        code: grpc.StatusCode,
        details: str = "",
        trailing_metadata: tuple[tuple[str, str | bytes], ...] = (),
    ) -> NoReturn:
        self.status = (code.value[0], details, tuple(trailing_metadata))
        raise grpc.aio.AbortError


class Dispatcher:
    """Runs one front end's calls, each as a task of its own, and sends their answers."""

    def __init__(self, handlers: GuardedServer, outbox: Outbox) -> None:
        self._handlers = handlers
        self._outbox = outbox
        self._tasks: dict[int, asyncio.Task[None]] = {}
        # Stream items each stream may still send before the front end acknowledges one.
        self._credits: dict[int, asyncio.Semaphore] = {}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def received(self, message: Message) -> None:
        kind, call_id = message[0], message[1]
        if kind == protocol.CALL:
            _, _, method, certificate, request = message
            task = asyncio.get_running_loop().create_task(
                self._run(call_id, method, certificate, request)
            )
            self._tasks[call_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(call_id, None))
        elif kind == protocol.CANCEL:
            cancelled = self._tasks.get(call_id)
            if cancelled is not None:
                cancelled.cancel()
        elif kind == protocol.ACK:
            credit = self._credits.get(call_id)
            if credit is not None:
                credit.release()

    def close(self) -> None:
        """The front end has gone: nobody can receive these calls' answers."""
        for task in list(self._tasks.values()):
            task.cancel()

    async def _run(
        self, call_id: int, method: str, certificate: bytes | None, request: bytes
    ) -> None:
        handler = self._handlers.handler(method)
        if handler is None:
            self._status(call_id, _not_served(method))
            return
        # The guarded handler takes the request's bytes: it parses them once it has
        # authorized the caller.
        context: Any = ForwardedContext(certificate)  # the part of a ServicerContext used
        serialize = handler.response_serializer or (lambda response: response)
        try:
            if handler.unary_unary is not None:
                response = await handler.unary_unary(request, context)
                self._outbox.send((protocol.REPLY, call_id, serialize(response)))
            elif handler.unary_stream is not None:
                await self._stream(call_id, handler.unary_stream(request, context), serialize)
            else:  # no client-streaming method is offered
                self._status(call_id, _not_served(method))
        except grpc.aio.AbortError:
            if context.status is None:
                raise
            self._outbox.send((protocol.STATUS, call_id, *context.status))
        except Exception as exc:  # the guard translates errors; this would be a bug
            log.exception("forwarded call %s failed outside its guard", method)
            self._status(call_id, exc)

    async def _stream(self, call_id: int, items: Any, serialize: Any) -> None:
        credit = self._credits[call_id] = asyncio.Semaphore(protocol.STREAM_WINDOW)
        try:
            async with contextlib.aclosing(items):
                async for item in items:
                    await credit.acquire()
                    self._outbox.send((protocol.ITEM, call_id, serialize(item)))
            self._outbox.send((protocol.END, call_id))
        finally:
            del self._credits[call_id]

    def _status(self, call_id: int, exc: BaseException) -> None:
        status = rpc_status.to_status(to_rpc_status(exc))
        self._outbox.send(
            (
                protocol.STATUS,
                call_id,
                status.code.value[0],
                status.details,
                tuple(status.trailing_metadata),
            )
        )


def _not_served(method: str) -> ServiceError:
    return ServiceError(
        f"method {method} is not served", "UNKNOWN_METHOD", grpc.StatusCode.UNIMPLEMENTED
    )
