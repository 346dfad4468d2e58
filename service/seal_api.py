"""SealService over gRPC: the caller from the guard, the work in `service.region`."""

from __future__ import annotations

from typing import Any

import grpc

from licenceledger.seal.v1 import seal_service_pb2 as pb
from licenceledger.seal.v1 import seal_service_pb2_grpc as pb_grpc
from service.authz import request_caller
from service.region.sealed_documents import Sealing
from service.region.seals import Seals

Context = grpc.aio.ServicerContext[Any, Any]


class SealServicer(pb_grpc.SealServiceServicer):
    def __init__(self, seals: Seals, sealing: Sealing) -> None:
        self._seals = seals
        self._sealing = sealing

    async def RegisterSeal(
        self, request: pb.RegisterSealRequest, context: Context
    ) -> pb.RegisterSealResponse:
        return await self._seals.register(request_caller(), request)

    async def SuspendSeal(
        self, request: pb.SuspendSealRequest, context: Context
    ) -> pb.SuspendSealResponse:
        return await self._seals.suspend(request_caller(), request)

    async def ReinstateSeal(
        self, request: pb.ReinstateSealRequest, context: Context
    ) -> pb.ReinstateSealResponse:
        return await self._seals.reinstate(request_caller(), request)

    async def RevokeSeal(
        self, request: pb.RevokeSealRequest, context: Context
    ) -> pb.RevokeSealResponse:
        return await self._seals.revoke(request_caller(), request)

    async def GetSeal(self, request: pb.GetSealRequest, context: Context) -> pb.GetSealResponse:
        return self._seals.get(request)

    async def ListSeals(
        self, request: pb.ListSealsRequest, context: Context
    ) -> pb.ListSealsResponse:
        return self._seals.list(request)

    async def SealDocument(
        self, request: pb.SealDocumentRequest, context: Context
    ) -> pb.SealDocumentResponse:
        return await self._sealing.seal_document(request_caller(), request)
