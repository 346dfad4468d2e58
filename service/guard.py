"""The guard every RPC passes through: authorize, then translate errors.

Servicers never check roles themselves for access to an RPC: the rule table in
`service.authz` is consulted here before the handler runs, and the authenticated
caller is made available through `current_caller`. Ownership rules that depend on
the request (a department changes only its own licences) stay in the servicers,
which read the caller from the same place. Whatever escapes a handler becomes a
`google.rpc.Status` with details (`service.errors.to_rpc_status`).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Protocol, TypeAlias

import grpc
from grpc_status import rpc_status

from service.errors import ServiceError, invalid_argument, to_rpc_status

log = logging.getLogger("licence_ledger.rpc")


class Caller(Protocol):
    @property
    def role(self) -> Any: ...

    @property
    def subject_id(self) -> str: ...


class Authorizer(Protocol):
    def authorize(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> Caller:
        """The caller of `method`, or raise ServiceError (UNAUTHENTICATED / PERMISSION_DENIED)."""
        ...


current_caller: contextvars.ContextVar[Caller] = contextvars.ContextVar("current_caller")

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"  # generic only in the stubs


async def _fail(context: grpc.aio.ServicerContext[Any, Any], method: str, exc: Exception) -> None:
    if isinstance(exc, ServiceError | ValueError):
        log.info("%s refused: %s", method, type(exc).__name__)
    else:
        log.exception("%s failed unexpectedly", method)
    await context.abort_with_status(rpc_status.to_status(to_rpc_status(exc)))


class GuardedServer(grpc.aio.Server):
    """A grpc.aio server that puts the guard around every handler registered on it.

    The guard goes around each handler once, when it is registered, rather than in a
    server interceptor, which grpc.aio runs as a chain of coroutines on every call.
    Methods nobody registered are answered UNIMPLEMENTED by gRPC, as before.

    Without a grpc.aio server it only collects the guarded handlers: the front-end
    processes (`service.front`) then receive the calls, and `handler` finds the one
    each forwarded call runs.
    """

    def __init__(self, authorizer: Authorizer, server: grpc.aio.Server | None = None) -> None:
        self._server = server
        self._authorizer = authorizer
        self._methods: dict[str, Handler] = {}
        self._generic: list[_GuardedHandlers] = []

    def handler(self, method: str) -> Handler | None:
        """The guarded handler of `method` ("/package.Service/Method"), if registered."""
        found = self._methods.get(method)
        if found is not None:
            return found
        details = _CallDetails(method)
        for generic in self._generic:
            found = generic.service(details)
            if found is not None:
                return found
        return None

    def add_generic_rpc_handlers(
        self, generic_rpc_handlers: Iterable[grpc.GenericRpcHandler]
    ) -> None:
        guarded = tuple(_GuardedHandlers(h, self) for h in generic_rpc_handlers)
        self._generic.extend(guarded)
        if self._server is not None:
            self._server.add_generic_rpc_handlers(guarded)

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, Handler]
    ) -> None:
        guarded = {
            name: self.guard(f"/{service_name}/{name}", handler)
            for name, handler in method_handlers.items()
        }
        self._methods.update({f"/{service_name}/{name}": h for name, h in guarded.items()})
        if self._server is not None:
            # Generated code registers each service this way as well (a faster lookup).
            self._server.add_registered_method_handlers(service_name, guarded)

    @property
    def _serving(self) -> grpc.aio.Server:
        if self._server is None:
            raise RuntimeError("this guard has no grpc.aio server: front ends serve the calls")
        return self._server

    def add_insecure_port(self, address: str) -> int:
        return self._serving.add_insecure_port(address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._serving.add_secure_port(address, server_credentials)

    async def start(self) -> None:
        await self._serving.start()

    async def stop(self, grace: float | None) -> None:
        await self._serving.stop(grace)

    async def wait_for_termination(self, timeout: float | None = None) -> bool:
        return await self._serving.wait_for_termination(timeout)

    def guard(self, method: str, handler: Handler) -> Handler:
        """`handler` inside the guard: authorize `method`'s caller, translate errors.

        A single request is parsed here, after the caller is authorized (so nobody
        learns what the server makes of bytes they may not send), and a request that
        does not parse is INVALID_ARGUMENT. A streamed request is parsed by gRPC as
        the handler reads it, which is after the guard let the caller in.
        """
        authorize = self._authorizer.authorize
        parse = handler.request_deserializer
        one_request = handler.unary_unary is not None or handler.unary_stream is not None
        not_parsed = f"the request is not a valid {method} request"

        def admit(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            """The request (parsed, if it is one message) once its caller may call."""
            current_caller.set(authorize(method, context))
            if not one_request or parse is None:
                return request
            try:
                return parse(request)
            except Exception as exc:  # protobuf's DecodeError, or worse
                raise invalid_argument(not_parsed) from exc

        # One message is handed over as bytes, for `admit` to parse; a stream is parsed
        # by gRPC message by message as the handler reads it.
        deserializer = None if one_request else parse
        if handler.unary_unary is not None or handler.stream_unary is not None:
            inner: Any = handler.unary_unary or handler.stream_unary  # async under grpc.aio

            async def unary_response(request: Any, context: Any) -> Any:
                try:
                    return await inner(admit(request, context), context)
                except grpc.aio.AbortError:
                    raise
                except Exception as exc:
                    await _fail(context, method, exc)
                    raise  # unreachable: abort raises

            make = (
                grpc.unary_unary_rpc_method_handler
                if handler.unary_unary is not None
                else grpc.stream_unary_rpc_method_handler
            )
            return make(
                unary_response,
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )

        inner_stream: Any = handler.unary_stream or handler.stream_stream

        async def stream_response(request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for item in inner_stream(admit(request, context), context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _fail(context, method, exc)

        make_stream = (
            grpc.unary_stream_rpc_method_handler
            if handler.unary_stream is not None
            else grpc.stream_stream_rpc_method_handler
        )
        return make_stream(
            stream_response,
            request_deserializer=deserializer,
            response_serializer=handler.response_serializer,
        )


class _GuardedHandlers(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, guard: GuardedServer) -> None:
        self._inner = inner
        self._guard = guard
        # Each method's handler and its guarded form, made once.
        self._guarded: dict[str, tuple[Handler, Handler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._guarded.get(method)
        if cached is None or cached[0] is not handler:  # never another handler's guard
            cached = self._guarded[method] = (handler, self._guard.guard(method, handler))
        return cached[1]


class _CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()
