"""PDF work in a pool of processes: rendering printable licences and sealing PDFs.

PAdES signing is CPU-bound pure Python (pyHanko, asn1crypto), so it runs in worker
processes, one per core. The pool forks before the server opens RocksDB or starts
gRPC (`start` must be called first thing), so no worker inherits a database handle
or a gRPC thread. Each worker opens the region's key store itself and keeps one
`PdfSealer` per seal: the seal's key, certificate chain and encoded image are
prepared once and reused for every document.

Jobs and results are plain frozen dataclasses (pickled across the pipe). A refusal
comes back as a `Refused` value rather than an exception, because exceptions with
extra constructor arguments do not survive pickling.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from licenceledger.licence.v1 import licence_pb2
from licenceledger.registry.v1 import registry_pb2
from service.lifeline import die_with_parent
from signer import licence_pdf, pades
from signer.keystore import FileKeyStore
from verifier.pdf_signatures import PdfFindings, inspect_signatures

_SEALERS_PER_WORKER = 64
TIMESTAMP_UNAVAILABLE = "TIMESTAMP_UNAVAILABLE"
VALIDATION_DATA_UNAVAILABLE = "VALIDATION_DATA_UNAVAILABLE"


@dataclass(frozen=True)
class SealMaterial:
    """What a worker needs to seal with one seal (no private key: workers load it)."""

    key_name: str
    certificate_der: bytes
    chain_der: tuple[bytes, ...]
    image_png: bytes

    @property
    def cache_key(self) -> tuple[str, bytes]:
        return self.key_name, hashlib.sha256(self.certificate_der).digest()


@dataclass(frozen=True)
class LtvData:
    """What a PAdES B-LT seal embeds (DER): trust roots, CRLs and OCSP responses."""

    roots: tuple[bytes, ...]
    crls: tuple[bytes, ...]
    ocsps: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class SealJob:
    seal: SealMaterial
    pdf: bytes
    placement: pades.Placement
    reason: str
    location: str
    ltv: LtvData | None = None  # B-LT (the workers must have a timestamp authority)


@dataclass(frozen=True)
class LicencePdfJob:
    seal: SealMaterial
    licence: bytes  # serialized Licence
    licence_type: bytes  # serialized LicenceType (face-field labels)
    qr_payload: str
    region_name: str
    reason: str
    location: str
    ltv: LtvData | None = None


@dataclass(frozen=True)
class Sealed:
    """A sealed PDF and the digest of what went in."""

    pdf: bytes
    digest_before: bytes
    field_name: str
    # Where the revision the seal signs ends: the whole PDF, unless validation data
    # (B-LT's /DSS) follow in a later revision.
    signed_length: int


@dataclass(frozen=True)
class Refused:
    reason: str
    message: str


# -- worker side -----------------------------------------------------------------


class _Worker:
    def __init__(self, keys: FileKeyStore, timestamp_url: str) -> None:
        self.keys = keys
        # PAdES B-T when the region has a timestamp authority; B-B otherwise.
        self.timestamper = pades.http_timestamper(timestamp_url) if timestamp_url else None
        self.sealers: OrderedDict[tuple[str, bytes, LtvData | None], pades.PdfSealer] = (
            OrderedDict()
        )

    def sealer(self, seal: SealMaterial, ltv: LtvData | None) -> pades.PdfSealer:
        # B-LT sealers embed one set of validation data: a new CRL makes a new sealer.
        cache_key = (*seal.cache_key, ltv)
        cached = self.sealers.get(cache_key)
        if cached is not None:
            self.sealers.move_to_end(cache_key)
            return cached
        key = self.keys.load(seal.key_name)
        if not isinstance(key, ec.EllipticCurvePrivateKey | Ed25519PrivateKey):
            raise TypeError(f"key {seal.key_name} cannot seal documents")
        identity = pades.SealIdentity(
            private_key=key,
            certificate=x509.load_der_x509_certificate(seal.certificate_der),
            chain=tuple(x509.load_der_x509_certificate(c) for c in seal.chain_der),
            image_png=seal.image_png,
        )
        made = self.sealers[cache_key] = pades.PdfSealer(
            identity, timestamper=self.timestamper, ltv=_ltv_material(ltv)
        )
        if len(self.sealers) > _SEALERS_PER_WORKER:
            self.sealers.popitem(last=False)
        return made


_worker: _Worker | None = None


def _init_worker(parent: int, keys_dir: str, passphrase: bytes, timestamp_url: str) -> None:
    global _worker  # one per worker process, set once by the pool
    die_with_parent(parent)
    _worker = _Worker(FileKeyStore(Path(keys_dir), passphrase), timestamp_url)


def _ready() -> int:
    return os.getpid()


def _ltv_material(ltv: LtvData | None) -> pades.LtvMaterial | None:
    if ltv is None:
        return None
    roots = tuple(x509.load_der_x509_certificate(der) for der in ltv.roots)
    return pades.LtvMaterial(roots, crls=ltv.crls, ocsps=ltv.ocsps)


def _seal(
    worker: _Worker,
    seal: SealMaterial,
    pdf: bytes,
    placement: pades.Placement,
    reason: str,
    location: str,
    ltv: LtvData | None,
) -> Sealed | Refused:
    digest = hashlib.sha256(pdf).digest()
    if ltv is not None and worker.timestamper is None:
        raise ValueError("PAdES B-LT needs the workers' timestamp authority")
    # The server read the validation data before sending them (revocations.py).
    sealer = worker.sealer(seal, ltv)
    # Named by the input's digest: new to the document (a document cannot contain a
    # name made from its own digest), and the same for the same input on any worker.
    field = "Seal-" + digest[:8].hex()
    try:
        # `seal` checks the document and the placement before signing.
        sealed = sealer.seal(pdf, placement, reason=reason, location=location, field_name=field)
    except pades.PdfRejectedError as exc:
        return Refused(exc.reason, str(exc))
    except pades.TimestampRequestError as exc:
        return Refused(TIMESTAMP_UNAVAILABLE, f"the timestamp authority failed: {exc}")
    except pades.SigningError as exc:  # B-LT: a certificate without current revocation data
        return Refused(VALIDATION_DATA_UNAVAILABLE, f"PAdES B-LT validation failed: {exc}")
    signed = len(sealed) if ltv is None else pades.signed_length(sealed, field)
    return Sealed(sealed, digest, field, signed)


def run_seal_job(job: SealJob) -> Sealed | Refused:
    if _worker is None:
        raise RuntimeError("not a sealing worker")
    return _seal(_worker, job.seal, job.pdf, job.placement, job.reason, job.location, job.ltv)


def run_licence_job(job: LicencePdfJob) -> Sealed | Refused:
    if _worker is None:
        raise RuntimeError("not a sealing worker")
    licence = licence_pb2.Licence.FromString(job.licence)
    licence_type = registry_pb2.LicenceType.FromString(job.licence_type)
    pdf = licence_pdf.render_licence_pdf(
        licence, job.qr_payload, licence_type=licence_type, region_name=job.region_name
    )
    box = licence_pdf.SEAL_BOX
    placement = pades.Placement(box.page, box.x, box.y, box.width, box.height)
    return _seal(_worker, job.seal, pdf, placement, job.reason, job.location, job.ltv)


# -- server side -----------------------------------------------------------------


class SealingPool:
    """The worker processes; `start` forks them, so call it before opening anything."""

    def __init__(
        self,
        keys_dir: Path,
        passphrase: bytes,
        workers: int | None = None,
        *,
        timestamp_url: str = "",
    ) -> None:
        self.workers = workers or os.cpu_count() or 1
        self._executor = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(os.getpid(), str(keys_dir), passphrase, timestamp_url),
        )

    def start(self) -> None:
        # With the fork context the executor forks every worker on its first submit,
        # synchronously, in this thread: after this line the children exist.
        self._executor.submit(_ready)

    async def seal(self, job: SealJob) -> Sealed | Refused:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, run_seal_job, job)

    async def licence(self, job: LicencePdfJob) -> Sealed | Refused:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, run_licence_job, job)

    async def inspect(self, pdf: bytes) -> PdfFindings:
        """A PDF's signatures and images, read in a worker (verification's heavy half)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, inspect_signatures, pdf)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
