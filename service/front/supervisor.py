"""The region process's side of its front ends: start, replace, stop (see `service.front`)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import socket
import subprocess
import sys

from service.frames import FrameReader, frame
from service.front import protocol
from service.front.dispatch import Dispatcher
from service.front.protocol import FrontEndConfig, Outbox
from service.guard import GuardedServer
from service.lifeline import ended
from signer.keystore import PASSPHRASE_ENV

log = logging.getLogger("licence_ledger.front")

_MODULE = "service.front.process"
# A front end imports gRPC and binds two ports: about a second, far longer on a loaded
# machine. Past this it counts as failed.
START_TIMEOUT = 60.0
# After a front end dies unexpectedly, the wait before the next start, doubling on
# each failure up to the maximum.
RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 10.0


class ListenError(Exception):
    """The server cannot listen: a port is taken, or a front end failed to start."""


class _FrontEnd:
    """One front-end process and the dispatcher of its calls."""

    def __init__(self, handlers: GuardedServer, lost: asyncio.Event) -> None:
        self._handlers = handlers
        self._lost = lost
        self.process: subprocess.Popen[bytes] | None = None
        self.outbox: Outbox | None = None
        self.dispatcher: Dispatcher | None = None
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[tuple[int, int]] = loop.create_future()
        self.ended: asyncio.Future[None] = loop.create_future()
        self.stopping = False

    async def start(self, config: FrontEndConfig) -> tuple[int, int]:
        """Spawn it and wait until it listens: (port, mtls_port)."""
        loop = asyncio.get_running_loop()
        # subprocess spawns with vfork, not fork (see signing_worker); its own session:
        # a ^C at the terminal reaches the region process, which stops it in order.
        self.process = process = subprocess.Popen(  # noqa: S603 — our own module, no shell
            [sys.executable, "-m", _MODULE, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            start_new_session=True,
            # It holds no key store: it does not get the passphrase that opens one.
            env={k: v for k, v in os.environ.items() if k != PASSPHRASE_ENV},
        )
        writer, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
        writer.write(frame(protocol.encode_config(config)))
        self.outbox = Outbox(writer)
        self.dispatcher = Dispatcher(self._handlers, self.outbox)
        await loop.connect_read_pipe(
            lambda: FrameReader(self._received, self._ended), process.stdout
        )
        try:
            return await asyncio.wait_for(asyncio.shield(self._ready), START_TIMEOUT)
        except BaseException:
            self.kill()
            raise

    def stop(self, grace: float) -> None:
        self.stopping = True
        if self.outbox is not None:
            self.outbox.send((protocol.STOP, grace))

    def kill(self) -> None:
        self.stopping = True
        if not self._ready.done():
            self._ready.cancel()  # nobody waits for it any more
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    async def exited(self, timeout: float) -> None:
        """Wait for the process to end (killing it after `timeout`) and collect its status."""
        if self.process is not None:
            await ended(self.process, timeout)

    def _received(self, data: bytes) -> None:
        assert self.dispatcher is not None  # noqa: S101 — set before reading starts
        for message in protocol.decode(data):
            kind = message[0]
            if kind == protocol.READY:
                if not self._ready.done():
                    self._ready.set_result((message[1], message[2]))
            elif kind == protocol.FAILED:
                if not self._ready.done():
                    self._ready.set_exception(ListenError(message[1]))
            elif kind != protocol.STOPPED:
                self.dispatcher.received(message)

    def _ended(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.close()
        if self.outbox is not None:
            self.outbox.close()
        if not self._ready.done():
            self._ready.set_exception(ListenError("the front end exited before it listened"))
        if not self.ended.done():
            self.ended.set_result(None)
        if not self.stopping:
            self._lost.set()


class FrontEnds:
    """The region's front-end processes: all listen on the same two ports."""

    def __init__(self, config: FrontEndConfig, handlers: GuardedServer, count: int) -> None:
        if count < 1:
            raise ValueError("at least one front end")
        self._config = config
        self._handlers = handlers
        self._count = count
        self._running: list[_FrontEnd] = []
        self._lost = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None
        self.port = 0
        self.mtls_port = 0

    @property
    def pids(self) -> list[int]:
        return [f.process.pid for f in self._running if f.process is not None]

    async def start(self) -> None:
        """Start them all; ListenError if the first cannot listen."""
        if self._config.share_ports:
            # Front ends that share their ports would share them with another server
            # started on them by mistake too (each sets SO_REUSEPORT): refuse first.
            for address in (self._config.address, self._config.mtls_address):
                refuse_if_taken(address)
        self.port, self.mtls_port = await self._start_one()
        # The others (and any replacement) listen on the ports the first was given.
        self._config = dataclasses.replace(
            self._config,
            address=_with_port(self._config.address, self.port),
            mtls_address=_with_port(self._config.mtls_address, self.mtls_port),
        )
        for _ in range(self._count - 1):
            await self._start_one()
        self._watch = asyncio.get_running_loop().create_task(self._replace_lost())

    async def stop(self, grace: float) -> None:
        """Stop taking calls; those in flight finish within `grace` seconds."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        for front in self._running:
            front.stop(grace)
        await asyncio.gather(*(f.exited(grace + 10.0) for f in self._running))
        self._running.clear()

    async def _start_one(self) -> tuple[int, int]:
        front = _FrontEnd(self._handlers, self._lost)
        try:
            ports = await front.start(self._config)
        except BaseException:
            await asyncio.shield(front.exited(5.0))  # start killed it: collect its status
            raise
        self._running.append(front)
        return ports

    async def _replace_lost(self) -> None:
        """Keep `count` front ends running: start another for each one that dies."""
        delay = RESTART_DELAY
        while True:
            await self._lost.wait()
            self._lost.clear()
            for front in [f for f in self._running if f.ended.done()]:
                self._running.remove(front)
                await front.exited(1.0)
                assert front.process is not None  # noqa: S101 — it was started
                log.warning(
                    "front end %d exited with status %s; starting another",
                    front.process.pid,
                    front.process.returncode,
                )
            while len(self._running) < self._count:
                await asyncio.sleep(delay)
                try:
                    await self._start_one()
                except Exception as exc:  # keep trying: the region cannot serve without one
                    log.error("a front end failed to start: %s", exc)
                    delay = min(delay * 2, MAX_RESTART_DELAY)
                else:
                    delay = RESTART_DELAY


def refuse_if_taken(address: str) -> None:
    """ListenError if something listens on `address` ("host:port"; port 0 never is).

    Each of the host's addresses is bound once without SO_REUSEPORT, which fails while
    any socket listens there, even one that allows sharing. SO_REUSEADDR, which gRPC
    sets too, lets the port's connections in TIME_WAIT (a restart's) pass.
    """
    host, _, port = address.rpartition(":")
    if int(port) == 0:
        return
    try:
        found = socket.getaddrinfo(
            host.strip("[]"), int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(f"cannot listen on {address}: {exc}") from exc
    for family, kind, proto, _, where in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(where)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise ListenError(f"cannot listen on {address}: it is in use") from exc
                # Anything else (an address family the host lacks) is gRPC's to report.


def _with_port(address: str, port: int) -> str:
    host, _, _ = address.rpartition(":")
    return f"{host}:{port}"
