"""`licence-ledger serve`: the grpc.aio server of one region.

Two listeners share one server: the public port speaks TLS without asking for a
client certificate (verification and ledger reads), the mutual-TLS port requires one
(departments and admins). grpc-python cannot *optionally* request a client
certificate, and two ports also let operators firewall them differently.

By default front-end processes hold the listeners and forward each call to this
process (`service.front`), which then runs only the handlers; with
`front_processes = 0` it serves gRPC itself.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ledger import Ledger
from licenceledger.federation.v1 import federation_service_pb2
from licenceledger.ledger.v1 import ledger_service_pb2, ledger_service_pb2_grpc
from licenceledger.licence.v1 import licence_service_pb2, licence_service_pb2_grpc
from licenceledger.registry.v1 import registry_service_pb2, registry_service_pb2_grpc
from licenceledger.seal.v1 import seal_service_pb2, seal_service_pb2_grpc
from licenceledger.verification.v1 import verification_service_pb2, verification_service_pb2_grpc
from service.authz import RegionAuthorizer
from service.bootstrap import Region, bootstrap, is_bootstrapped, load_region
from service.config import ConfigError, ServerSettings
from service.datadir import DataDir
from service.errors import unimplemented
from service.event_loop import run_event_loop
from service.front.protocol import FrontEndConfig
from service.front.supervisor import FrontEnds, ListenError
from service.guard import GuardedServer
from service.ledger_api import LedgerServicer
from service.licence_api import LicenceServicer
from service.region.common import RegionContext, utc_now
from service.region.documents import DocumentStore
from service.region.licences import Licences
from service.region.registry import Registry
from service.region.revocations import LtvSettings, LtvSource
from service.region.sealed_documents import Sealing
from service.region.sealing import SealingPool
from service.region.seals import Seals
from service.region.signing_worker import SigningWorker
from service.region.verification import LedgerRecords
from service.registry_api import RegistryServicer
from service.seal_api import SealServicer
from service.verification_api import VerificationServicer
from signer.keystore import FileKeyStore
from verifier.verifier import Verifier

log = logging.getLogger("licence_ledger.server")

LEDGER = ledger_service_pb2.DESCRIPTOR.services_by_name["LedgerService"]
SERVING: tuple[ServiceDescriptor, ...] = (
    LEDGER,
    registry_service_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    licence_service_pb2.DESCRIPTOR.services_by_name["LicenceService"],
    seal_service_pb2.DESCRIPTOR.services_by_name["SealService"],
    verification_service_pb2.DESCRIPTOR.services_by_name["VerificationService"],
)
# Services whose behaviour arrives in later work, with the capability they will provide.
PLANNED: tuple[tuple[ServiceDescriptor, str], ...] = (
    (
        federation_service_pb2.DESCRIPTOR.services_by_name["FederationService"],
        "cross-region recognition",
    ),
)


def _planned_handler(service: ServiceDescriptor, capability: str) -> grpc.GenericRpcHandler:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        request_type = message_factory.GetMessageClass(method.input_type)
        response_type = message_factory.GetMessageClass(method.output_type)
        label = f"{capability} ({method.name})"

        async def refuse(request: Any, context: Any, label: str = label) -> Any:
            raise unimplemented(label)

        make: Callable[..., grpc.RpcMethodHandler[Any, Any]] = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(
            refuse,
            request_deserializer=request_type.FromString,
            response_serializer=response_type.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


def ltv_settings(settings: ServerSettings) -> LtvSettings | None:
    """The operator's PAdES B-LT settings, read and checked (ConfigError if unusable)."""
    if not settings.timestamp_roots:
        return None
    directory = Path(settings.revocation_data) if settings.revocation_data else None
    if directory is not None and not directory.is_dir():
        raise ConfigError(f"revocation_data {directory} is not a directory")
    try:
        ltv = LtvSettings.load(Path(settings.timestamp_roots), directory)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"timestamp_roots: {exc}") from exc
    if not ltv.timestamp_roots:
        raise ConfigError(f"timestamp_roots {settings.timestamp_roots} holds no certificate")
    return ltv


def _ltv_source(settings: ServerSettings, ledger: Ledger, region: Region) -> LtvSource | None:
    ltv = ltv_settings(settings)
    return None if ltv is None else LtvSource(ledger, region.ca, ltv, utc_now)


# Calls free almost all they allocate by reference counting; the cyclic collector's
# young-generation passes mostly rescan live objects. Rarer passes over only what
# was made after start-up gave 3-5% more issuance calls/s over seven paired runs
# (this machine's run-to-run noise is larger, so it is a modest, not a sure, gain).
_YOUNG_COLLECTION_THRESHOLD = 50_000


def _settle_garbage_collection() -> None:
    """Leave what start-up made (region, keys, descriptors) out of every collection."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, middle, old)


class RegionServer:
    """The running server: start, wait for a signal, stop gracefully."""

    def __init__(
        self,
        settings: ServerSettings,
        region: Region,
        ledger: Ledger,
        keys: FileKeyStore,
        pool: SealingPool | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.pool = pool
        options = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # A second server started on the same ports fails rather than share them.
            ("grpc.so_reuseport", 0),
        ]
        fronted = settings.front_processes > 0
        # Every handler registered on it runs inside the guard (authorization, errors).
        # With front ends, this process serves no gRPC: they forward each call to it.
        self.server = GuardedServer(
            RegionAuthorizer(region.ca.certificate),
            None if fronted else grpc.aio.server(options=options),
        )
        ledger_service_pb2_grpc.add_LedgerServiceServicer_to_server(
            LedgerServicer(ledger), self.server
        )
        data = DataDir(settings.data_dir)
        self.signing_worker = (
            SigningWorker(data.keys_path, data.passphrase()) if settings.signing_worker else None
        )
        context = RegionContext(
            ledger,
            region.ca,
            keys,
            signing_worker=self.signing_worker,
            sealing_pool=pool,
            document_store=DocumentStore(data.documents_path),
            ltv=_ltv_source(settings, ledger, region),
        )
        registry_service_pb2_grpc.add_RegistryServiceServicer_to_server(
            RegistryServicer(Registry(context)), self.server
        )
        licence_service_pb2_grpc.add_LicenceServiceServicer_to_server(
            LicenceServicer(Licences(context)), self.server
        )
        seal_service_pb2_grpc.add_SealServiceServicer_to_server(
            SealServicer(Seals(context), Sealing(context)), self.server
        )
        verification_service_pb2_grpc.add_VerificationServiceServicer_to_server(
            VerificationServicer(Verifier(LedgerRecords(ledger, region.ca)), pool), self.server
        )
        self.server.add_generic_rpc_handlers(
            tuple(_planned_handler(s, capability) for s, capability in PLANNED)
        )
        names = [*(s.full_name for s in SERVING), *(s.full_name for s, _ in PLANNED)]
        self._service_names = names
        self.health: health.aio.HealthServicer | None = None
        self.front_ends: FrontEnds | None = None
        if fronted:
            config = FrontEndConfig(
                address=settings.address,
                mtls_address=settings.mtls_address,
                server_key_pem=region.server_key_pem,
                server_certificate_pem=region.server_certificate_pem,
                ca_pem=region.ca_pem,
                max_message_bytes=settings.max_message_bytes,
                methods={
                    f"/{service.full_name}/{method.name}": method.server_streaming
                    for service in (*SERVING, *(s for s, _ in PLANNED))
                    for method in service.methods
                },
                serving=tuple(s.full_name for s in SERVING),
                planned=tuple(s.full_name for s, _ in PLANNED),
                log_level=settings.log_level,
                share_ports=settings.front_processes > 1,
            )
            self.front_ends = FrontEnds(config, self.server, settings.front_processes)
            self.port = self.mtls_port = 0  # the front ends' ports, once they listen
            return
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [
                *names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            self.server,
        )
        identity = [(region.server_key_pem, region.server_certificate_pem)]
        try:
            self.port = self.server.add_secure_port(
                settings.address, grpc.ssl_server_credentials(identity)
            )
            self.mtls_port = self.server.add_secure_port(
                settings.mtls_address,
                grpc.ssl_server_credentials(
                    identity, root_certificates=region.ca_pem, require_client_auth=True
                ),
            )
        except RuntimeError as exc:  # grpc's "failed to bind"
            raise ListenError(f"cannot listen: {exc}") from exc

    async def start(self) -> None:
        if self.signing_worker is not None:
            # Ready in about a second; issuance signs in process until then.
            await self.signing_worker.start()
        if self.front_ends is not None:
            await self.front_ends.start()
            self.port, self.mtls_port = self.front_ends.port, self.front_ends.mtls_port
        else:
            await self.server.start()
            await self._report_health()
        _settle_garbage_collection()

    async def _report_health(self) -> None:
        assert self.health is not None  # noqa: S101 — served in this process
        for name in ("", *(s.full_name for s in SERVING)):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        for name in self._service_names[len(SERVING) :]:
            # Reachable, but every call answers UNIMPLEMENTED until the capability lands.
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

    async def stop(self) -> None:
        """Stop accepting calls, let in-flight ones finish, then flush the ledger."""
        grace = self.settings.shutdown_grace_seconds
        if self.front_ends is not None:
            await self.front_ends.stop(grace)
        else:
            assert self.health is not None  # noqa: S101 — served in this process
            await self.health.enter_graceful_shutdown()
            await self.server.stop(grace)
        await self.ledger.aclose()
        if self.signing_worker is not None:
            await self.signing_worker.aclose()
        if self.pool is not None:
            self.pool.close()


async def prepare(
    settings: ServerSettings, out: Callable[[str], None]
) -> tuple[Region, Ledger, FileKeyStore]:
    """Bootstrap on first run, then load the region, its key store and the ledger."""
    data = DataDir(settings.data_dir)
    if not is_bootstrapped(data):
        made = await bootstrap(data, settings.region, settings.region_name)
        out(f"first run: bootstrapped development region {settings.region} in {data.root}")
        for line in made:
            out(f"  {line}")
    return load_region(data), data.open(), data.key_store()


def start_pdf_workers(settings: ServerSettings) -> SealingPool:
    """Fork the PDF workers: before RocksDB is opened or any gRPC object exists."""
    data = DataDir(settings.data_dir)
    data.root.mkdir(parents=True, exist_ok=True)
    pool = SealingPool(
        data.keys_path,
        data.passphrase(),
        settings.pdf_workers or None,
        timestamp_url=settings.timestamp_url,
    )
    pool.start()
    return pool


async def run(settings: ServerSettings, out: Callable[[str], None]) -> None:
    ltv_settings(settings)  # refuse unusable B-LT settings before forking the workers
    pool = start_pdf_workers(settings)
    try:
        region, ledger, keys = await prepare(settings, out)
    except BaseException:
        pool.close()
        raise
    try:
        server = RegionServer(settings, region, ledger, keys, pool)
    except BaseException:  # its ports, most often: nothing was started
        ledger.close()
        pool.close()
        raise
    # Before serving: a signal as soon as the ports are announced must still stop it gracefully.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
    except BaseException:
        await server.stop()  # what did start: the signing worker, the PDF workers
        raise
    root = settings.data_dir
    out(
        f"licence-ledger serving region {region.code}: public TLS on {settings.host}:"
        f"{server.port}, mutual TLS on {settings.host}:{server.mtls_port}"
    )
    out(f"  trust {root}/pki/region-ca.pem; admin identity {root}/pki/admin.pem")
    await stop.wait()
    out("shutting down: finishing in-flight calls")
    await server.stop()
    out("stopped")


def serve(settings: ServerSettings) -> int:
    logging.basicConfig(level=settings.log_level, stream=sys.stderr)

    def out(line: str) -> None:
        print(line, flush=True)

    run_event_loop(run(settings, out))
    return 0
