"""The signing worker: a real child process signing with keys from a real key store.

Every result is checked the way a verifier would (the envelope over exactly the job's
payload, the QR code's signature and claims) and against its own job, so a result
handed to the wrong caller fails. The worker's failure modes (unknown key, not ready,
closed, killed) must each end in `SigningUnavailable`, never a hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.type.v1 import crypto_pb2
from service.region.signing_worker import SigningUnavailable, SigningWorker
from signer import dsse, qr
from signer.credentials import SignedCredential, qr_claims, sign_credential
from signer.keystore import FileKeyStore

PASSPHRASE = b"signing worker test passphrase"
ED25519, P256 = "licence-ed25519", "licence-p256"
# Generous: the worker starts in about a second, but CI machines can be slow.
READY_SECONDS = 20.0
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Keys:
    directory: Path
    signers: dict[str, dsse.Signer]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    directory = tmp_path_factory.mktemp("keys")
    store = FileKeyStore(directory, PASSPHRASE)
    signers = {
        ED25519: dsse.Signer(store.generate(ED25519, "ed25519")),
        P256: dsse.Signer(store.generate(P256, "p256")),
    }
    return Keys(directory, signers)


def licence_payload(n: int) -> bytes:
    """A licence's exact serialization, distinct for every `n`."""
    licence = lpb.Licence(
        licence_id=f"TEST-{n}",
        licence_type_code="SPJY",
        licence_type_name="食品经营许可证",
        licence_number=f"JY{n:010d}",
        holder=lpb.Holder(
            name=f"测试商户{n}",
            id_type=lpb.HOLDER_ID_TYPE_OTHER,
            other_id_type="test",
            id_number=str(n),
        ),
        face_fields=[lpb.FaceField(name="scope", value=f"第{n}号经营范围")],
        version=1,
        status=lpb.LICENCE_STATUS_VALID,
    )
    return licence.SerializeToString(deterministic=True)


def check_signed(
    signed: SignedCredential, signer: dsse.Signer, payload: bytes, ledger_index: int
) -> None:
    """`signed` is `signer`'s credential over exactly `payload`, naming `ledger_index`."""
    verified = dsse.verify_envelope(
        signed.envelope,
        {signer.keyid: signer.public_key},
        payload_type=dsse.LICENCE_PAYLOAD_TYPE,
    )
    assert verified.payload == payload
    claims = qr.verify_qr(signed.qr_payload, {bytes.fromhex(signer.keyid)[:8]: signer.public_key})
    assert claims.ledger_index == ledger_index
    assert claims.credential_payload_digest.value == hashlib.sha256(payload).digest()
    licence = lpb.Licence.FromString(payload)
    assert claims == qr_claims(licence, payload, ledger_index)
    if signer.algorithm == crypto_pb2.SIGNATURE_ALGORITHM_ED25519:
        # Ed25519 signatures are deterministic: exactly what in-process signing makes.
        assert signed == sign_credential(signer, payload, ledger_index)


async def eventually(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {seconds} s")
        await asyncio.sleep(0.01)


async def ready_worker(
    keys: Keys, *, max_waiting: int = 4096, answer_timeout: float = 10.0
) -> SigningWorker:
    worker = SigningWorker(
        keys.directory, PASSPHRASE, max_waiting=max_waiting, answer_timeout=answer_timeout
    )
    await worker.start()
    await eventually(lambda: worker.available, READY_SECONDS)
    return worker


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_concurrent_jobs_each_get_their_own_credential(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys)
        try:
            jobs = [
                (ED25519 if n % 2 else P256, licence_payload(n), 1000 + 7 * n) for n in range(50)
            ]
            async with asyncio.timeout(TIMEOUT_SECONDS):
                results = await asyncio.gather(*(worker.sign(*job) for job in jobs))
                # A second round, now that the worker has loaded both keys.
                again = await asyncio.gather(*(worker.sign(*job) for job in reversed(jobs)))
            for (name, payload, index), signed in zip(
                [*jobs, *reversed(jobs)], [*results, *again], strict=True
            ):
                check_signed(signed, keys.signers[name], payload, index)
            assert worker.available
        finally:
            await worker.aclose()

    asyncio.run(go())


def test_a_job_the_worker_cannot_sign_fails_alone(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys)
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                with pytest.raises(SigningUnavailable):
                    await worker.sign("no-such-key", licence_payload(1), 1)
                assert worker.available
                check_signed(
                    await worker.sign(ED25519, licence_payload(2), 2),
                    keys.signers[ED25519],
                    licence_payload(2),
                    2,
                )
                # In one batch: an unknown key, an invalid key name and a payload that is
                # no licence fail; the jobs around them get their own results.
                outcomes = await asyncio.gather(
                    worker.sign(P256, licence_payload(3), 3),
                    worker.sign("no-such-key", licence_payload(4), 4),
                    worker.sign(ED25519, licence_payload(5), 5),
                    worker.sign("../escape", licence_payload(6), 6),
                    worker.sign(P256, b"\xff\xff not a licence", 7),
                    worker.sign(P256, licence_payload(8), 8),
                    return_exceptions=True,
                )
            for failed in (outcomes[1], outcomes[3], outcomes[4]):
                assert isinstance(failed, SigningUnavailable)
            for at, name, n in ((0, P256, 3), (2, ED25519, 5), (5, P256, 8)):
                signed = outcomes[at]
                assert isinstance(signed, SignedCredential)
                check_signed(signed, keys.signers[name], licence_payload(n), n)
            assert worker.available
        finally:
            await worker.aclose()

    asyncio.run(go())


def test_a_cancelled_caller_does_not_shift_the_results(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys)
        pid = worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the batch goes out, and waits to be answered
        try:
            first = asyncio.create_task(worker.sign(ED25519, licence_payload(0), 0))
            rest = [
                asyncio.create_task(worker.sign(P256, licence_payload(n), n)) for n in range(1, 6)
            ]
            await asyncio.sleep(0.05)
            first.cancel()
            rest[2].cancel()
        finally:
            os.kill(pid, signal.SIGCONT)
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                results = await asyncio.gather(*rest, return_exceptions=True)
                later = await worker.sign(ED25519, licence_payload(9), 9)
            assert first.cancelled()
            for n, result in enumerate(results, start=1):
                if n == 3:
                    assert isinstance(result, asyncio.CancelledError)
                    continue
                assert isinstance(result, SignedCredential)
                check_signed(result, keys.signers[P256], licence_payload(n), n)
            check_signed(later, keys.signers[ED25519], licence_payload(9), 9)
        finally:
            await worker.aclose()

    asyncio.run(go())


def test_too_many_waiting_jobs_are_refused(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys, max_waiting=2)
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                outcomes = await asyncio.gather(
                    *(worker.sign(ED25519, licence_payload(n), n) for n in range(3)),
                    return_exceptions=True,
                )
                assert isinstance(outcomes[2], SigningUnavailable)
                for n in (0, 1):
                    signed = outcomes[n]
                    assert isinstance(signed, SignedCredential)
                    check_signed(signed, keys.signers[ED25519], licence_payload(n), n)
                # Room again once they are answered.
                await worker.sign(ED25519, licence_payload(3), 3)
        finally:
            await worker.aclose()

    asyncio.run(go())


def test_not_available_before_ready_and_after_close(keys: Keys) -> None:
    async def go() -> None:
        worker = SigningWorker(keys.directory, PASSPHRASE)
        assert not worker.available
        assert worker.pid is None
        with pytest.raises(SigningUnavailable):
            await worker.sign(ED25519, licence_payload(0), 0)
        await worker.start()
        pid = worker.pid
        assert pid is not None
        # Nothing has run since the passphrase was written: the child cannot be ready.
        assert not worker.available
        with pytest.raises(SigningUnavailable):
            await worker.sign(ED25519, licence_payload(0), 0)
        await eventually(lambda: worker.available, READY_SECONDS)
        async with asyncio.timeout(TIMEOUT_SECONDS):
            await worker.sign(ED25519, licence_payload(1), 1)
        started = time.monotonic()
        await worker.aclose()
        # It ended on reading the end of its input, not by being killed after 5 s.
        assert time.monotonic() - started < 4
        assert not worker.available
        with pytest.raises(SigningUnavailable):
            await worker.sign(ED25519, licence_payload(2), 2)
        await eventually(lambda: process_gone(pid), 5)
        await worker.aclose()  # twice is harmless

    asyncio.run(go())


def test_close_fails_the_jobs_still_waiting(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys)
        pid = worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the batch goes out but is never answered
        try:
            pending = [
                asyncio.create_task(worker.sign(P256, licence_payload(n), n)) for n in range(5)
            ]
            await asyncio.sleep(0.05)
            async with asyncio.timeout(TIMEOUT_SECONDS):
                closing = asyncio.create_task(worker.aclose())
                outcomes = await asyncio.gather(*pending, return_exceptions=True)
                assert all(isinstance(o, SigningUnavailable) for o in outcomes), outcomes
                os.kill(pid, signal.SIGCONT)  # it then reads the end of its input
                await closing
        finally:
            if not process_gone(pid):
                os.kill(pid, signal.SIGCONT)
        await eventually(lambda: process_gone(pid), 5)

    asyncio.run(go())


def test_killed_while_jobs_are_outstanding(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys)
        pid = worker.pid
        assert pid is not None
        try:
            # Stopped first, so the batch is surely out and unanswered when it dies.
            os.kill(pid, signal.SIGSTOP)
            pending = [
                asyncio.create_task(worker.sign(ED25519, licence_payload(n), n)) for n in range(20)
            ]
            await asyncio.sleep(0.05)
            assert worker.available
            os.kill(pid, signal.SIGKILL)
            async with asyncio.timeout(TIMEOUT_SECONDS):
                outcomes = await asyncio.gather(*pending, return_exceptions=True)
                assert all(isinstance(o, SigningUnavailable) for o in outcomes), outcomes
                await eventually(lambda: not worker.available, TIMEOUT_SECONDS)
                with pytest.raises(SigningUnavailable):
                    await worker.sign(ED25519, licence_payload(99), 99)
        finally:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await worker.aclose()
        assert process_gone(pid)

    asyncio.run(go())


def test_killed_in_the_middle_of_a_batch(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys)
        pid = worker.pid
        assert pid is not None
        jobs = [(P256, licence_payload(n), n) for n in range(400)]
        try:
            # One batch at a time: the first 50 jobs go out alone (and wait, the worker
            # stopped), the other 350 queue behind them.
            os.kill(pid, signal.SIGSTOP)
            first = [asyncio.create_task(worker.sign(*job)) for job in jobs[:50]]
            await asyncio.sleep(0.05)
            rest = [asyncio.create_task(worker.sign(*job)) for job in jobs[50:]]
            await asyncio.sleep(0)
            # The second batch goes out as the first is answered; it dies signing it.
            first[-1].add_done_callback(lambda _: os.kill(pid, signal.SIGKILL))
            os.kill(pid, signal.SIGCONT)
            async with asyncio.timeout(TIMEOUT_SECONDS):
                outcomes = await asyncio.gather(*first, *rest, return_exceptions=True)
            for (name, payload, index), outcome in zip(jobs, outcomes, strict=True):
                if index < 50:
                    assert isinstance(outcome, SignedCredential), outcome
                    check_signed(outcome, keys.signers[name], payload, index)
                else:
                    assert isinstance(outcome, SigningUnavailable), outcome
            assert not worker.available
        finally:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await worker.aclose()
        assert process_gone(pid)

    asyncio.run(go())


def test_killed_right_before_a_job(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys)
        pid = worker.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        # The loss is not noticed yet: the job is taken, then refused when it is.
        assert worker.available
        async with asyncio.timeout(TIMEOUT_SECONDS):
            with pytest.raises(SigningUnavailable):
                await worker.sign(P256, licence_payload(0), 0)
            assert not worker.available
            with pytest.raises(SigningUnavailable):
                await worker.sign(P256, licence_payload(1), 1)
            await worker.aclose()

    asyncio.run(go())


def test_a_worker_that_stops_answering_is_stopped_and_its_callers_told(keys: Keys) -> None:
    async def go() -> None:
        worker = await ready_worker(keys, answer_timeout=2)
        pid = worker.pid
        assert pid is not None
        try:
            # Each key's first job decrypts it, which is slow on a loaded machine.
            for n, name in enumerate((P256, ED25519)):
                assert isinstance(await worker.sign(name, licence_payload(n), n), SignedCredential)
            os.kill(pid, signal.SIGSTOP)  # alive, but answering nothing
            started = time.monotonic()
            async with asyncio.timeout(TIMEOUT_SECONDS):
                outcomes = await asyncio.gather(
                    *(worker.sign(ED25519, licence_payload(n), n) for n in range(2, 5)),
                    return_exceptions=True,
                )
            assert all(isinstance(o, SigningUnavailable) for o in outcomes), outcomes
            assert time.monotonic() - started >= 2
            assert not worker.available
            await eventually(lambda: process_gone(pid), 5)  # killed, not left stopped
        finally:
            await worker.aclose()

    asyncio.run(go())
