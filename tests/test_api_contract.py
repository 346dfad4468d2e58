"""The gRPC API contract (proto/ → generated licenceledger/): services and RPCs, the
idempotency key on every mutating call, enum conventions, the released descriptor set,
and the generated stubs working over a real grpc.aio channel."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import (
    Descriptor,
    EnumDescriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

import licenceledger
from licenceledger.ledger.v1 import ledger_service_pb2, ledger_service_pb2_grpc
from licenceledger.licence.v1 import licence_pb2
from licenceledger.type.v1 import ledger_pb2
from licenceledger.verification.v1 import report_pb2

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "releases" / "licenceledger-v1.binpb"
PACKAGE_PREFIX = "licenceledger."

# Every service with every RPC; a name missing here or there fails the test, so the API
# cannot grow or shrink without this list (and the spec) being looked at.
EXPECTED_RPCS: dict[str, set[str]] = {
    "licenceledger.ledger.v1.LedgerService": {
        "GetCheckpoint",
        "ListEntries",
        "GetInclusionProof",
        "GetConsistencyProof",
        "WatchEntries",
    },
    "licenceledger.registry.v1.RegistryService": {
        "RegisterDepartment",
        "GetDepartment",
        "ListDepartments",
        "RotateDepartmentKey",
        "RevokeDepartmentKey",
        "RegisterLicenceType",
        "GetLicenceType",
        "ListLicenceTypes",
    },
    "licenceledger.licence.v1.LicenceService": {
        "IssueLicence",
        "AmendLicence",
        "RenewLicence",
        "ChangeLicenceStatus",
        "GetLicence",
        "ListLicences",
    },
    "licenceledger.seal.v1.SealService": {
        "RegisterSeal",
        "SuspendSeal",
        "ReinstateSeal",
        "RevokeSeal",
        "GetSeal",
        "ListSeals",
        "SealDocument",
    },
    "licenceledger.verification.v1.VerificationService": {
        "VerifyCredential",
        "VerifyQrCode",
        "VerifyPdf",
    },
    "licenceledger.federation.v1.FederationService": {
        "GetTrustList",
        "PublishTrustList",
        "GetLicenceStatus",
        "SubmitCheckpoint",
        "GetPeerCheckpoint",
        "ListSplitViewEvidence",
    },
}

# The RPCs that change state (each appends to the ledger): they take an idempotency key.
MUTATING_RPCS = {
    "RegisterDepartment",
    "RotateDepartmentKey",
    "RevokeDepartmentKey",
    "RegisterLicenceType",
    "IssueLicence",
    "AmendLicence",
    "RenewLicence",
    "ChangeLicenceStatus",
    "RegisterSeal",
    "SuspendSeal",
    "ReinstateSeal",
    "RevokeSeal",
    "SealDocument",
    "PublishTrustList",
    "SubmitCheckpoint",
}

SERVER_STREAMING_RPCS = {"WatchEntries"}


def _import_generated() -> list[FileDescriptor]:
    """Imports every generated module, registering its file in the default pool."""
    files = []
    for info in pkgutil.walk_packages(licenceledger.__path__, PACKAGE_PREFIX):
        if info.name.endswith("_pb2"):
            files.append(importlib.import_module(info.name).DESCRIPTOR)
        elif info.name.endswith("_pb2_grpc"):
            importlib.import_module(info.name)
    return files


FILES = _import_generated()


def _services() -> Iterator[ServiceDescriptor]:
    for file in FILES:
        yield from file.services_by_name.values()


def _methods() -> Iterator[MethodDescriptor]:
    for service in _services():
        yield from service.methods


def _messages(messages: Any) -> Iterator[Descriptor]:
    for message in messages:
        yield message
        yield from _messages(message.nested_types)


def _enums() -> Iterator[EnumDescriptor]:
    for file in FILES:
        yield from file.enum_types_by_name.values()
        for message in _messages(file.message_types_by_name.values()):
            yield from message.enum_types


def _upper_snake(name: str) -> str:
    out = []
    for i, char in enumerate(name):
        if char.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(char.upper())
    return "".join(out)


def test_generated_package_covers_every_proto_file() -> None:
    protos = sorted(str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto"))
    assert protos, "no .proto files under proto/"
    assert sorted(f.name for f in FILES) == protos


def test_every_service_has_exactly_the_expected_rpcs() -> None:
    found = {s.full_name: {m.name for m in s.methods} for s in _services()}
    assert found == EXPECTED_RPCS


def test_rpc_messages_are_named_after_the_rpc() -> None:
    for method in _methods():
        assert method.input_type.name == f"{method.name}Request", method.full_name
        assert method.output_type.name == f"{method.name}Response", method.full_name


def test_mutating_rpcs_take_a_request_id_and_reads_are_marked_side_effect_free() -> None:
    no_side_effects = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    for method in _methods():
        options = descriptor_pb2.MethodOptions()
        options.ParseFromString(method.GetOptions().SerializeToString())
        request_id = method.input_type.fields_by_name.get("request_id")
        if method.name in MUTATING_RPCS:
            assert options.idempotency_level != no_side_effects, method.full_name
            assert request_id is not None, f"{method.full_name} has no request_id"
            assert request_id.type == FieldDescriptor.TYPE_STRING, method.full_name
            assert request_id.number == 1, method.full_name
        else:
            assert options.idempotency_level == no_side_effects, method.full_name
            assert request_id is None, f"read-only {method.full_name} takes a request_id"


def test_streaming_shape() -> None:
    for method in _methods():
        assert not method.client_streaming, method.full_name
        assert method.server_streaming == (method.name in SERVER_STREAMING_RPCS), method.full_name


def test_list_rpcs_paginate() -> None:
    for method in _methods():
        if not method.name.startswith("List") or method.name == "ListEntries":
            continue
        request = method.input_type.fields_by_name
        assert request["page_size"].type == FieldDescriptor.TYPE_UINT32, method.full_name
        assert request["page_token"].type == FieldDescriptor.TYPE_STRING, method.full_name
        response = method.output_type.fields_by_name
        assert response["next_page_token"].type == FieldDescriptor.TYPE_STRING, method.full_name


def test_enums_have_an_unspecified_zero_and_prefixed_values() -> None:
    enums = list(_enums())
    assert len(enums) >= 15
    for enum in enums:
        prefix = _upper_snake(enum.name) + "_"
        zero = enum.values_by_number[0]
        assert zero.name == prefix + "UNSPECIFIED", enum.full_name
        for value in enum.values:
            assert value.name.startswith(prefix), f"{enum.full_name}.{value.name}"


def test_licence_status_numbers_are_the_national_codes() -> None:
    codes = {
        "VALID": 1,
        "SUSPENDED": 2,
        "WITHDRAWN": 3,
        "CANCELLED": 4,
        "EXPIRED": 5,
        "TRANSFERRED_OUT": 6,
        "REVOKED": 7,
    }
    status = licence_pb2.LicenceStatus
    assert {k.removeprefix("LICENCE_STATUS_"): v for k, v in status.items() if v} == codes


def test_report_names_a_reason_for_every_forgery_in_the_catalogue() -> None:
    # One reason per fault of spec §5 that a verification report can conclude on
    # (#18 is the audit's, #19 an issuance error).
    reasons = set(report_pb2.VerificationReason.keys())
    for code in [
        "SIGNATURE_INVALID",
        "NO_CERTIFICATE_CHAIN",
        "ISSUER_NOT_AUTHORISED",
        "NOT_IN_LEDGER",
        "LICENCE_SUSPENDED",
        "LICENCE_WITHDRAWN",
        "LICENCE_CANCELLED",
        "LICENCE_REVOKED",
        "LICENCE_TRANSFERRED_OUT",
        "LICENCE_EXPIRED",
        "LICENCE_NOT_YET_VALID",
        "LICENCE_SUPERSEDED",
        "HOLDER_MISMATCH",
        "MODIFIED_AFTER_SIGNING",
        "SEAL_IMAGE_WITHOUT_SIGNATURE",
        "BYTE_RANGE_MISMATCH",
        "SEAL_REVOKED",
        "SEAL_REVOKED_AFTER_SIGNING",
        "SEAL_OUTSIDE_VALIDITY",
        "SEAL_PURPOSE_NOT_PERMITTED",
        "SEAL_SIGNER_NOT_BOUND",
        "REGION_NOT_RECOGNISED",
        "LICENCE_TYPE_NOT_RECOGNISED",
        "TRUST_LIST_STALE",
        "TRUST_LIST_ROLLBACK",
        "SPLIT_VIEW",
    ]:
        assert "VERIFICATION_REASON_" + code in reasons, code


def test_released_api_is_still_served_unchanged() -> None:
    """Every message field and RPC of the released descriptor set still exists with the
    same number, type and messages (a quick offline subset of `buf breaking`)."""
    released = descriptor_pb2.FileDescriptorSet.FromString(RELEASE.read_bytes())
    pool = descriptor_pool.Default()
    checked = 0
    for file in released.file:
        if not file.package.startswith(PACKAGE_PREFIX):
            continue
        for message in file.message_type:
            current = pool.FindMessageTypeByName(f"{file.package}.{message.name}")
            for field in message.field:
                now = current.fields_by_name.get(field.name)
                assert now is not None, f"{current.full_name}.{field.name} was removed"
                assert (now.number, now.type) == (field.number, field.type), now.full_name
                checked += 1
        for service in file.service:
            current_service = pool.FindServiceByName(f"{file.package}.{service.name}")
            for method in service.method:
                now_method = current_service.methods_by_name[method.name]
                assert "." + now_method.input_type.full_name == method.input_type
                assert "." + now_method.output_type.full_name == method.output_type
    assert checked > 100


class _Ledger(ledger_service_pb2_grpc.LedgerServiceServicer):
    """A fake ledger of two entries, enough to exercise the generated code."""

    async def GetCheckpoint(
        self,
        request: ledger_service_pb2.GetCheckpointRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> ledger_service_pb2.GetCheckpointResponse:
        checkpoint = ledger_pb2.SignedCheckpoint(
            note=b"example/310000\n2\nAAAA\n\n", origin="example/310000", tree_size=2
        )
        return ledger_service_pb2.GetCheckpointResponse(checkpoint=checkpoint)

    async def ListEntries(
        self,
        request: ledger_service_pb2.ListEntriesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> ledger_service_pb2.ListEntriesResponse:
        entries = [
            ledger_service_pb2.Entry(index=i, entry=b"entry %d" % i)
            for i in range(request.start, 2)
        ]
        return ledger_service_pb2.ListEntriesResponse(entries=entries, tree_size=2)

    async def GetInclusionProof(
        self,
        request: ledger_service_pb2.GetInclusionProofRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> ledger_service_pb2.GetInclusionProofResponse:
        if request.WhichOneof("leaf") != "leaf_index":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "leaf_index required")
        return ledger_service_pb2.GetInclusionProofResponse(
            leaf_index=request.leaf_index, tree_size=2, path=[b"\x00" * 32]
        )

    async def GetConsistencyProof(
        self,
        request: ledger_service_pb2.GetConsistencyProofRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> ledger_service_pb2.GetConsistencyProofResponse:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this fake")

    async def WatchEntries(
        self,
        request: ledger_service_pb2.WatchEntriesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[ledger_service_pb2.WatchEntriesResponse]:
        for i in range(request.start_index, 2):
            yield ledger_service_pb2.WatchEntriesResponse(
                entries=[ledger_service_pb2.Entry(index=i)]
            )
        yield ledger_service_pb2.WatchEntriesResponse(
            checkpoint=ledger_pb2.SignedCheckpoint(tree_size=2)
        )


async def _round_trip() -> None:
    server = grpc.aio.server()
    ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server(_Ledger(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = ledger_service_pb2_grpc.LedgerServiceStub(channel)
            checkpoint = await stub.GetCheckpoint(ledger_service_pb2.GetCheckpointRequest())
            assert checkpoint.checkpoint.tree_size == 2
            listed = await stub.ListEntries(ledger_service_pb2.ListEntriesRequest(start=1))
            assert [e.entry for e in listed.entries] == [b"entry 1"]
            proof = await stub.GetInclusionProof(
                ledger_service_pb2.GetInclusionProofRequest(leaf_index=0)
            )
            assert proof.leaf_index == 0
            assert len(proof.path) == 1
            with pytest.raises(grpc.aio.AioRpcError) as bad:
                await stub.GetInclusionProof(
                    ledger_service_pb2.GetInclusionProofRequest(leaf_hash=b"\x01" * 32)
                )
            assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            watched = [
                message
                async for message in stub.WatchEntries(
                    ledger_service_pb2.WatchEntriesRequest(start_index=0)
                )
            ]
            assert [m.entries[0].index for m in watched[:-1]] == [0, 1]
            assert watched[-1].checkpoint.tree_size == 2
    finally:
        await server.stop(None)


def test_generated_stubs_work_over_grpc_aio() -> None:
    asyncio.run(_round_trip())
