"""Sealing PDFs: a PAdES signature whose visible appearance is the seal image.

The seal is a pyHanko signature (subfilter /ETSI.CAdES.detached) in a new field,
added as an incremental update: the input stays a prefix of the output, so earlier
signatures keep validating. The field's widget draws the seal image.

Input PDFs are untrusted. `inspect_pdf` reads the cross-reference data, the page
tree and the form (never page contents) and turns every failure into a
`PdfRejectedError` with a stable reason. pyHanko parses in strict mode: a seal
vouches for what the document shows, and a lenient reader's repairs (a clobbered
object, a hybrid-reference file) may show one thing here and another in the next
viewer. Encrypted PDFs are refused, never decrypted: even with an empty user
password, their permissions belong to their owner.

A `PdfSealer` seals many documents in a worker process, so what depends only on
the seal is done once: keys and certificates in pyHanko's types, the space to
reserve for the signature (sizing it by a dry-run signature would nearly double
the cost), and the seal image compressed into PDF image streams, which each
document then receives as ready bytes instead of another zlib pass (~5 ms each).
Its first B-B container is pyHanko's; later ones refill that container's template
(`signer._cms_template`), since pyHanko rebuilds the whole CMS in asn1crypto for
every signature (~7 ms of 11).

By default the seal is PAdES baseline B-B. With a timestamp authority (RFC 3161) the
CMS also carries a signature timestamp token: B-T. With `LtvMaterial` as well,
pyHanko validates the seal and TSA certificates before signing, against the given
roots and revocation data only, and appends a document security store (/DSS) with
the certificates and that revocation data in an incremental update: B-LT.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import struct
import urllib.parse
import zlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from asn1crypto import cms
from asn1crypto import crl as asn1_crl
from asn1crypto import keys as asn1_keys
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from PIL import Image
from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.content import PdfContent, ResourceType
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError as SigningError  # re-exported
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.timestamps import TimestampRequestError as TimestampRequestError  # re-exported
from pyhanko.sign.validation import read_certification_data
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathError
from pyhanko_certvalidator.errors import ValidationError as CertValidationError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from signer._cms_template import CmsTemplate

MAX_PDF_BYTES = 16 * 1024 * 1024
MAX_PAGES = 2000
PLACEMENT_TOLERANCE = 0.5  # points: boxes converted from millimetres round a little

# On hostile bytes pyHanko fails with its own errors, with its structural `assert`s,
# and with whatever a half-parsed object makes Python raise.
_PARSE_ERRORS: tuple[type[Exception], ...] = (PdfError, ValueError, LookupError, TypeError)
_PARSE_ERRORS += (AttributeError, ArithmeticError, AssertionError, RecursionError)
_PARSE_ERRORS += (struct.error, zlib.error)
# The CMS container beyond its certificates and the issuer name (in it twice):
# signed attributes and a signature value (measured: under 800 bytes).
_CMS_MARGIN = 2048
# A signature timestamp token is the TSA's own SignedData inside ours: TSTInfo, signed
# attributes, a signature and the TSA's certificates; usually 2-6 KB, about 7 KB with an
# RSA-4096 chain of three. A token that does not fit fails every seal, and measuring a
# TSA's would take a request to it here, so this is about twice the usual. B-LT adds
# nothing here: the DSS goes into a later revision, outside /Contents.
_TIMESTAMP_MARGIN = 12 * 1024
_TSA_TIMEOUT = 5.0  # seconds; a sealing worker waits this long at most


class PdfRejectedError(ValueError):
    """A PDF cannot be sealed; `reason` is a stable code for error details."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Placement:
    page: int  # 1-based
    x: float  # points, from the lower-left corner of the page box
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class PdfInfo:
    page_count: int
    page_sizes: tuple[tuple[float, float], ...]  # (width, height): CropBox, else MediaBox
    signature_count: int  # signature fields that are signed


@dataclass(frozen=True)
class SealIdentity:
    private_key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]  # issuers up to and including the region root
    image_png: bytes  # checked by signer.sealimage


@dataclass(frozen=True)
class LtvMaterial:
    """What a PAdES B-LT seal embeds in the document security store, and the roots the
    seal and TSA certificates must chain to. Nothing is fetched: every certificate
    below a root needs a CRL or OCSP response (DER) here, current when sealing."""

    trust_roots: tuple[x509.Certificate, ...]
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()  # OCSPResponse, not only the BasicOCSPResponse


@dataclass(frozen=True)
class _Parsed:
    reader: Any
    info: PdfInfo
    origins: tuple[tuple[float, float], ...]  # lower-left corner of each page box


def inspect_pdf(pdf: bytes) -> PdfInfo:
    """Parse `pdf` far enough to seal it, or raise PdfRejectedError."""
    return _parse(pdf).info


def check_placement(info: PdfInfo, placement: Placement) -> None:
    """Raise PdfRejectedError unless the box lies on an existing page."""
    box = (placement.x, placement.y, placement.width, placement.height)
    if not all(map(math.isfinite, box)) or placement.width <= 0 or placement.height <= 0:
        raise PdfRejectedError("PLACEMENT_INVALID", f"not a usable box: {box}")
    if not 1 <= placement.page <= info.page_count:
        message = f"page {placement.page} of a {info.page_count}-page PDF"
        raise PdfRejectedError("PAGE_OUT_OF_RANGE", message)
    width, height = info.page_sizes[placement.page - 1]
    if (
        min(placement.x, placement.y) < -PLACEMENT_TOLERANCE
        or placement.x + placement.width > width + PLACEMENT_TOLERANCE
        or placement.y + placement.height > height + PLACEMENT_TOLERANCE
    ):
        message = f"box {box} is not on the {width} x {height} page"
        raise PdfRejectedError("PLACEMENT_OUTSIDE_PAGE", message)


class PdfSealer:
    """Seals PDFs with one seal; build once per seal, reuse for every document."""

    def __init__(
        self,
        identity: SealIdentity,
        *,
        timestamper: TimeStamper | None = None,
        ltv: LtvMaterial | None = None,
    ) -> None:
        """`timestamper` makes the seals B-T (see `http_timestamper`); `ltv` as well
        makes them B-LT. `ltv` alone is refused: pyHanko would write the DSS, but its
        AdES validation with time fails a signature without a timestamp token, since
        nothing then shows the seal existed while its revocation data was current."""
        cert, key = identity.certificate, identity.private_key
        if cert.public_key() != key.public_key():
            raise ValueError("the private key does not belong to the seal certificate")
        ders = [c.public_bytes(serialization.Encoding.DER) for c in (cert, *identity.chain)]
        pkcs8 = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        certs = [asn1_x509.Certificate.load(der) for der in ders]
        self._signer = _TemplateSigner(
            key,
            signing_cert=certs[0],
            signing_key=asn1_keys.PrivateKeyInfo.load(pkcs8),
            cert_registry=SimpleCertificateStore.from_certs(certs[1:]),  # type: ignore[no-untyped-call]
        )
        # RFC 8419 fixes SHA-512 for Ed25519 in CMS, and pyHanko enforces it.
        self._md = "sha512" if isinstance(key, ed25519.Ed25519PrivateKey) else "sha256"
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        self._name = str(names[0].value) if names else None
        issuer = len(cert.issuer.public_bytes())
        # pyHanko counts hex digits of /Contents: two per byte of CMS.
        self.bytes_reserved = 2 * (sum(map(len, ders)) + 2 * issuer + _CMS_MARGIN)
        self._image = _EncodedImage.from_png(identity.image_png)
        self._timestamper = None if timestamper is None else _GuardedTimeStamper(timestamper)
        if timestamper is not None:
            self.bytes_reserved += 2 * _TIMESTAMP_MARGIN
        if ltv is not None and timestamper is None:
            raise ValueError("PAdES B-LT needs a timestamper: B-LT is B-T with a DSS")
        self._ltv = None if ltv is None else _LtvData.parse(ltv)
        if ltv is not None:
            logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_not_fetching)

    def seal(
        self,
        pdf: bytes,
        placement: Placement,
        *,
        reason: str = "",
        location: str = "",
        field_name: str | None = None,
        signing_time: datetime | None = None,
    ) -> bytes:
        """The sealed PDF. Raises PdfRejectedError for unusable input. Faults that are
        not the document's raise other errors: TimestampRequestError (an OSError) when
        the TSA fails, SigningError when B-LT's checks fail (a revoked certificate, or
        one without current revocation data in the LtvMaterial).

        `field_name` must be a new top-level name (else ValueError); by default the
        first free one of Seal1, Seal2, ... `signing_time` (aware, default now) goes
        into the signature dictionary's /M, where PAdES puts it.
        """
        if signing_time is not None and signing_time.tzinfo is None:
            raise ValueError("signing_time must be timezone-aware")
        parsed = _parse(pdf)
        check_placement(parsed.info, placement)
        try:
            taken = _field_names(parsed.reader)
            writer = IncrementalPdfFileWriter.from_reader(parsed.reader)
        except _PARSE_ERRORS as exc:
            raise _malformed(exc) from exc
        if field_name is None:
            field_name = next(
                f"Seal{n}" for n in range(1, 2 + len(taken)) if f"Seal{n}" not in taken
            )
        elif "." in field_name or field_name in taken:
            raise ValueError(f"{field_name!r} is taken or not a top-level field name")
        x0, y0 = parsed.origins[placement.page - 1]
        x, y = x0 + placement.x, y0 + placement.y
        ltv: dict[str, Any] = {}
        if self._ltv is not None:
            # A context per document: one validates at the moment it was created and
            # keeps what it saw, so a shared one would judge CRLs by a stale clock.
            ltv = {"embed_validation_info": True, "validation_context": self._ltv.context()}
        meta = signers.PdfSignatureMetadata(
            field_name=field_name,
            md_algorithm=self._md,
            subfilter=fields.SigSeedSubFilter.PADES,
            reason=reason or None,
            location=location or None,
            name=self._name,
            **ltv,
        )
        style = StaticStampStyle(
            border_width=0,
            background=_SealBackground(self._image),
            background_layout=_FIT_CENTRED,
            background_opacity=1.0,
        )
        # pyHanko annotates the box as ints but writes it as reals.
        box: Any = (x, y, x + placement.width, y + placement.height)
        spec = fields.SigFieldSpec(field_name, on_page=placement.page - 1, box=box)
        pdf_signer = _TimedPdfSigner(
            meta,
            self._signer,
            signing_time=signing_time or datetime.now(UTC),
            timestamper=self._timestamper,
            stamp_style=style,
            new_field_spec=spec,
        )
        try:
            output = pdf_signer.sign_pdf(writer, bytes_reserved=self.bytes_reserved)
        except SigningError:
            raise  # ours (such as too little space reserved), not the document's
        except _PARSE_ERRORS as exc:
            # Signing reads objects the inspection did not need (catalogue, form).
            raise _malformed(exc) from exc
        return bytes(output.getbuffer())


def signed_length(pdf: bytes, field_name: str) -> int:
    """Where the revision signed by the signature in field `field_name` ends: its
    /ByteRange covers everything before that but the signature value itself. With
    B-LT, the /DSS of validation data follows in a later revision."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=True)
    for signature in reader.embedded_signatures:
        if signature.field_name == field_name:
            _, _, start, length = (int(n) for n in signature.sig_object["/ByteRange"])
            return start + length
    raise ValueError(f"no signature in field {field_name!r}")


def http_timestamper(url: str, *, timeout: float = _TSA_TIMEOUT) -> TimeStamper:
    """A client for the RFC 3161 timestamp authority at `url` (HTTP POST).

    Plain http is usual for TSAs: the reply is signed, and the nonce ties it to the
    request. Each seal opens its own connection: pyHanko runs every signature in a
    new event loop, which an HTTP session cannot outlive.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return HTTPTimeStamper(url, timeout=timeout)


class _GuardedTimeStamper(TimeStamper):
    """pyHanko reads the TSA's reply while signing, where a garbled one would fail as a
    malformed document does. Here every failure of the TSA is a TimestampRequestError,
    and a token for another digest fails the seal rather than its validation."""

    def __init__(self, tsa: TimeStamper) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._tsa = tsa

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> Any:
        with _tsa_failures():
            token = await self._tsa.async_timestamp(message_digest, md_algorithm)
            info = token["content"]["encap_content_info"]["content"].parsed
            stamped = info["message_imprint"]["hashed_message"].native
        if stamped != message_digest:
            raise TimestampRequestError("the timestamp token is for another digest")
        return token

    async def async_dummy_response(self, md_algorithm: str) -> Any:
        # For B-LT, pyHanko asks for one token to learn the TSA's certificates.
        with _tsa_failures():
            return await super().async_dummy_response(md_algorithm)

    async def validation_paths(self, validation_context: Any) -> AsyncIterator[Any]:
        # pyHanko reports the seal certificate failing B-LT's checks as a SigningError,
        # and the TSA's as certvalidator's own errors; one kind of error for both.
        try:
            async for path in super().validation_paths(validation_context):  # type: ignore[no-untyped-call]
                yield path
        except (PathError, CertValidationError) as exc:
            raise SigningError(f"the TSA certificate could not be validated: {exc}") from exc


@contextlib.contextmanager
def _tsa_failures() -> Iterator[None]:
    try:
        yield
    except TimestampRequestError:
        raise
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:200]
        raise TimestampRequestError(f"unusable timestamp token ({detail})") from exc


@dataclass(frozen=True)
class _LtvData:
    """LtvMaterial in asn1crypto's types, parsed once. Parsing it all here also keeps
    a bad CRL from failing a seal later as if the document were malformed."""

    roots: tuple[Any, ...]
    crls: tuple[Any, ...]
    ocsps: tuple[Any, ...]

    @classmethod
    def parse(cls, ltv: LtvMaterial) -> _LtvData:
        if not ltv.trust_roots:
            raise ValueError("B-LT needs the trust roots of the seal and TSA certificates")
        if not ltv.crls and not ltv.ocsps:
            raise ValueError("B-LT needs revocation data: CRLs or OCSP responses")
        der = serialization.Encoding.DER
        roots = tuple(asn1_x509.Certificate.load(c.public_bytes(der)) for c in ltv.trust_roots)
        try:
            crls = tuple(asn1_crl.CertificateList.load(d, strict=True) for d in ltv.crls)
            ocsps = tuple(asn1_ocsp.OCSPResponse.load(d, strict=True) for d in ltv.ocsps)
            for item in (*crls, *ocsps):
                item.native  # noqa: B018  (asn1crypto parses lazily)
        except _PARSE_ERRORS as exc:
            raise ValueError(f"unreadable CRL or OCSP response: {exc}") from exc
        return cls(roots, crls, ocsps)

    def context(self) -> ValidationContext:
        # "require": no certificate below a root goes without revocation data, so the
        # DSS is complete or there is no seal. pyHanko embeds all of the data either way.
        return ValidationContext(
            trust_roots=list(self.roots),
            crls=list(self.crls),
            ocsps=list(self.ocsps),
            allow_fetching=False,
            revocation_mode="require",
        )


def _not_fetching(record: logging.LogRecord) -> bool:
    """Drops pyHanko's warning, on every B-LT seal, that it does not fetch revocation
    data: LtvMaterial is meant to be all the data there is."""
    return not str(record.msg).startswith("Validation/revocation info will be embedded")


def _malformed(exc: BaseException) -> PdfRejectedError:
    detail = f"{type(exc).__name__}: {exc}"[:200]
    return PdfRejectedError("PDF_MALFORMED", f"not a readable PDF ({detail})")


def _parse(pdf: bytes) -> _Parsed:
    if len(pdf) > MAX_PDF_BYTES:
        raise PdfRejectedError("PDF_TOO_LARGE", f"{len(pdf)} bytes, at most {MAX_PDF_BYTES}")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=True)
        if "/Encrypt" in reader.trailer:
            raise PdfRejectedError("PDF_ENCRYPTED", "encrypted PDFs are not sealed")
        if reader.xrefs.hybrid_xrefs_present:  # pyHanko will not sign these in strict mode
            raise PdfRejectedError("PDF_MALFORMED", "hybrid cross-reference sections")
        boxes: list[tuple[float, float, float, float]] = []
        _walk_pages(reader.root.raw_get("/Pages"), {}, set(), boxes)
        signed = sum(1 for _ in fields.enumerate_sig_fields(reader, filled_status=True))
        certified = read_certification_data(reader)
    except PdfRejectedError:
        raise
    except _PARSE_ERRORS as exc:
        raise _malformed(exc) from exc
    if certified is not None and certified.permission == fields.MDPPerm.NO_CHANGES:
        # Beyond the agreed reason list: the author's certification forbids any change.
        raise PdfRejectedError("PDF_LOCKED", "the PDF is certified with no changes permitted")
    sizes = tuple((x2 - x1, y2 - y1) for x1, y1, x2, y2 in boxes)
    origins = tuple((x1, y1) for x1, y1, _, _ in boxes)
    return _Parsed(reader, PdfInfo(len(boxes), sizes, signed), origins)


def _walk_pages(ref: Any, inherited: dict[str, Any], seen: set[Any], out: list[Any]) -> None:
    """Append each page's box in order. Checking every /Count keeps pyHanko's own
    walk, which trusts /Count to find a page, in step with this one."""
    if not isinstance(ref, generic.IndirectObject) or ref.reference in seen:
        raise PdfError("page tree nodes must be distinct indirect objects")
    if len(seen) > 2 * MAX_PAGES:  # bounds the work (and the recursion) on crafted trees
        raise PdfError("too many page tree nodes")
    seen.add(ref.reference)
    node: Any = ref.reference.get_object()
    inherited = inherited | {k: node[k] for k in ("/MediaBox", "/CropBox") if k in node}
    if node["/Type"] == "/Page":
        x1, y1, x2, y2 = _rect(inherited["/MediaBox"])
        if "/CropBox" in inherited:  # what viewers show: the crop box within the media box
            cx1, cy1, cx2, cy2 = _rect(inherited["/CropBox"])
            x1, y1, x2, y2 = max(x1, cx1), max(y1, cy1), min(x2, cx2), min(y2, cy2)
        if x2 <= x1 or y2 <= y1:
            raise PdfError("empty page box")
        out.append((x1, y1, x2, y2))
        if len(out) > MAX_PAGES:
            raise PdfRejectedError("PDF_TOO_MANY_PAGES", f"more than {MAX_PAGES} pages")
        return
    if node["/Type"] != "/Pages":
        raise PdfError("page tree node is neither /Pages nor /Page")
    before, kids = len(out), node["/Kids"]
    for i in range(len(kids)):
        _walk_pages(kids.raw_get(i), inherited, seen, out)
    if node["/Count"] != len(out) - before:
        raise PdfError("page tree /Count does not match its pages")


def _rect(value: Any) -> tuple[float, float, float, float]:
    if not isinstance(value, generic.ArrayObject) or len(value) != 4:
        raise PdfError("a page box must be an array of four numbers")
    xa, ya, xb, yb = (float(value[i]) for i in range(4))
    if not all(map(math.isfinite, (xa, ya, xb, yb))):
        raise PdfError("page box is not finite")
    return min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)


def _field_names(reader: Any) -> set[str]:
    """Names of the top-level form fields: a name without a dot can only clash there."""
    try:
        top = reader.root["/AcroForm"]["/Fields"]
    except KeyError:
        return set()
    found = (top[i] for i in range(len(top)))
    return {str(f["/T"]) for f in found if isinstance(f, generic.DictionaryObject) and "/T" in f}


@dataclass(frozen=True)
class _EncodedImage:
    """The seal as 8-bit samples, Flate-compressed once: colour, and alpha as a soft mask."""

    size: tuple[int, int]
    rgb: bytes
    alpha: bytes | None  # None when opaque: a scan on white needs no mask

    @classmethod
    def from_png(cls, png: bytes) -> _EncodedImage:
        with Image.open(io.BytesIO(png)) as opened:
            image = opened.convert("RGBA")
        alpha = image.getchannel("A")
        rgb = zlib.compress(image.convert("RGB").tobytes(), 9)
        opaque = alpha.getextrema() == (255, 255)
        return cls(image.size, rgb, None if opaque else zlib.compress(alpha.tobytes(), 9))

    def add_to(self, writer: Any) -> Any:
        """Add the image XObject to `writer` as pyHanko's `pil_image` would, minus zlib."""
        name, number = generic.pdf_name, generic.NumberObject

        def image(colour_space: str, data: bytes, **extra: Any) -> Any:
            entries = {
                "/Type": name("/XObject"),
                "/Subtype": name("/Image"),
                "/Width": number(self.size[0]),  # type: ignore[no-untyped-call]
                "/Height": number(self.size[1]),  # type: ignore[no-untyped-call]
                "/ColorSpace": name(colour_space),
                "/BitsPerComponent": number(8),  # type: ignore[no-untyped-call]
                "/Filter": name("/FlateDecode"),
                **extra,
            }
            named = {name(k): v for k, v in entries.items()}
            return writer.add_object(generic.StreamObject(named, encoded_data=data))

        if self.alpha is None:
            return image("/DeviceRGB", self.rgb)
        return image("/DeviceRGB", self.rgb, **{"/SMask": image("/DeviceGray", self.alpha)})


# The seal fills the field's box, centred and undistorted: a round seal stays round.
_FIT_CENTRED = layout.SimpleBoxLayoutRule(
    x_align=layout.AxisAlignment.ALIGN_MID,
    y_align=layout.AxisAlignment.ALIGN_MID,
    margins=layout.Margins(),
    inner_content_scaling=layout.InnerScaling.STRETCH_TO_FIT,
)


class _SealBackground(PdfContent):
    """The stamp's background, drawn as pyHanko's `PdfImage` draws. One per document:
    pyHanko keeps the document's writer and resources on it."""

    def __init__(self, image: _EncodedImage) -> None:
        super().__init__(box=layout.BoxConstraints(*image.size))
        self._image = image

    def render(self) -> bytes:
        ref = self._image.add_to(self._ensure_writer)
        self.set_resource(ResourceType.XOBJECT, generic.pdf_name("/Seal"), ref)
        # An image fills the unit square; pyHanko scales this box to the field's.
        return b"q %d 0 0 %d 0 0 cm /Seal Do Q" % self._image.size


class _TemplateSigner(signers.SimpleSigner):
    """pyHanko's signer, except that once it has made a B-B container it refills that
    container's template (`signer._cms_template`) for the next documents. Dry runs,
    timestamped (B-T, B-LT) and non-PDF signatures always take pyHanko's path."""

    def __init__(
        self, key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._key = key
        self._template: CmsTemplate | None = None
        self._captured = False

    def _sign_raw(self, data: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(data)
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))

    async def async_sign(
        self,
        data_digest: bytes,
        digest_algorithm: str,
        dry_run: bool = False,
        use_pades: bool = False,
        timestamper: Any = None,
        signed_attr_settings: Any = None,
        is_pdf_sig: bool = True,
        encap_content_info: Any = None,
    ) -> Any:
        plain = not dry_run and use_pades and is_pdf_sig
        plain = plain and timestamper is None and encap_content_info is None
        template = self._template
        if plain and template is not None and template.digest_algorithm == digest_algorithm:
            return cms.ContentInfo.load(template.fill(data_digest, self._sign_raw))
        made = await super().async_sign(
            data_digest,
            digest_algorithm,
            dry_run=dry_run,
            use_pades=use_pades,
            timestamper=timestamper,
            signed_attr_settings=signed_attr_settings,
            is_pdf_sig=is_pdf_sig,
            encap_content_info=encap_content_info,
        )
        if plain and not self._captured:
            self._captured = True  # one try: a refused template stays refused
            template = CmsTemplate.capture(made.dump(), data_digest)
            ed = isinstance(self._key, ed25519.Ed25519PrivateKey)
            # `_sign_raw` must make what the container says it holds.
            if template and template.signature_algorithm == ("ed25519" if ed else "sha256_ecdsa"):
                self._template = template
        return made


class _TimedPdfSigner(signers.PdfSigner):
    """pyHanko 0.38 takes the signing time (/M) only from the session it creates."""

    def __init__(self, *args: Any, signing_time: datetime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._signing_time = signing_time

    def init_signing_session(self, pdf_out: Any, existing_fields_only: bool = False) -> Any:
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._signing_time
        return session
