"""Front ends (`service.front`): real `serve` processes, real TLS, no mocks.

By default the region process serves no gRPC itself: front-end child processes hold
the ports and forward every call's bytes to it. These tests find the children through
/proc (Linux), kill them and their parent, and check what a client sees: the same
answers, details and streams as without front ends, the same ports after a front end
is replaced, and no process left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from licenceledger.ledger.v1 import ledger_service_pb2 as ledger_pb
from licenceledger.ledger.v1 import ledger_service_pb2_grpc as ledger_grpc
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.licence.v1 import licence_service_pb2 as pb
from licenceledger.licence.v1 import licence_service_pb2_grpc as pb_grpc
from service.bootstrap import RegionFiles
from service.datadir import DataDir
from service.front.protocol import STREAM_WINDOW
from service.front.supervisor import ListenError, refuse_if_taken
from service.server import RegionServer
from signer.keystore import PASSPHRASE_ENV
from tests.e2e import (
    COMPANY,
    DEPT_B,
    PERMIT,
    Region,
    call,
    failure,
    issue_request,
    ledger_size,
    open_region,
    run,
)
from tests.serverproc import Server, free_ports
from tests.test_in_flight import request, running_region
from tests.test_signing_worker import eventually

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

FRONT_MODULE = "service.front.process"
ISSUE = "/licenceledger.licence.v1.LicenceService/IssueLicence"
NO_SUCH_METHOD = "/licenceledger.licence.v1.LicenceService/NoSuchMethod"
PLANNED_METHOD = "/licenceledger.federation.v1.FederationService/GetTrustList"
T = TypeVar("T")


# -- processes and connections, as /proc shows them -------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of `pid`, or None if there is no such process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    state, ppid = text[text.rindex(")") + 2 :].split()[:2]
    return state, int(ppid)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _runs_front_end(pid: int) -> bool:
    return FRONT_MODULE.encode() in _cmdline(pid).split(b"\0")


def alive(pid: int) -> bool:
    """`pid` is a process, and not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def is_front_end(pid: int) -> bool:
    """`pid` is a live front-end process."""
    return alive(pid) and _runs_front_end(pid)


def children(parent: int) -> dict[int, bytes]:
    """The live processes whose parent is `parent`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            pid = int(entry.name)
            stat = _stat(pid)
            if stat is not None and stat[0] != "Z" and stat[1] == parent:
                found[pid] = _cmdline(pid)
    return found


def front_end_pids(parent: int) -> set[int]:
    """The live front-end processes whose parent is `parent`."""
    return {pid for pid in children(parent) if _runs_front_end(pid)}


def stop(server: Server) -> None:
    """Stop `server` if it runs: gracefully, so that it stops its children, else kill it."""
    process = server.process
    if process is None or process.poll() is not None:
        return
    try:
        server.stop()
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def kill_leftovers(processes: dict[int, bytes]) -> None:
    """Kill what a test's server left running (its parent killed, nothing stops them):
    `children` of the server, each only while it still runs the same command."""
    for pid, cmdline in processes.items():
        if alive(pid) and _cmdline(pid) == cmdline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def server_pid(server: Server) -> int:
    assert server.process is not None
    return server.process.pid


ESTABLISHED, LISTEN = "01", "0A"  # TCP states as /proc/net/tcp writes them


def sockets(pid: int, port: int, state: str) -> int:
    """TCP sockets on local `port` in `state` that process `pid` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            if local_port == port and parts[3] == state and parts[9] in inodes:
                count += 1
    return count


def listens(pid: int, server: Server) -> tuple[bool, bool]:
    """Whether process `pid` listens on the public and on the mutual-TLS port."""
    return sockets(pid, server.port, LISTEN) > 0, sockets(pid, server.mtls_port, LISTEN) > 0


def until(condition: Callable[[], T], seconds: float, what: str) -> T:
    """`condition()` once it is truthy, polling; AssertionError after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.05)


# -- clients ----------------------------------------------------------------------------


def channel(server: Server, identity: tuple[bytes, bytes] | None = None) -> grpc.aio.Channel:
    """A channel with a connection of its own: grpc shares connections between
    channels to one target by default, and these tests need fresh ones."""
    ca = RegionFiles(server.data).ca_cert.read_bytes()
    options = [("grpc.use_local_subchannel_pool", 1)]
    if identity is None:
        return grpc.aio.secure_channel(
            f"localhost:{server.port}", grpc.ssl_channel_credentials(ca), options=options
        )
    return grpc.aio.secure_channel(
        f"localhost:{server.mtls_port}",
        grpc.ssl_channel_credentials(ca, *identity),
        options=options,
    )


async def health_status(server: Server, *, wait_for_ready: bool = False) -> int:
    async with channel(server) as public:
        stub: Any = health_pb2_grpc.HealthStub(public)  # aio: the stubs type it sync
        reply = await stub.Check(
            health_pb2.HealthCheckRequest(service=""), timeout=30, wait_for_ready=wait_for_ready
        )
        return int(reply.status)


async def tree_size(server: Server) -> int:
    async with channel(server) as public:
        stub: Any = ledger_grpc.LedgerServiceStub(public)
        head = await stub.GetCheckpoint(ledger_pb.GetCheckpointRequest(), timeout=30)
        return int(head.checkpoint.tree_size)


async def raw_call(
    server: Server, identity: tuple[bytes, bytes] | None, method: str, data: bytes
) -> grpc.aio.AioRpcError:
    """The error of a call of `method` with `data` as its request, unparsed."""
    async with channel(server, identity) as opened:
        raw: Any = opened.unary_unary(method)  # no serializers: bytes in, bytes out
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await raw(data, timeout=30)
        return caught.value


def error_reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]  # an AioRpcError is a call
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return str(info.reason)
    return ""


BAD_HOLDER = lpb.Holder(
    name="某公司",
    id_type=lpb.HOLDER_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE,
    id_number=COMPANY[:-1] + ("0" if COMPANY[-1] != "0" else "1"),  # a wrong check character
)


def check_refusals_keep_their_details(region: Region) -> None:
    """Refusals keep their code, ErrorInfo reason and BadRequest fields; each caller is
    who its certificate says (or public without one); nothing is recorded."""
    size = ledger_size(region)
    assert failure(
        region, region.dept_a, "IssueLicence", issue_request("FE-BAD-1", holder=BAD_HOLDER)
    ) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNIFIED_SOCIAL_CREDIT_CODE_INVALID",
        ["holder.id_number"],
    )
    assert failure(
        region, region.dept_a, "IssueLicence", issue_request("FE-BAD-2", licence_type_code=PERMIT)
    ) == (grpc.StatusCode.PERMISSION_DENIED, "LICENCE_TYPE_NOT_AUTHORISED", [])
    assert failure(
        region, region.dept_a, "IssueLicence", issue_request("FE-BAD-3", department_code=DEPT_B)
    ) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_OWNER", [])
    assert failure(region, None, "IssueLicence", issue_request("FE-BAD-4"))[:2] == (
        grpc.StatusCode.UNAUTHENTICATED,
        "CLIENT_CERTIFICATE_REQUIRED",
    )
    assert ledger_size(region) == size


def check_issuance(region: Region, number: str) -> None:
    size = ledger_size(region)
    reply = call(region, region.dept_a, "IssueLicence", issue_request(number))
    assert reply.credential.licence.licence_number == number
    assert reply.credential.proof.leaf_index == size
    assert ledger_size(region) == size + 1


# -- shared regions ---------------------------------------------------------------------


@contextlib.contextmanager
def _serving(factory: pytest.TempPathFactory, name: str, *args: str) -> Iterator[Region]:
    region = open_region(factory, name, *args)
    try:
        yield region
    finally:
        stop(region.server)


@pytest.fixture(scope="module")
def fronted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    """A region in the default mode: one front end."""
    with _serving(tmp_path_factory, "fronted") as region:
        yield region


@pytest.fixture(scope="module")
def two_fronts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    with _serving(tmp_path_factory, "two-fronts", "--front-processes", "2") as region:
        yield region


@pytest.fixture(scope="module")
def unfronted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Region]:
    """gRPC served in the region process itself."""
    with _serving(tmp_path_factory, "unfronted", "--front-processes", "0") as region:
        yield region


# -- the default mode -------------------------------------------------------------------


def test_default_mode_runs_exactly_one_front_end_child_which_alone_listens(
    fronted: Region,
) -> None:
    region_pid = server_pid(fronted.server)
    [front] = front_end_pids(region_pid)
    assert listens(front, fronted.server) == (True, True)
    assert listens(region_pid, fronted.server) == (False, False)  # it serves no gRPC itself


def test_issuance_over_mutual_tls_works_through_the_front_end(fronted: Region) -> None:
    check_issuance(fronted, "FE-ISSUE-1")


def test_refusals_keep_their_error_details_through_the_front_end(fronted: Region) -> None:
    check_refusals_keep_their_details(fronted)


@pytest.mark.parametrize("mode", ["fronted", "unfronted"])
def test_malformed_request_bytes_are_invalid_argument_and_record_nothing(
    mode: str, request: pytest.FixtureRequest
) -> None:
    region: Region = request.getfixturevalue(mode)
    size = ledger_size(region)
    error = run(raw_call(region.server, region.dept_a, ISSUE, b"\xff\xff\xff"))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"the request is not a valid {ISSUE} request"
    assert ledger_size(region) == size


@pytest.mark.parametrize("mode", ["fronted", "unfronted"])
def test_a_caller_is_authorized_before_its_request_is_parsed(
    mode: str, request: pytest.FixtureRequest
) -> None:
    # Bytes that do not parse, sent without a client certificate to a department's
    # method: the missing certificate is what the caller hears about.
    region: Region = request.getfixturevalue(mode)
    error = run(raw_call(region.server, None, ISSUE, b"\xff\xff\xff"))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(error) == "CLIENT_CERTIFICATE_REQUIRED"


def test_unknown_method_is_unimplemented_and_a_planned_one_says_so(fronted: Region) -> None:
    unknown = run(raw_call(fronted.server, fronted.dept_a, NO_SUCH_METHOD, b""))
    assert unknown.code() == grpc.StatusCode.UNIMPLEMENTED
    # A planned service's method is known: the region's own refusal comes through.
    planned = run(raw_call(fronted.server, None, PLANNED_METHOD, b""))
    assert planned.code() == grpc.StatusCode.UNIMPLEMENTED
    assert error_reason(planned) == "CAPABILITY_NOT_YET_AVAILABLE"


def test_watch_entries_streams_the_ledger_in_order_then_a_covering_checkpoint(
    fronted: Region,
) -> None:
    size = ledger_size(fronted)

    async def go() -> tuple[list[ledger_pb.Entry], int, grpc.StatusCode, int]:
        async with channel(fronted.server) as public:
            stub: Any = ledger_grpc.LedgerServiceStub(public)
            stream = stub.WatchEntries(ledger_pb.WatchEntriesRequest(start_index=0))
            entries: list[ledger_pb.Entry] = []
            checkpoint_size = -1
            while checkpoint_size < 0:
                reply = await asyncio.wait_for(stream.read(), 30)
                assert reply is not grpc.aio.EOF
                entries.extend(reply.entries)
                if reply.HasField("checkpoint"):
                    checkpoint_size = reply.checkpoint.tree_size
            assert stream.cancel()
            code = await stream.code()
            # The same connection goes on serving.
            head = await stub.GetCheckpoint(ledger_pb.GetCheckpointRequest(), timeout=30)
            return entries, checkpoint_size, code, head.checkpoint.tree_size

    entries, checkpoint_size, code, size_after = run(go())
    assert [e.index for e in entries] == list(range(len(entries)))
    assert len(entries) >= size
    assert checkpoint_size == len(entries)
    # The hash chain links every entry to the one before: the bytes came through whole.
    assert entries[0].prev_leaf_hash == bytes(32)
    assert all(e.prev_leaf_hash == p.leaf_hash for p, e in itertools.pairwise(entries))
    assert code == grpc.StatusCode.CANCELLED
    assert size_after == checkpoint_size
    assert ledger_size(fronted) == checkpoint_size  # and other connections too


def test_watch_entries_follows_new_entries_past_the_stream_window(fronted: Region) -> None:
    """More items than the front end may hold unacknowledged: acknowledgements flow."""
    issuances = STREAM_WINDOW + 2

    async def go() -> tuple[int, list[int], list[int]]:
        async with (
            channel(fronted.server) as public,
            channel(fronted.server, fronted.dept_a) as mtls,
        ):
            ledger: Any = ledger_grpc.LedgerServiceStub(public)
            licences: Any = pb_grpc.LicenceServiceStub(mtls)
            start = (await ledger.GetCheckpoint(ledger_pb.GetCheckpointRequest())).checkpoint
            stream = ledger.WatchEntries(ledger_pb.WatchEntriesRequest(start_index=start.tree_size))
            items = 0
            streamed: list[int] = []
            issued: list[int] = []
            covered = -1
            for n in range(issuances):
                reply = await licences.IssueLicence(issue_request(f"FE-WATCH-{n}"), timeout=30)
                issued.append(reply.credential.proof.leaf_index)
                while covered <= issued[-1]:
                    item = await asyncio.wait_for(stream.read(), 30)
                    assert item is not grpc.aio.EOF
                    items += 1
                    streamed.extend(e.index for e in item.entries)
                    if item.HasField("checkpoint"):
                        covered = item.checkpoint.tree_size
            stream.cancel()
            return items, streamed, issued

    items, streamed, issued = run(go())
    assert items > STREAM_WINDOW
    assert streamed == list(range(streamed[0], streamed[0] + len(streamed)))
    assert set(issued) <= set(streamed)


def test_a_front_end_killed_by_sigkill_is_replaced_on_the_same_ports(fronted: Region) -> None:
    server = fronted.server
    parent = server_pid(server)
    [old] = front_end_pids(parent)
    os.kill(old, signal.SIGKILL)
    fresh = until(lambda: front_end_pids(parent) - {old}, 30, "a new front end")
    assert len(fresh) == 1
    assert not is_front_end(old)
    assert server.process is not None
    assert server.process.poll() is None  # the region lives on
    # New channels, the same ports: the new front end binds them within its start-up.
    assert run(health_status(server, wait_for_ready=True)) == health_pb2.HealthCheckResponse.SERVING
    size = run(tree_size(server))
    check_issuance(fronted, "FE-AFTER-KILL-1")
    assert run(tree_size(server)) == size + 1
    assert front_end_pids(parent) == fresh
    assert listens(next(iter(fresh)), server) == (True, True)


def test_a_front_end_ignores_sigterm_which_is_for_the_region(fronted: Region) -> None:
    """systemd sends SIGTERM to every process of a unit: the front end must wait for the
    region's orderly stop rather than drop the calls it carries."""
    server = fronted.server
    [front] = front_end_pids(server_pid(server))
    os.kill(front, signal.SIGTERM)
    time.sleep(0.5)
    assert front_end_pids(server_pid(server)) == {front}
    check_issuance(fronted, "FE-AFTER-SIGTERM-1")


def test_a_front_end_does_not_get_the_key_store_passphrase(fronted: Region) -> None:
    region_pid = server_pid(fronted.server)
    [front] = front_end_pids(region_pid)
    variable = PASSPHRASE_ENV.encode() + b"="
    assert any(v.startswith(variable) for v in environment(region_pid))  # the region has it
    assert not any(v.startswith(variable) for v in environment(front))


def environment(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")


# -- the region process's end -----------------------------------------------------------


def test_a_region_killed_by_sigkill_takes_its_front_ends_and_frees_its_ports(
    tmp_path: Path,
) -> None:
    data = DataDir(tmp_path / "region")
    port, mtls_port = free_ports(2)
    first = Server(data, port, mtls_port)
    second = Server(data, port, mtls_port)
    first.start()
    left: dict[int, bytes] = {}
    try:
        left = children(server_pid(first))
        fronts = front_end_pids(server_pid(first))
        assert len(fronts) == 1
        assert first.process is not None
        first.process.kill()
        first.process.wait(timeout=10)
        assert len(left) > len(fronts)  # also the signing worker and the PDF workers
        # The front end, the signing worker and the PDF workers all go with it.
        until(lambda: not any(alive(pid) for pid in left), 10, "every child to be gone")
        second.start()
        assert not fronts & front_end_pids(server_pid(second))
        assert run(health_status(second)) == health_pb2.HealthCheckResponse.SERVING
        assert run(tree_size(second)) >= 3  # the bootstrap's entries, read by the new region
    finally:
        stop(second)
        if first.process is not None and first.process.poll() is None:
            first.process.kill()
            first.process.wait(timeout=10)
        kill_leftovers(left)  # only if the test failed


def test_sigterm_exits_zero_and_leaves_no_process_behind(tmp_path: Path) -> None:
    port, mtls_port = free_ports(2)
    data = DataDir(tmp_path / "region")
    server = Server(data, port, mtls_port, extra_args=("--front-processes", "2"))
    server.start()
    left: dict[int, bytes] = {}
    try:
        left = children(server_pid(server))
        fronts = front_end_pids(server_pid(server))
        assert len(fronts) == 2
        assert len(left) > len(fronts)  # also the signing worker and the PDF workers
        # Forwarded, so answered by the region's event loop: only once `serve` waits for
        # its signals (before that, SIGTERM would still kill it outright).
        assert run(tree_size(server)) >= 3
        assert server.stop() == 0
        # The region waited for its front ends (and stopped its workers) before it exited.
        assert not any(alive(pid) for pid in left)
        assert server.process is not None
        assert server.process.stdout is not None
        assert "stopped" in server.process.stdout.read()
    finally:
        stop(server)
        kill_leftovers(left)


def test_sigterm_lets_a_call_in_flight_run_for_the_grace_period(tmp_path: Path) -> None:
    grace = 1.0
    config = tmp_path / "server.toml"
    config.write_text(f"[server]\nshutdown_grace_seconds = {grace}\n")
    port, mtls_port = free_ports(2)
    server = Server(
        DataDir(tmp_path / "region"), port, mtls_port, extra_args=("--config", str(config))
    )
    server.start()
    try:
        fronts = front_end_pids(server_pid(server))
        assert len(fronts) == 1

        async def go() -> tuple[float, grpc.StatusCode]:
            async with channel(server) as public:
                stub: Any = ledger_grpc.LedgerServiceStub(public)
                follower = stub.WatchEntries(ledger_pb.WatchEntriesRequest(start_index=0))
                # Caught up, it waits in the region for entries that will not come.
                while not (await asyncio.wait_for(follower.read(), 30)).HasField("checkpoint"):
                    pass
                sent = time.monotonic()
                assert server.process is not None
                server.process.send_signal(signal.SIGTERM)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await asyncio.wait_for(follower.read(), 30)
                return time.monotonic() - sent, caught.value.code()

        lasted, code = run(go())
        # Neither cut off at once nor left open: cancelled when the grace period ends.
        assert lasted >= grace * 0.8, lasted
        assert code in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), code
        assert server.process is not None
        assert server.process.wait(timeout=30) == 0
        assert not any(is_front_end(pid) for pid in fronts)
    finally:
        stop(server)


# -- more front ends, or none -----------------------------------------------------------


def test_two_front_ends_both_serve_fresh_connections(two_fronts: Region) -> None:
    server = two_fronts.server
    fronts = front_end_pids(server_pid(server))
    assert len(fronts) == 2
    assert all(listens(pid, server) == (True, True) for pid in fronts)  # on the same ports
    size = ledger_size(two_fronts)

    async def go() -> tuple[int, dict[int, int]]:
        opened: list[grpc.aio.Channel] = []
        served: dict[int, int] = {}
        try:
            # The kernel hands each new connection to either listener: up to 64 of them,
            # until both front ends hold some (2⁻⁶³ odds of never, if they are fair).
            while len(opened) < 64 and (len(opened) < 6 or min(served.values()) == 0):
                opened.append(channel(server, two_fronts.dept_a))
                licences: Any = pb_grpc.LicenceServiceStub(opened[-1])
                number = f"FE-TWO-{len(opened)}"
                reply = await licences.IssueLicence(issue_request(number), timeout=30)
                assert reply.credential.licence.licence_number == number
                served = {pid: sockets(pid, server.mtls_port, ESTABLISHED) for pid in fronts}
            return len(opened), served
        finally:
            for each in opened:
                await each.close()

    calls, served = run(go())
    assert all(count > 0 for count in served.values()), served
    assert sum(served.values()) == calls  # one connection per channel
    assert ledger_size(two_fronts) == size + calls
    assert front_end_pids(server_pid(server)) == fronts


def test_zero_front_processes_serves_in_the_region_process(unfronted: Region) -> None:
    region_pid = server_pid(unfronted.server)
    assert front_end_pids(region_pid) == set()
    assert listens(region_pid, unfronted.server) == (True, True)
    check_issuance(unfronted, "FE-INLINE-1")
    assert run(health_status(unfronted.server)) == health_pb2.HealthCheckResponse.SERVING
    check_refusals_keep_their_details(unfronted)


@pytest.mark.parametrize("front_processes", ["0", "1", "2"])
def test_a_second_server_on_taken_ports_fails_clearly(
    fronted: Region, unfronted: Region, two_fronts: Region, tmp_path: Path, front_processes: str
) -> None:
    """A second server started by mistake on a server's ports fails rather than take a
    share of its connections: a lone front end (or the region itself) does not share
    its ports, and front ends that share theirs check first that nobody holds them."""
    for taken in (fronted.server, unfronted.server, two_fronts.server):
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--data",
                str(tmp_path / f"second-{taken.port}"),
                "--port",
                str(taken.port),
                "--mtls-port",
                str(taken.mtls_port),
                "--front-processes",
                front_processes,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
        )
        assert second.returncode == 3, second.stdout + second.stderr
        assert "error: cannot listen" in second.stderr
        assert "licence-ledger serving" not in second.stdout
        assert run(health_status(taken)) == health_pb2.HealthCheckResponse.SERVING


def test_a_listening_port_is_refused_even_when_it_allows_sharing() -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{port}: it is in use"):
            refuse_if_taken(f"127.0.0.1:{port}")
    refuse_if_taken(f"127.0.0.1:{port}")  # closed: free again
    refuse_if_taken("127.0.0.1:0")  # any free port will do


# -- in process: the region's dispatcher ------------------------------------------------


def _public_channel(data: Path, server: RegionServer) -> grpc.aio.Channel:
    ca = RegionFiles(DataDir(data)).ca_cert.read_bytes()
    return grpc.aio.secure_channel(f"localhost:{server.port}", grpc.ssl_channel_credentials(ca))


async def _caught_up_follower(ledger: Any) -> Any:
    """A WatchEntries call from the start, read until it has caught up (a checkpoint)."""
    stream = ledger.WatchEntries(ledger_pb.WatchEntriesRequest(start_index=0))
    while not (await asyncio.wait_for(stream.read(), 30)).HasField("checkpoint"):
        pass
    return stream


def dispatched(server: RegionServer) -> int:
    """Calls the region is running for its front ends (tasks in their dispatchers)."""
    fronts = server.front_ends
    assert fronts is not None
    return sum(f.dispatcher.in_flight for f in fronts._running if f.dispatcher is not None)


def test_cancelled_streams_and_finished_bursts_leave_no_task_in_the_region(
    tmp_path: Path,
) -> None:
    async def go() -> set[int]:
        async with running_region(tmp_path) as running:
            server = running.server
            assert server.front_ends is not None
            pids = set(server.front_ends.pids)
            assert len(pids) == 1
            async with _public_channel(tmp_path, server) as public:
                ledger: Any = ledger_grpc.LedgerServiceStub(public)
                # A follower, caught up: its handler waits in the region for growth.
                stream = await _caught_up_follower(ledger)
                await eventually(lambda: dispatched(server) == 1, 10)
                stream.cancel()
                await eventually(lambda: dispatched(server) == 0, 10)
                # A follower whose deadline passes is cancelled in the region too.
                late = ledger.WatchEntries(ledger_pb.WatchEntriesRequest(start_index=0), timeout=1)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    async for _ in late:
                        pass
                assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
                await eventually(lambda: dispatched(server) == 0, 10)
                head = await ledger.GetCheckpoint(ledger_pb.GetCheckpointRequest(), timeout=30)
                size = head.checkpoint.tree_size

            # 50 issuances at once: the region runs many together, then none.
            peak = 0

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, dispatched(server))
                    await asyncio.sleep(0.001)

            watching = asyncio.get_running_loop().create_task(watch())
            try:
                replies: list[pb.IssueLicenceResponse] = await asyncio.gather(
                    *(
                        running.licences.IssueLicence(request(n, "fe"), timeout=30)
                        for n in range(50)
                    )
                )
            finally:
                watching.cancel()
            assert len({r.credential.licence.licence_id for r in replies}) == 50
            assert peak > 1
            await eventually(lambda: dispatched(server) == 0, 10)
            assert server.ledger.size == size + 50
        return pids

    pids = run(go())
    # Stopped with the region: nothing left listening.
    assert not any(is_front_end(pid) for pid in pids)


def test_a_stream_the_region_ends_reaches_the_client_as_ok(tmp_path: Path) -> None:
    async def go() -> tuple[int, grpc.StatusCode, int]:
        async with running_region(tmp_path, signing_worker=False) as running:
            server = running.server
            async with _public_channel(tmp_path, server) as public:
                ledger: Any = ledger_grpc.LedgerServiceStub(public)
                stream = await _caught_up_follower(ledger)
                # A closed ledger grows no more: the follower's handler returns, and its
                # stream ends well (the only way the region ends one).
                await server.ledger.aclose()
                after = 0
                while await asyncio.wait_for(stream.read(), 30) is not grpc.aio.EOF:
                    after += 1
                code = await stream.code()
                await eventually(lambda: dispatched(server) == 0, 10)
                return after, code, dispatched(server)

    after, code, left = run(go())
    assert (after, code, left) == (0, grpc.StatusCode.OK, 0)


def test_a_killed_front_end_leaves_no_task_of_its_calls_in_the_region(tmp_path: Path) -> None:
    async def go() -> None:
        async with running_region(tmp_path, signing_worker=False) as running:
            server = running.server
            fronts = server.front_ends
            assert fronts is not None
            [front] = fronts._running
            dispatcher, [pid] = front.dispatcher, fronts.pids
            assert dispatcher is not None
            ca = RegionFiles(DataDir(tmp_path)).ca_cert.read_bytes()
            creds = grpc.ssl_channel_credentials(ca)
            target = f"localhost:{server.port}"
            async with grpc.aio.secure_channel(target, creds) as public:
                ledger: Any = ledger_grpc.LedgerServiceStub(public)
                stream = ledger.WatchEntries(ledger_pb.WatchEntriesRequest(start_index=0))
                while not (await asyncio.wait_for(stream.read(), 30)).HasField("checkpoint"):
                    pass
                assert dispatcher.in_flight == 1
                os.kill(pid, signal.SIGKILL)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await asyncio.wait_for(stream.read(), 30)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            # Nobody can receive its answers: the region cancelled the follower's handler.
            await eventually(lambda: dispatcher.in_flight == 0, 10)
            await eventually(lambda: len(fronts.pids) == 1 and fronts.pids != [pid], 30)
            async with grpc.aio.secure_channel(target, creds) as public:
                ledger = ledger_grpc.LedgerServiceStub(public)
                head = await ledger.GetCheckpoint(
                    ledger_pb.GetCheckpointRequest(), timeout=30, wait_for_ready=True
                )
                assert head.checkpoint.tree_size == server.ledger.size

    run(go())
