"""RegistryService over gRPC: the caller from the guard, the work in `service.region`."""

from __future__ import annotations

from typing import Any

import grpc

from licenceledger.registry.v1 import registry_service_pb2 as pb
from licenceledger.registry.v1 import registry_service_pb2_grpc as pb_grpc
from service.authz import request_caller
from service.region.registry import Registry

Context = grpc.aio.ServicerContext[Any, Any]


class RegistryServicer(pb_grpc.RegistryServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def RegisterDepartment(
        self, request: pb.RegisterDepartmentRequest, context: Context
    ) -> pb.RegisterDepartmentResponse:
        return await self._registry.register_department(request_caller(), request)

    async def GetDepartment(
        self, request: pb.GetDepartmentRequest, context: Context
    ) -> pb.GetDepartmentResponse:
        return pb.GetDepartmentResponse(
            department=self._registry.get_department(request.department_code)
        )

    async def ListDepartments(
        self, request: pb.ListDepartmentsRequest, context: Context
    ) -> pb.ListDepartmentsResponse:
        return self._registry.list_departments(request)

    async def RotateDepartmentKey(
        self, request: pb.RotateDepartmentKeyRequest, context: Context
    ) -> pb.RotateDepartmentKeyResponse:
        return await self._registry.rotate_department_key(request_caller(), request)

    async def RevokeDepartmentKey(
        self, request: pb.RevokeDepartmentKeyRequest, context: Context
    ) -> pb.RevokeDepartmentKeyResponse:
        return await self._registry.revoke_department_key(request_caller(), request)

    async def RegisterLicenceType(
        self, request: pb.RegisterLicenceTypeRequest, context: Context
    ) -> pb.RegisterLicenceTypeResponse:
        return await self._registry.register_licence_type(request_caller(), request)

    async def GetLicenceType(
        self, request: pb.GetLicenceTypeRequest, context: Context
    ) -> pb.GetLicenceTypeResponse:
        return pb.GetLicenceTypeResponse(
            licence_type=self._registry.get_licence_type(request.licence_type_code)
        )

    async def ListLicenceTypes(
        self, request: pb.ListLicenceTypesRequest, context: Context
    ) -> pb.ListLicenceTypesResponse:
        return self._registry.list_licence_types(request)
