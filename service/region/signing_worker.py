"""Licence credentials signed in a process of their own, beside the event loop.

Issuing a licence signs twice (its DSSE envelope and its QR code) and encodes the QR
form: about a quarter of the event loop's time per issuance, and the event loop is
the service's one bottleneck. A child process (`python -m
service.region.signing_worker KEYS_DIR`) does that work instead, on the other core.

The exchange is a pipe of length-prefixed frames: the passphrase first, then batches
of jobs, each answered by one frame of results in the same order. One batch is out
at a time; the jobs that come meanwhile make the next one. The pipes are the event
loop's own non-blocking transports: a thread would wait for the GIL, which a busy
event loop hands over only every switch interval (5 ms).

The worker is an optimisation, never a dependency: until it says it is ready, after
it dies, or for any job it cannot do, `sign` raises `SigningUnavailable` and the
caller signs in process. It is spawned, not forked, so it inherits no RocksDB handle,
gRPC thread or lock.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path

from service.frames import FrameReader, frame, read_frame, write_frame
from service.lifeline import ended
from signer import dsse
from signer.credentials import SignedCredential, sign_credential
from signer.keystore import FileKeyStore

log = logging.getLogger(__name__)

_MODULE = "service.region.signing_worker"
_READY = b"ready"
# A job: the key store name of the department key, the licence payload and the ledger
# index its QR claims name. A result: the signed forms, or None when the worker could
# not sign it (the caller then signs it itself and reports whatever fails).
Job = tuple[str, bytes, int]
# A batch goes at most this often (seconds): a lone job goes at once, a stream of them
# in batches of a few, each one write and one read of the pipe instead of several.
FLUSH_INTERVAL = 0.002
Result = SignedCredential | None


class SigningUnavailable(Exception):
    """The worker cannot sign this credential: sign it in process."""


# -- the parent's side -----------------------------------------------------------------


class SigningWorker:
    """The signing process, talked to through the event loop's own pipe transports."""

    def __init__(
        self,
        keys_dir: Path,
        passphrase: bytes,
        *,
        max_waiting: int = 4096,
        answer_timeout: float = 10.0,
    ) -> None:
        self._keys_dir = keys_dir
        self._passphrase = passphrase
        self._max_waiting = max_waiting
        # A batch unanswered this long (seconds) means a stuck worker: it is stopped
        # and its callers sign in process, rather than wait for ever.
        self._answer_timeout = answer_timeout
        self._overdue: asyncio.TimerHandle | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stdin: asyncio.WriteTransport | None = None
        self._batch: list[Job] = []
        # Callers in the order their jobs were sent: results come back in that order.
        self._waiting: deque[asyncio.Future[SignedCredential]] = deque()
        # One batch at a time, and at most one per FLUSH_INTERVAL: jobs that come
        # meanwhile wait for the next one.
        self._unanswered = False
        self._flush_at: float | None = None
        self._flushed_at = float("-inf")
        self._ready = False
        self._gone = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def available(self) -> bool:
        return self._ready and not self._gone

    async def start(self) -> None:
        """Spawn the worker; it is used once it has opened the key store."""
        loop = asyncio.get_running_loop()
        # subprocess spawns with vfork (or posix_spawn), not fork: gRPC's fork
        # handlers, which would pause its threads, do not run.
        self._process = process = subprocess.Popen(  # noqa: S603 — our own module, no shell
            [sys.executable, "-m", _MODULE, str(self._keys_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
            # Its own session: a ^C at the terminal reaches the server, which closes
            # the pipe; the worker ends when it reads the end of its input.
            start_new_session=True,
        )
        self._stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
        await loop.connect_read_pipe(
            lambda: FrameReader(self._received, self._ended), process.stdout
        )
        self._stdin.write(frame(self._passphrase))

    async def sign(self, key_name: str, payload: bytes, ledger_index: int) -> SignedCredential:
        """The licence's envelope and QR payload, signed by the worker."""
        if not self.available or len(self._waiting) >= self._max_waiting:
            raise SigningUnavailable("the signing worker is not available")
        done: asyncio.Future[SignedCredential] = asyncio.get_running_loop().create_future()
        self._batch.append((key_name, payload, ledger_index))
        self._waiting.append(done)
        self._schedule_flush()
        return await done

    async def aclose(self) -> None:
        self._gone = True
        self._lost()
        process = self._process
        if process is None:
            return
        if self._stdin is not None:
            self._stdin.close()  # the worker reads the end of its input and exits
        await ended(process, 5.0)

    def _schedule_flush(self) -> None:
        if self._unanswered or self._flush_at is not None:
            return  # _received or the scheduled flush takes this job along
        loop = asyncio.get_running_loop()
        self._flush_at = max(loop.time(), self._flushed_at + FLUSH_INTERVAL)
        loop.call_at(self._flush_at, self._flush)

    def _flush(self) -> None:
        self._flush_at = None
        if not self._batch or self._gone or self._stdin is None:
            return
        batch, self._batch = self._batch, []
        self._unanswered = True
        loop = asyncio.get_running_loop()
        self._flushed_at = loop.time()
        self._overdue = loop.call_later(self._answer_timeout, self._stuck)
        self._stdin.write(frame(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)))

    def _received(self, data: bytes) -> None:
        if not self._ready:
            self._ready = data == _READY and not self._gone
            return
        if self._overdue is not None:
            self._overdue.cancel()
            self._overdue = None
        results: list[Result] = pickle.loads(data)  # noqa: S301 — our child's own frames
        for result in results:
            done = self._waiting.popleft()
            if done.done():  # its caller was cancelled
                continue
            if result is None:
                done.set_exception(SigningUnavailable("the signing worker could not sign it"))
            else:
                done.set_result(result)
        # The jobs that came while the worker was busy go as the next batch.
        self._unanswered = False
        if self._batch:
            self._schedule_flush()

    def _stuck(self) -> None:
        log.warning(
            "the signing worker has not answered for %.0f s; stopping it", self._answer_timeout
        )
        if self._process is not None:
            self._process.kill()
        self._lost()
        self._reap()

    def _lost(self) -> None:
        if self._overdue is not None:
            self._overdue.cancel()
            self._overdue = None
        if self._ready and not self._gone:
            log.warning("the signing worker has stopped; credentials are signed in process")
        self._ready, self._gone = False, True
        self._batch.clear()
        while self._waiting:
            done = self._waiting.popleft()
            if not done.done():
                done.set_exception(SigningUnavailable("the signing worker has stopped"))

    def _ended(self) -> None:
        self._lost()
        self._reap()

    def _reap(self, tries: int = 100) -> None:
        """Collect the exit status of a worker that is ending, so no zombie is left."""
        if self._process is not None and self._process.poll() is None and tries > 0:
            asyncio.get_running_loop().call_later(0.05, self._reap, tries - 1)


# -- the worker process ------------------------------------------------------------------


class _Signers:
    def __init__(self, keys: FileKeyStore) -> None:
        self._keys = keys
        self._signers: dict[str, dsse.Signer] = {}

    def sign(self, job: Job) -> Result:
        key_name, payload, ledger_index = job
        try:
            signer = self._signers.get(key_name)
            if signer is None:
                key = self._keys.load(key_name)
                signer = self._signers[key_name] = dsse.Signer(key)
            return sign_credential(signer, payload, ledger_index)
        except Exception:  # the parent signs it itself and reports what fails
            return None


def main(argv: list[str]) -> int:
    # ^C and SIGTERM are for the server: it closes the pipe, and the worker then ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(os, "SCHED_BATCH"):
        # Linux: a batch job does not preempt the task that woke it. Otherwise each
        # batch sent would often hand the server's core, with the GIL held, to the
        # worker (measured: the pipe write cost 17–30 µs a job, 8 µs with this).
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Nothing else may write to the frames' stream.
    sys.stdout = sys.stderr
    passphrase = read_frame(stdin)
    if passphrase is None or len(argv) != 1:
        return 2
    signers = _Signers(FileKeyStore(Path(argv[0]), passphrase))
    write_frame(stdout, _READY)
    while (data := read_frame(stdin)) is not None:
        jobs: list[Job] = pickle.loads(data)  # noqa: S301 — our parent's own frames
        results = [signers.sign(job) for job in jobs]
        write_frame(stdout, pickle.dumps(results, protocol=pickle.HIGHEST_PROTOCOL))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
