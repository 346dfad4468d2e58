"""End to end: a real `licence-ledger serve` process, real TLS and client certificates."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from ledger import (
    ProofBundle,
    node_hash,
    open_checkpoint,
    verify_consistency,
    verify_inclusion,
)
from ledger.note import Ed25519NoteVerifier
from licenceledger.ledger.v1 import ledger_service_pb2 as pb
from licenceledger.ledger.v1 import ledger_service_pb2_grpc as pb_grpc
from licenceledger.record.v1 import record_pb2
from service.authz import RULES, Role
from service.bootstrap import RegionFiles, client_credentials_pem, unencrypted_pem
from service.datadir import DataDir
from service.server import PLANNED, SERVING
from signer import pki
from signer.keystore import PASSPHRASE_ENV, load_encrypted_pkcs8
from tests.conftest import TEST_PASSPHRASE, build_data_dir, entry
from tests.serverproc import Server, free_ports

PRELOADED = 500
DEPARTMENT_CODE = "11310000002419612H"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    os.environ[PASSPHRASE_ENV] = TEST_PASSPHRASE  # module scope: before the autouse fixture
    data = build_data_dir(tmp_path_factory.mktemp("region"), PRELOADED)
    port, mtls_port = free_ports(2)
    running = Server(data, port, mtls_port)
    banner = running.start()
    assert any("bootstrapped development region 310000" in line for line in banner)
    yield running
    if running.process is not None and running.process.poll() is None:
        running.stop()


def _department_identity(data: DataDir) -> tuple[bytes, bytes]:
    files = RegionFiles(data)
    ca = pki.RegionCA.from_parts(
        pki.load_certificate(files.ca_cert.read_bytes()),
        load_encrypted_pkcs8(files.key("region-ca"), data.passphrase()),
    )
    issued = pki.issue_client_certificate(
        ca, pki.Role.DEPARTMENT, DEPARTMENT_CODE, "市场监督管理局"
    )
    assert issued.key is not None
    return unencrypted_pem(issued.key), issued.certificate_chain_pem()


def _root(leaf_hashes: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes, computed independently of the server."""
    if len(leaf_hashes) == 1:
        return leaf_hashes[0]
    k = 1 << ((len(leaf_hashes) - 1).bit_length() - 1)
    return node_hash(_root(leaf_hashes[:k]), _root(leaf_hashes[k:]))


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_health_and_reflection_for_generic_clients(server: Server) -> None:
    async def go() -> tuple[int, set[str]]:
        async with server.channel() as channel:
            health_stub: Any = health_pb2_grpc.HealthStub(channel)
            health = await health_stub.Check(health_pb2.HealthCheckRequest(service=""))
            for service, expected in (
                ("licenceledger.licence.v1.LicenceService", health_pb2.HealthCheckResponse.SERVING),
                (
                    "licenceledger.verification.v1.VerificationService",
                    health_pb2.HealthCheckResponse.SERVING,
                ),
                (
                    "licenceledger.federation.v1.FederationService",
                    health_pb2.HealthCheckResponse.NOT_SERVING,  # planned: UNIMPLEMENTED
                ),
            ):
                reply = await health_stub.Check(health_pb2.HealthCheckRequest(service=service))
                assert reply.status == expected, service
            stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            names: set[str] = set()
            async for reply in stub.ServerReflectionInfo(iter([request])):
                names |= {s.name for s in reply.list_services_response.service}
            return health.status, names

    status, names = run(go())
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert {
        "licenceledger.ledger.v1.LedgerService",
        "licenceledger.licence.v1.LicenceService",
        "licenceledger.verification.v1.VerificationService",
        "grpc.health.v1.Health",
    } <= names


def test_ledger_reads_verify_client_side(server: Server) -> None:
    async def go() -> None:
        async with server.channel() as channel:
            stub: Any = pb_grpc.LedgerServiceStub(channel)  # aio: the stubs type it sync
            head = await stub.GetCheckpoint(pb.GetCheckpointRequest())
            verifier = Ed25519NoteVerifier.from_vkey(head.verifier_key)
            assert head.verifier_key == server.data.vkey_path.read_text().strip()
            signed = open_checkpoint(head.checkpoint.note, verifier)
            size, root = signed.checkpoint.size, signed.checkpoint.root_hash
            assert size == PRELOADED + 3  # the preloaded entries, then the bootstrap's

            listed = await stub.ListEntries(pb.ListEntriesRequest(start=0, count=size))
            assert [e.entry for e in listed.entries[:PRELOADED]] == [
                entry(i) for i in range(PRELOADED)
            ]
            # The bootstrap's registrations follow, as decodable ledger records.
            records = [
                record_pb2.LedgerRecord.FromString(e.entry) for e in listed.entries[PRELOADED:]
            ]
            assert [r.WhichOneof("change") for r in records] == [
                "region_bootstrapped",
                "certificate_issued",
                "certificate_issued",
            ]
            assert records[0].region_bootstrapped.region_code == "310000"
            assert records[0].region_bootstrapped.checkpoint_verifier_key == head.verifier_key
            assert [r.certificate_issued.purpose for r in records[1:]] == ["server", "admin"]
            for index in (0, 1, 255, PRELOADED - 1):
                by_index = await stub.GetInclusionProof(
                    pb.GetInclusionProofRequest(leaf_index=index)
                )
                verify_inclusion(index, size, listed.entries[index].leaf_hash, by_index.path, root)
                bundle = ProofBundle.from_text(by_index.tlog_proof, verifier)
                bundle.verify(entry(index))
                by_hash = await stub.GetInclusionProof(
                    pb.GetInclusionProofRequest(leaf_hash=listed.entries[index].leaf_hash)
                )
                assert by_hash.leaf_index == index
            old = await stub.GetInclusionProof(
                pb.GetInclusionProofRequest(leaf_index=3, tree_size=100)
            )
            assert old.tree_size == 100
            # Every leaf is listed above, so old roots can be computed independently.
            hashes = [e.leaf_hash for e in listed.entries]
            assert _root(hashes) == root
            for old_size in (1, 100, 256, 257, size):
                proof = await stub.GetConsistencyProof(
                    pb.GetConsistencyProofRequest(old_size=old_size)
                )
                verify_consistency(old_size, size, proof.path, _root(hashes[:old_size]), root)

            stream = stub.WatchEntries(pb.WatchEntriesRequest(start_index=size - 3))
            first = await stream.read()
            assert [e.index for e in first.entries] == [size - 3, size - 2, size - 1]
            caught_up = await stream.read()
            assert caught_up.checkpoint.tree_size == size
            stream.cancel()

    run(go())


def _details(error: grpc.aio.AioRpcError) -> tuple[str, list[str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError is a call
    assert status is not None
    reason, fields = "", []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return reason, fields


@pytest.mark.parametrize(
    ("request_message", "reason", "field"),
    [
        (pb.GetInclusionProofRequest(leaf_index=10**9), "BEYOND_TREE_SIZE", "leaf_index"),
        (pb.GetInclusionProofRequest(), "INVALID_ARGUMENT", "leaf"),
        (pb.GetInclusionProofRequest(leaf_hash=b"short"), "INVALID_ARGUMENT", "leaf_hash"),
        (
            pb.GetInclusionProofRequest(leaf_index=0, tree_size=10**9),
            "BEYOND_TREE_SIZE",
            "tree_size",
        ),
    ],
)
def test_bad_input_gets_rich_details(
    server: Server, request_message: pb.GetInclusionProofRequest, reason: str, field: str
) -> None:
    async def go() -> grpc.aio.AioRpcError:
        async with server.channel() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await pb_grpc.LedgerServiceStub(channel).GetInclusionProof(request_message)
            return caught.value

    error = run(go())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _details(error) == (reason, [field])


def test_consistency_and_listing_bounds(server: Server) -> None:
    async def go() -> list[grpc.StatusCode]:
        codes = []
        async with server.channel() as channel:
            stub = pb_grpc.LedgerServiceStub(channel)
            for call in (
                stub.GetConsistencyProof(pb.GetConsistencyProofRequest(old_size=0)),
                stub.ListEntries(pb.ListEntriesRequest(start=0, count=100_000)),
                stub.GetInclusionProof(pb.GetInclusionProofRequest(leaf_hash=bytes(32))),
            ):
                try:
                    await call
                except grpc.aio.AioRpcError as error:
                    codes.append(error.code())
        return codes

    assert run(go()) == [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
    ]


def _call_every_rpc(server: Server, identity: tuple[bytes, bytes] | None) -> dict[str, Any]:
    """Each RPC of the table called with an empty request: method -> status code."""
    services = {s.full_name: s for s in (*SERVING, *(planned for planned, _ in PLANNED))}

    async def go() -> dict[str, Any]:
        results = {}
        async with server.channel(identity) as channel:
            for method in RULES:
                service_name, name = method.strip("/").split("/")
                if service_name.startswith("grpc."):
                    continue
                descriptor = services[service_name].methods_by_name[name]
                request = message_factory.GetMessageClass(descriptor.input_type)()
                response_type = message_factory.GetMessageClass(descriptor.output_type)
                kind: Any = (
                    channel.unary_stream if descriptor.server_streaming else channel.unary_unary
                )
                call: Any = kind(
                    method,
                    request_serializer=type(request).SerializeToString,
                    response_deserializer=response_type.FromString,
                )(request, timeout=10)
                try:
                    if descriptor.server_streaming:
                        await call.read()
                        call.cancel()
                    else:
                        await call
                    results[method] = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as error:
                    results[method] = error.code()
        return results

    return dict(run(go()))


def test_authorization_matrix(server: Server) -> None:
    identities = {
        Role.PUBLIC: None,
        Role.ADMIN: client_credentials_pem(server.data, "admin"),
        Role.DEPARTMENT: _department_identity(server.data),
    }
    refused = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}
    for role, identity in identities.items():
        outcomes = _call_every_rpc(server, identity)
        assert outcomes, "no RPC was called"
        for method, code in outcomes.items():
            if role in RULES[method]:
                assert code not in refused, (role, method, code)
            elif role is Role.PUBLIC:
                assert code == grpc.StatusCode.UNAUTHENTICATED, (role, method, code)
            else:
                assert code == grpc.StatusCode.PERMISSION_DENIED, (role, method, code)


def test_mutual_tls_port_refuses_callers_without_a_region_certificate(server: Server) -> None:
    foreign_ca = pki.create_region_ca("310000", "Forged Region")
    forged = pki.issue_client_certificate(foreign_ca, pki.Role.ADMIN, "intruder", "Intruder")
    assert forged.key is not None
    forged_identity = (unencrypted_pem(forged.key), forged.certificate_chain_pem())
    ca = RegionFiles(server.data).ca_cert.read_bytes()

    async def attempt(creds: grpc.ChannelCredentials) -> grpc.StatusCode:
        async with grpc.aio.secure_channel(f"localhost:{server.mtls_port}", creds) as channel:
            try:
                await pb_grpc.LedgerServiceStub(channel).GetCheckpoint(
                    pb.GetCheckpointRequest(), timeout=5
                )
            except grpc.aio.AioRpcError as error:
                return error.code()
        return grpc.StatusCode.OK

    assert run(attempt(grpc.ssl_channel_credentials(ca))) == grpc.StatusCode.UNAVAILABLE
    forged_creds = grpc.ssl_channel_credentials(ca, *forged_identity)
    assert run(attempt(forged_creds)) == grpc.StatusCode.UNAVAILABLE


def test_unbuilt_capabilities_answer_unimplemented_with_their_name(server: Server) -> None:
    from licenceledger.federation.v1 import federation_service_pb2 as federation_pb
    from licenceledger.federation.v1 import federation_service_pb2_grpc as federation_grpc

    async def go() -> grpc.aio.AioRpcError:
        async with server.channel() as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await federation_grpc.FederationServiceStub(channel).GetTrustList(
                    federation_pb.GetTrustListRequest()
                )
            return caught.value

    error = run(go())
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "cross-region recognition" in (error.details() or "")
    assert _details(error)[0] == "CAPABILITY_NOT_YET_AVAILABLE"


def test_restart_keeps_data_and_stops_gracefully(server: Server) -> None:
    async def head() -> bytes:
        async with server.channel() as channel:
            reply = await pb_grpc.LedgerServiceStub(channel).GetCheckpoint(
                pb.GetCheckpointRequest()
            )
            note: bytes = reply.checkpoint.note
            return note

    before = run(head())
    assert server.stop() == 0
    banner = server.start()
    assert not any("bootstrapped" in line for line in banner)  # reused, not recreated
    assert run(head()) == before


def test_every_rpc_has_exactly_one_authorization_rule() -> None:
    served = {
        f"/{service.full_name}/{method.name}"
        for service in (*SERVING, *(planned for planned, _ in PLANNED))
        for method in service.methods
    }
    api_rules = {m for m in RULES if not m.startswith("/grpc.")}
    assert served == api_rules
