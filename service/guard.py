"""The one interceptor every RPC passes through: authorize, then translate errors.

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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeAlias

import grpc
from grpc_status import rpc_status

from service.errors import ServiceError, to_rpc_status

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


class GuardInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer
        # Each method's handler and its guarded form, made once: grpc.aio asks every call.
        self._guarded: dict[str, tuple[Handler, Handler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        cached = self._guarded.get(method)
        if cached is None or cached[0] is not handler:  # never another handler's guard
            cached = self._guarded[method] = (handler, self._guard(method, handler))
        return cached[1]

    def _guard(self, method: str, handler: Handler) -> Handler:
        authorize = self._authorizer.authorize

        def enter(context: grpc.aio.ServicerContext[Any, Any]) -> None:
            current_caller.set(authorize(method, context))

        if handler.unary_unary is not None or handler.stream_unary is not None:
            inner: Any = handler.unary_unary or handler.stream_unary  # async under grpc.aio

            async def unary_response(request: Any, context: Any) -> Any:
                try:
                    enter(context)
                    return await inner(request, context)
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
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )

        inner_stream: Any = handler.unary_stream or handler.stream_stream

        async def stream_response(request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                enter(context)
                async for item in inner_stream(request, context):
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
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
