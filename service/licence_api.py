"""LicenceService over gRPC: the caller from the guard, the work in `service.region`."""

from __future__ import annotations

from typing import Any

import grpc

from licenceledger.licence.v1 import licence_service_pb2 as pb
from licenceledger.licence.v1 import licence_service_pb2_grpc as pb_grpc
from service.authz import request_caller
from service.region.licences import Licences

Context = grpc.aio.ServicerContext[Any, Any]


class LicenceServicer(pb_grpc.LicenceServiceServicer):
    def __init__(self, licences: Licences) -> None:
        self._licences = licences

    async def IssueLicence(
        self, request: pb.IssueLicenceRequest, context: Context
    ) -> pb.IssueLicenceResponse:
        return await self._licences.issue(request_caller(), request)

    async def AmendLicence(
        self, request: pb.AmendLicenceRequest, context: Context
    ) -> pb.AmendLicenceResponse:
        return await self._licences.amend(request_caller(), request)

    async def RenewLicence(
        self, request: pb.RenewLicenceRequest, context: Context
    ) -> pb.RenewLicenceResponse:
        return await self._licences.renew(request_caller(), request)

    async def ChangeLicenceStatus(
        self, request: pb.ChangeLicenceStatusRequest, context: Context
    ) -> pb.ChangeLicenceStatusResponse:
        return await self._licences.change_status(request_caller(), request)

    async def GetLicence(
        self, request: pb.GetLicenceRequest, context: Context
    ) -> pb.GetLicenceResponse:
        return self._licences.get(request_caller(), request)

    async def ListLicences(
        self, request: pb.ListLicencesRequest, context: Context
    ) -> pb.ListLicencesResponse:
        return self._licences.list(request_caller(), request)
