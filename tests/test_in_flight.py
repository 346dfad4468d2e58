"""Issuances signed by the worker: predicted ledger indexes and serials, checked at submit.

The bookkeeping (`InFlight`) is tested against a fake ledger, by hand and against a
model of the ledger (hypothesis); then a real in-process server is driven over mutual
TLS with bursts of issuances while other changes are recorded, the worker is killed,
or requests collide, and every credential is checked against the ledger itself: its
QR code names the index its record really has.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.rpc import BENCH_DEPARTMENT, _issue_request, _setup_department
from ledger import Ledger
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.licence.v1 import licence_service_pb2 as pb
from licenceledger.licence.v1 import licence_service_pb2_grpc as pb_grpc
from licenceledger.record.v1 import record_pb2
from licenceledger.registry.v1 import registry_pb2
from licenceledger.registry.v1 import registry_service_pb2 as reg
from licenceledger.registry.v1 import registry_service_pb2_grpc as reg_grpc
from service.bootstrap import client_credentials_pem
from service.config import ServerSettings
from service.datadir import DataDir
from service.region import index
from service.region.in_flight import InFlight, Ticket
from service.server import RegionServer, prepare
from signer import dsse, qr
from signer.identifiers import LicenceId
from tests.test_signing_worker import eventually

# -- the bookkeeping, against a fake ledger ---------------------------------------------


@dataclass
class FakeLedger:
    next_index: int = 0


def as_ledger(fake: FakeLedger) -> Ledger:
    return cast(Ledger, fake)  # InFlight reads only `next_index`


def keys_of(n: int) -> tuple[tuple[str, ...], ...]:
    return (("department:D", f"request-{n}"), ("T", f"number-{n}"))


SERIAL_A, SERIAL_B = ("T", "issuer-a"), ("T", "issuer-b")


def run_async(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(test())


def test_predictions_count_the_issuances_ahead() -> None:
    async def go() -> None:
        ledger, in_flight = FakeLedger(10), InFlight()
        tickets = [in_flight.enter(as_ledger(ledger), keys_of(n), SERIAL_A) for n in range(3)]
        assert [t.ledger_index for t in tickets] == [10, 11, 12]
        assert [t.serials_ahead for t in tickets] == [0, 1, 2]
        assert len(in_flight) == 3
        # Each holds once exactly the issuances ahead of it are recorded.
        for ticket in tickets:
            assert all(
                not in_flight.holds(later, as_ledger(ledger))
                for later in tickets
                if later.ledger_index > ticket.ledger_index
            )
            assert in_flight.holds(ticket, as_ledger(ledger))
            ledger.next_index += 1  # submitted
            in_flight.leave(ticket, recorded=True)
        assert len(in_flight) == 0
        # Nothing in flight: the next prediction is simply the ledger's next index.
        fresh = in_flight.enter(as_ledger(ledger), keys_of(9), SERIAL_A)
        assert (fresh.ledger_index, fresh.serials_ahead) == (13, 0)
        assert in_flight.holds(fresh, as_ledger(ledger))

    run_async(go)


def test_an_issuance_leaving_unrecorded_invalidates_those_after_it() -> None:
    async def go() -> None:
        ledger, in_flight = FakeLedger(5), InFlight()
        first, second, third = (
            in_flight.enter(as_ledger(ledger), keys_of(n), SERIAL_A) for n in range(3)
        )
        in_flight.leave(first, recorded=False)
        # Even if something else took index 5, `second` counted `first` as recorded
        # before it and its serial would be one too high.
        ledger.next_index = 6
        assert not in_flight.holds(second, as_ledger(ledger))
        ledger.next_index = 5
        assert not in_flight.holds(second, as_ledger(ledger))
        in_flight.leave(second, recorded=False)
        assert not in_flight.holds(third, as_ledger(ledger))
        in_flight.leave(third, recorded=False)
        # Those that enter afterwards predict from the ledger as it is.
        ledger.next_index = 7
        after = in_flight.enter(as_ledger(ledger), keys_of(3), SERIAL_A)
        assert (after.ledger_index, after.serials_ahead) == (7, 0)
        assert in_flight.holds(after, as_ledger(ledger))

    run_async(go)


def test_another_append_invalidates_the_predictions() -> None:
    async def go() -> None:
        ledger, in_flight = FakeLedger(3), InFlight()
        first = in_flight.enter(as_ledger(ledger), keys_of(0), SERIAL_A)
        second = in_flight.enter(as_ledger(ledger), keys_of(1), SERIAL_A)
        ledger.next_index += 1  # e.g. a status change, recorded while both were signed
        assert not in_flight.holds(first, as_ledger(ledger))
        in_flight.leave(first, recorded=False)
        assert not in_flight.holds(second, as_ledger(ledger))

    run_async(go)


def test_a_conflicting_call_waits_for_the_holder() -> None:
    async def go() -> None:
        ledger, in_flight = FakeLedger(0), InFlight()
        ticket = in_flight.enter(as_ledger(ledger), keys_of(1), SERIAL_A)
        request_key, number_key = keys_of(1)
        assert in_flight.conflict(request_key) is ticket.ended
        assert in_flight.conflict(("department:D", "other"), number_key) is ticket.ended
        assert in_flight.conflict(*keys_of(2)) is None
        waiter = asyncio.create_task(asyncio.wait_for(ticket.ended, 5))
        await asyncio.sleep(0)
        assert not waiter.done()
        ledger.next_index += 1
        in_flight.leave(ticket, recorded=True)
        await waiter  # resolves on leave
        assert in_flight.conflict(request_key, number_key) is None

    run_async(go)


def test_serials_count_per_type_and_issuer() -> None:
    async def go() -> None:
        ledger, in_flight = FakeLedger(0), InFlight()
        a0 = in_flight.enter(as_ledger(ledger), keys_of(0), SERIAL_A)
        b0 = in_flight.enter(as_ledger(ledger), keys_of(1), SERIAL_B)
        a1 = in_flight.enter(as_ledger(ledger), keys_of(2), SERIAL_A)
        assert [t.serials_ahead for t in (a0, b0, a1)] == [0, 0, 1]
        assert [t.ledger_index for t in (a0, b0, a1)] == [0, 1, 2]
        ledger.next_index += 1
        in_flight.leave(a0, recorded=True)
        a2 = in_flight.enter(as_ledger(ledger), keys_of(3), SERIAL_A)
        b1 = in_flight.enter(as_ledger(ledger), keys_of(4), SERIAL_B)
        assert (a2.serials_ahead, b1.serials_ahead) == (1, 1)  # a1 and b0 still in flight
        assert (a2.ledger_index, b1.ledger_index) == (3, 4)

    run_async(go)


# An operation on the model: a call entering, the oldest in-flight call resuming
# (checking its prediction, then submitting or starting again in process: the worker
# answers in order), any in-flight call ending early (cancelled, or the worker could
# not sign it), or another change recorded (perhaps an issuance signed in process).
Operation = tuple[str, int]
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("enter"), st.integers(0, 1)),
        st.tuples(st.just("resume"), st.just(0)),
        st.tuples(st.just("cancel"), st.integers(0, 7)),
        st.tuples(st.just("other"), st.integers(-1, 1)),
    ),
    max_size=40,
)


@dataclass
class Model:
    ledger: FakeLedger = field(default_factory=FakeLedger)
    last_serial: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    # In entry order: each ticket with the serial its call put in the licence.
    flying: list[tuple[Ticket, int]] = field(default_factory=list)

    def append(self, serial_key: tuple[str, str] | None) -> None:
        self.ledger.next_index += 1
        if serial_key is not None:
            self.last_serial[serial_key] += 1


@given(OPERATIONS)
@settings(max_examples=300, deadline=None)
def test_a_prediction_that_holds_is_right(operations: list[Operation]) -> None:
    """The oldest call resumes first (the worker answers in order); whatever else
    happens meanwhile, `holds` is true only when the ledger index and the serial the
    call signed are exactly the ones its record gets."""

    async def go() -> None:
        model, in_flight = Model(), InFlight()
        serial_keys = (SERIAL_A, SERIAL_B)
        for n, (kind, arg) in enumerate(operations):
            if kind == "enter":
                key = serial_keys[arg]
                ticket = in_flight.enter(as_ledger(model.ledger), keys_of(n), key)
                model.flying.append((ticket, model.last_serial[key] + 1 + ticket.serials_ahead))
            elif kind in ("resume", "cancel") and model.flying:
                ticket, serial = model.flying.pop(arg % len(model.flying))
                if kind == "cancel":
                    in_flight.leave(ticket, recorded=False)
                    continue
                if in_flight.holds(ticket, as_ledger(model.ledger)):
                    assert ticket.ledger_index == model.ledger.next_index
                    assert serial == model.last_serial[ticket.serial_key] + 1
                    model.append(ticket.serial_key)
                    in_flight.leave(ticket, recorded=True)
                else:
                    in_flight.leave(ticket, recorded=False)
                    model.append(ticket.serial_key)  # signed in process instead
            elif kind == "other":
                model.append(serial_keys[arg] if arg >= 0 else None)
            assert len(in_flight) == len(model.flying)

    run_async(go)


@given(st.lists(st.integers(0, 1), min_size=1, max_size=30))
@settings(max_examples=50, deadline=None)
def test_undisturbed_predictions_all_hold(serial_picks: list[int]) -> None:
    """Results come back in order; with nothing else recorded, every prediction holds."""

    async def go() -> None:
        model, in_flight = Model(), InFlight()
        keys = (SERIAL_A, SERIAL_B)
        for n, pick in enumerate(serial_picks):
            ticket = in_flight.enter(as_ledger(model.ledger), keys_of(n), keys[pick])
            model.flying.append((ticket, model.last_serial[keys[pick]] + 1 + ticket.serials_ahead))
        for ticket, serial in model.flying:
            assert in_flight.holds(ticket, as_ledger(model.ledger))
            assert serial == model.last_serial[ticket.serial_key] + 1
            model.append(ticket.serial_key)
            in_flight.leave(ticket, recorded=True)

    run_async(go)


# -- a real server over mutual TLS ------------------------------------------------------


@dataclass
class Running:
    server: RegionServer
    licences: Any  # the department's LicenceService stub (aio: the stubs type it sync)
    registry: Any  # the admin's RegistryService stub
    trusted: dict[bytes, dsse.VerifyingKey]  # the department's keys by short key id


def department_keys(server: RegionServer) -> dict[bytes, dsse.VerifyingKey]:
    department = index.read_department(server.ledger, BENCH_DEPARTMENT)
    assert department is not None
    trusted: dict[bytes, dsse.VerifyingKey] = {}
    for key in department.keys:
        public = x509.load_der_x509_certificate(key.certificate.certificate).public_key()
        assert isinstance(public, Ed25519PublicKey | ec.EllipticCurvePublicKey)
        trusted[bytes.fromhex(key.certificate.key_id)[: qr.SHORT_KEY_ID_BYTES]] = public
    return trusted


@asynccontextmanager
async def running_region(root: Path, *, signing_worker: bool = True) -> AsyncIterator[Running]:
    """A region server in this process with the bench licence type and department."""
    threshold = gc.get_threshold()
    settings = ServerSettings(
        data_dir=root,
        port=0,
        mtls_port=0,
        log_level="WARNING",
        shutdown_grace_seconds=1,
        signing_worker=signing_worker,
    )
    region, ledger, keys = await prepare(settings, lambda line: None)
    server = RegionServer(settings, region, ledger, keys)
    await server.start()
    try:
        data = DataDir(root)
        identity = await _setup_department(server.mtls_port, data, region.ca_pem)
        admin = client_credentials_pem(data, "admin")
        target = f"localhost:{server.mtls_port}"
        department_creds = grpc.ssl_channel_credentials(region.ca_pem, *identity)
        admin_creds = grpc.ssl_channel_credentials(region.ca_pem, *admin)
        async with (
            grpc.aio.secure_channel(target, department_creds) as department_channel,
            grpc.aio.secure_channel(target, admin_creds) as admin_channel,
        ):
            worker = server.signing_worker
            if worker is not None:
                await eventually(lambda: worker.available, 20)
            yield Running(
                server,
                pb_grpc.LicenceServiceStub(department_channel),
                reg_grpc.RegistryServiceStub(admin_channel),
                department_keys(server),
            )
    finally:
        await server.stop()
        # The server tunes the collector for itself (see `_settle_garbage_collection`).
        gc.unfreeze()
        gc.set_threshold(*threshold)


def issuances(server: RegionServer) -> dict[str, list[tuple[int, record_pb2.LedgerRecord]]]:
    """The ledger's first-issuance records by request id, with their indexes."""
    found: dict[str, list[tuple[int, record_pb2.LedgerRecord]]] = defaultdict(list)
    for at in range(server.ledger.size):
        record = record_pb2.LedgerRecord.FromString(server.ledger.leaf(at).entry)
        if (
            record.WhichOneof("change") == "licence_version_issued"
            and record.licence_version_issued.kind == lpb.LICENCE_VERSION_KIND_ISSUED
        ):
            found[record.request_id].append((at, record))
    return found


def check_issued(running: Running, credentials: dict[str, lpb.LicenceCredential]) -> None:
    """Every credential is its request's one record, and its QR code names that record."""
    server = running.server
    records = issuances(server)
    assert all(len(found) == 1 for found in records.values())
    for request_id, credential in credentials.items():
        [(at, record)] = records[request_id]
        change = record.licence_version_issued
        assert change.qr_payload == credential.qr_payload
        assert change.envelope == credential.envelope
        assert credential.proof.leaf_index == at
        claims = qr.verify_qr(credential.qr_payload, running.trusted)
        assert claims.ledger_index == at
        assert claims.licence_id == credential.licence.licence_id
        assert claims.licence_number == credential.licence.licence_number
        # The index agrees with the ledger too.
        lid = LicenceId.parse(credential.licence.licence_id)
        state = index.read_licence_state(server.ledger, lid.lineage)
        assert state is not None
        assert state.versions[0].ledger_index == at
        assert state.versions[0].licence_id == lid.text
    # Serials are distinct, gapless and in ledger order, over every licence issued.
    serials = [
        LicenceId.parse(index.licence_of(r.licence_version_issued.envelope).licence_id).serial
        for _, r in sorted(at_record for found in records.values() for at_record in found)
    ]
    assert serials == list(range(serials[0], serials[0] + len(serials)))


@dataclass
class Spy:
    held: list[bool] = field(default_factory=list)  # each worker-signed prediction's fate
    waited: int = 0  # calls that found a conflicting issuance in flight


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Watches the bookkeeping: how often predictions held, how often calls waited."""
    seen = Spy()
    holds, conflict = InFlight.holds, InFlight.conflict

    def counting_holds(self: InFlight, ticket: Ticket, ledger: Ledger) -> bool:
        result = holds(self, ticket, ledger)
        seen.held.append(result)
        return result

    def counting_conflict(self: InFlight, *keys: tuple[str, ...]) -> asyncio.Future[None] | None:
        busy = conflict(self, *keys)
        seen.waited += busy is not None
        return busy

    monkeypatch.setattr(InFlight, "holds", counting_holds)
    monkeypatch.setattr(InFlight, "conflict", counting_conflict)
    return seen


def request(n: int, prefix: str = "t") -> pb.IssueLicenceRequest:
    issue = _issue_request(n)
    issue.request_id = f"{prefix}-{n}"
    issue.licence_number = f"{prefix.upper()}-{n:08d}"
    return issue


async def issue_all(
    running: Running,
    requests: Iterable[pb.IssueLicenceRequest],
    *,
    in_flight: int = 32,
    after_each: Callable[[int], None] = lambda done: None,
) -> dict[str, lpb.LicenceCredential]:
    gate = asyncio.Semaphore(in_flight)
    done: dict[str, lpb.LicenceCredential] = {}

    async def one(issue: pb.IssueLicenceRequest) -> None:
        async with gate:
            reply = await running.licences.IssueLicence(issue, timeout=30)
        done[issue.request_id] = reply.credential
        after_each(len(done))

    await asyncio.gather(*(one(issue) for issue in requests))
    return done


def test_burst_with_other_changes_keeps_every_prediction_right(tmp_path: Path, spy: Spy) -> None:
    async def go() -> None:
        async with running_region(tmp_path) as running:
            first = await issue_all(running, [request(n, "early") for n in range(6)])
            burst_over = asyncio.Event()
            changes = 0

            async def toggle(licence_id: str, name: str) -> None:
                nonlocal changes
                n = 0
                while not burst_over.is_set():
                    for status in (lpb.LICENCE_STATUS_SUSPENDED, lpb.LICENCE_STATUS_VALID):
                        n += 1
                        await running.licences.ChangeLicenceStatus(
                            pb.ChangeLicenceStatusRequest(
                                request_id=f"{name}-{n}",
                                licence_id=licence_id,
                                status=status,
                                reason="检查",
                            ),
                            timeout=30,
                        )
                        changes += 1

            async def register_types() -> None:
                nonlocal changes
                n = 0
                while not burst_over.is_set():
                    n += 1
                    await running.registry.RegisterLicenceType(
                        reg.RegisterLicenceTypeRequest(
                            request_id=f"type-{n}",
                            licence_type_code=f"X{n}",
                            name=f"测试类型{n}",
                            face_fields=[
                                registry_pb2.FaceFieldSpec(
                                    name="field_0",
                                    label_zh="字段",
                                    format=registry_pb2.FACE_FIELD_FORMAT_STRING,
                                )
                            ],
                        ),
                        timeout=30,
                    )
                    changes += 1

            async def burst() -> dict[str, lpb.LicenceCredential]:
                try:
                    return await issue_all(running, [request(n) for n in range(150)])
                finally:
                    burst_over.set()

            async with asyncio.timeout(60):
                meanwhile = asyncio.gather(
                    *(
                        toggle(credential.licence.licence_id, f"toggle-{i}")
                        for i, credential in enumerate(first.values())
                    ),
                    register_types(),
                )
                issued = await burst()
                await meanwhile
            assert len(issued) == 150
            assert changes > 0
            check_issued(running, {**first, **issued})
            # The worker signed most, and some of its predictions were overtaken.
            assert spy.held.count(True) > 0
            assert spy.held.count(False) > 0
            assert running.server.signing_worker is not None
            assert running.server.signing_worker.available

    asyncio.run(go())


def test_concurrent_duplicates(tmp_path: Path, spy: Spy) -> None:
    async def go() -> None:
        async with running_region(tmp_path) as running:
            # The same request twice at once: one licence, the same credential twice.
            retried = [request(n, "same") for n in range(10)]
            # The same licence number in two requests at once: one is issued.
            clashing = [request(n, "one") for n in range(10)]
            rivals = [request(n, "one") for n in range(10)]
            for rival in rivals:
                rival.request_id += "-rival"
            worker = running.server.signing_worker
            assert worker is not None
            pid = worker.pid
            assert pid is not None
            # Paused, the worker keeps the first of each pair in flight until the second
            # has come and found it there.
            os.kill(pid, signal.SIGSTOP)
            try:
                calls = [running.licences.IssueLicence(r, timeout=30) for r in retried * 2]
                calls += [running.licences.IssueLicence(r, timeout=30) for r in clashing + rivals]
                async with asyncio.timeout(30):
                    gathered = asyncio.gather(*calls, return_exceptions=True)
                    await eventually(lambda: spy.waited > 0, 20)
                    os.kill(pid, signal.SIGCONT)
                    replies = await gathered
            finally:
                os.kill(pid, signal.SIGCONT)
            twice, numbered = replies[:20], replies[20:]
            credentials: dict[str, lpb.LicenceCredential] = {}
            for n, issue in enumerate(retried):
                a, b = twice[n], twice[n + 10]
                assert isinstance(a, pb.IssueLicenceResponse)
                assert isinstance(b, pb.IssueLicenceResponse)
                assert a.credential.licence == b.credential.licence
                assert a.credential.envelope == b.credential.envelope
                assert a.credential.qr_payload == b.credential.qr_payload
                assert a.credential.proof.leaf_index == b.credential.proof.leaf_index
                credentials[issue.request_id] = a.credential
            for n in range(10):
                outcomes = [numbered[n], numbered[n + 10]]
                won = [o for o in outcomes if isinstance(o, pb.IssueLicenceResponse)]
                lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
                assert (len(won), len(lost)) == (1, 1), outcomes
                assert lost[0].code() == grpc.StatusCode.ALREADY_EXISTS
                winner = (clashing if won[0] is outcomes[0] else rivals)[n]
                loser = (rivals if won[0] is outcomes[0] else clashing)[n]
                credentials[winner.request_id] = won[0].credential
                assert loser.request_id not in issuances(running.server)
            check_issued(running, credentials)
            assert len(issuances(running.server)) == 20
            assert spy.held.count(True) > 0  # the worker signed some
            assert spy.waited > 0  # and duplicates waited for the call in flight

    asyncio.run(go())


def test_worker_killed_mid_burst(tmp_path: Path, spy: Spy) -> None:
    async def go() -> None:
        async with running_region(tmp_path) as running:
            worker = running.server.signing_worker
            assert worker is not None
            pid = worker.pid
            assert pid is not None
            killed_after = 0

            def kill_at_30(done: int) -> None:
                nonlocal killed_after
                if done == 30:
                    os.kill(pid, signal.SIGKILL)
                    killed_after = done

            async with asyncio.timeout(60):
                issued = await issue_all(
                    running, [request(n) for n in range(120)], after_each=kill_at_30
                )
            assert killed_after == 30
            assert len(issued) == 120
            assert not worker.available
            check_issued(running, issued)
            assert spy.held.count(True) > 0  # signed by the worker before
            # Afterwards issuance carries on in process.
            later = await issue_all(running, [request(n, "later") for n in range(5)])
            check_issued(running, {**issued, **later})

    asyncio.run(go())


def test_issuance_without_the_worker(tmp_path: Path, spy: Spy) -> None:
    async def go() -> None:
        async with running_region(tmp_path, signing_worker=False) as running:
            assert running.server.signing_worker is None
            async with asyncio.timeout(30):
                issued = await issue_all(running, [request(n) for n in range(40)], in_flight=16)
            check_issued(running, issued)
            assert spy.held == []  # nothing was predicted

    asyncio.run(go())
