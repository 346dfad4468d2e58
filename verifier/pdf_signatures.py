"""What a PDF's bytes say about its signatures and seal images: the CPU-heavy half.

`inspect_signatures` reads the document with pyHanko and, for every signature,
computes what needs no outside knowledge: whether the covered bytes still match the
signed digest, whether the signature value verifies with the embedded certificate,
how much of the file it covers, what changed after it, the digest of the revision
it signed and the licence that revision names. It also lists every image drawn on
the pages. The result is plain picklable data, so a worker process can compute it;
judging it against the region's records is `verifier.pdf`'s job.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from datetime import datetime

from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, DiffResult, ModificationLevel
from pyhanko.sign.validation.generic_cms import validate_sig_integrity
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from verifier import _hex_strings
from verifier.errors import UnusableInputError
from verifier.seal_images import FoundImage, find_images

MAX_PDF_BYTES = 16 * 1024 * 1024
# A licence PDF names its licence in the signed revision's /Subject (see
# `signer.licence_pdf`); the signature covers it, so it can be trusted as what the
# signer signed.
_LICENCE_SUBJECT = re.compile(r"证照标识 (1\.2\.156\.3005\.2\.[0-9A-Za-z.]+)")
_PADES_SUBFILTERS = ("/ETSI.CAdES.detached", "/adbe.pkcs7.detached")
_hex_strings.install()


@dataclass(frozen=True, slots=True)
class SignatureFindings:
    field_name: str
    problem: str | None  # the signature cannot be read at all
    intact: bool = False  # the covered bytes match the signed digest
    valid: bool = False  # the signature value verifies with the signer's certificate
    coverage: str = ""  # pyHanko SignatureCoverageLevel name
    modification_level: str | None = None  # pyHanko ModificationLevel name, if analysable
    modification_problem: str | None = None  # why the changes after signing are suspicious
    changed_fields: tuple[str, ...] = ()
    signer_certificate: bytes = b""  # DER
    claimed_signing_time: datetime | None = None
    revision_digest: bytes = b""  # SHA-256 of the file up to the end of the signed revision
    licence_id: str | None = None


@dataclass(frozen=True, slots=True)
class PdfFindings:
    problem: str | None  # the document cannot be read
    signatures: tuple[SignatureFindings, ...] = ()
    signature_problem: str | None = None  # signature fields exist but cannot be listed
    images: tuple[FoundImage, ...] = ()


def _licence_id(reader: PdfFileReader, revision: int) -> str | None:
    info = reader.get_historical_resolver(revision).trailer_view.get("/Info")
    if info is None:
        return None
    info = info.get_object()
    subject = info.get("/Subject") if isinstance(info, generic.DictionaryObject) else None
    if not isinstance(subject, generic.TextStringObject | generic.ByteStringObject):
        return None
    text = subject if isinstance(subject, str) else subject.original_bytes.decode("latin-1")
    match = _LICENCE_SUBJECT.fullmatch(str(text))
    return match.group(1) if match else None


def _inspect(signature: EmbeddedPdfSignature, pdf: bytes) -> SignatureFindings:
    name = str(signature.field_name or "")  # a plain str: pyHanko's would pickle the reader
    subfilter = signature.sig_object.get("/SubFilter")
    if subfilter not in _PADES_SUBFILTERS:
        return SignatureFindings(name, f"unsupported signature format {subfilter}")
    signature.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY)  # type: ignore[no-untyped-call]
    digest = signature.compute_digest()
    certificate = signature.signer_cert
    intact, valid = validate_sig_integrity(
        signature.signer_info, certificate, expected_content_type="data", actual_digest=digest
    )
    diff = signature.diff_result
    level: str | None = None
    problem: str | None = None
    changed: tuple[str, ...] = ()
    if isinstance(diff, DiffResult):
        level = ModificationLevel(diff.modification_level).name
        changed = tuple(sorted(diff.changed_form_fields))
    elif diff is not None:
        problem = str(diff)
    *_, start2, len2 = (int(x) for x in signature.byte_range)
    end = start2 + len2
    return SignatureFindings(
        field_name=name,
        problem=None,
        intact=intact,
        valid=valid,
        coverage=signature.coverage.name if signature.coverage is not None else "",
        modification_level=level,
        modification_problem=problem,
        changed_fields=changed,
        signer_certificate=certificate.dump(),
        claimed_signing_time=signature.self_reported_timestamp,
        revision_digest=hashlib.sha256(pdf[:end]).digest(),
        licence_id=_licence_id(signature.reader, signature.signed_revision),
    )


def inspect_signatures(pdf: bytes) -> PdfFindings:
    """Everything the bytes alone say; never raises for a hostile document."""
    if not pdf:
        raise UnusableInputError("the PDF is empty")
    if len(pdf) > MAX_PDF_BYTES:
        raise UnusableInputError(f"the PDF exceeds {MAX_PDF_BYTES} bytes")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=True)
        if reader.encrypted:
            return PdfFindings("the PDF is encrypted; its signatures cannot be validated")
        reader.root  # noqa: B018 -- parse the catalogue now, or fail as malformed
    except (misc.PdfError, ValueError, KeyError, TypeError, IndexError, RecursionError) as exc:
        return PdfFindings(f"not a readable PDF: {exc}")
    images = tuple(find_images(reader))
    try:
        embedded = reader.embedded_regular_signatures
    # Hostile input reaches deep into pyHanko and asn1crypto, which raise many
    # unrelated exception types for malformed structures; any of them means the
    # signature cannot be read, which the report states.
    except Exception as exc:
        return PdfFindings(None, (), f"a signature cannot be read: {exc}", images)
    found = []
    for signature in embedded:
        try:
            found.append(_inspect(signature, pdf))
        except Exception as exc:
            found.append(SignatureFindings(str(signature.field_name or ""), f"{exc}"))
    return PdfFindings(None, tuple(found), None, images)
