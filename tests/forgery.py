"""Forged artefacts for the forgery corpus (SPEC §5): what a forger would really make.

Every builder takes genuine bytes (an envelope, a QR payload, a PDF, a ledger leaf) or
keys, and returns the forged bytes, built with the tools a forger has: JSON and
protobuf for credentials, `cryptography` for certificates, pyHanko and reportlab for
PDFs. Nothing here asks the server anything: the tests do that, and check the artefacts
independently before they do.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image
from pyhanko.pdf_utils import generic as _generic
from pyhanko.pdf_utils.images import PdfImage, pil_image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from licenceledger.licence.v1 import licence_pb2 as lpb
from signer import credentials, dsse, pades, pki, qr, seal_pki

# pyHanko's PDF object constructors carry no annotations; typed as Any once here rather
# than an ignore on every call.
generic: Any = _generic
pdf_name: Any = _generic.pdf_name

# -- credentials and QR payloads ---------------------------------------------------------


def envelope_with_holder_name(envelope: bytes, holder_name: str) -> bytes:
    """The forger decodes the envelope JSON, parses the signed Licence, puts another holder
    name in, re-serializes it into the base64 payload and keeps the signature as it was."""
    document = json.loads(envelope)
    licence = lpb.Licence.FromString(base64.b64decode(document["payload"]))
    licence.holder.name = holder_name
    changed = licence.SerializeToString(deterministic=True)
    document["payload"] = base64.b64encode(changed).decode("ascii")
    # The same compact JSON the issuer writes: only the payload differs.
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def qr_with_holder_name(payload: bytes, holder_name: str) -> bytes:
    """The forger Base45-decodes a genuine QR payload, changes the holder name in the
    signed claims, and re-encodes it with the original signature and key id."""
    code = qr.decode_qr(payload)
    claims = lpb.QrClaims.FromString(code.claims)
    claims.holder.name = holder_name
    code.claims = claims.SerializeToString(deterministic=True)
    raw = code.SerializeToString(deterministic=True)
    return (qr.QR_PREFIX + qr.base45_encode(raw)).encode("ascii")


def counterfeit_licence(
    template: lpb.Licence,
    *,
    licence_id: str,
    licence_number: str,
    type_code: str | None = None,
    type_name: str | None = None,
) -> lpb.Licence:
    """A licence the forger writes from a genuine one: a new identifier and number (and,
    if given, another licence type), everything else copied so it looks issued."""
    licence = lpb.Licence()
    licence.CopyFrom(template)
    licence.licence_id = licence_id
    licence.licence_number = licence_number
    if type_code is not None:
        licence.licence_type_code = type_code
    if type_name is not None:
        licence.licence_type_name = type_name
    return licence


def sign_licence(licence: lpb.Licence, key: dsse.SigningKey) -> bytes:
    """A DSSE envelope over `licence`, signed by `key` exactly as the service signs."""
    payload = licence.SerializeToString(deterministic=True)
    return dsse.Signer(key).envelope(dsse.LICENCE_PAYLOAD_TYPE, payload)


def sign_qr(licence: lpb.Licence, key: dsse.SigningKey, ledger_index: int) -> bytes:
    """The QR payload the service would print for `licence`, signed by `key`: the claims
    bind the envelope payload by digest and name a ledger index the forger picked."""
    payload = licence.SerializeToString(deterministic=True)
    claims = credentials.qr_claims(licence, payload, ledger_index)
    return qr.encode_qr(claims, dsse.Signer(key))


# -- a self-made PKI ------------------------------------------------------------------------


def self_made_root(genuine_root: x509.Certificate) -> pki.RegionCA:
    """A root CA the forger made with `cryptography`: the genuine root's subject and
    validity, the same extensions, but the forger's own P-256 key."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(genuine_root.subject)
        .issuer_name(genuine_root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(genuine_root.not_valid_before_utc)
        .not_valid_after(genuine_root.not_valid_after_utc)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return pki.RegionCA.from_parts(certificate, key)


def self_made_department(
    ca: pki.RegionCA, department_code: str, department_name: str, licence_types: list[str]
) -> tuple[Ed25519PrivateKey, x509.Certificate]:
    """A department key and a licence-signing certificate for it from the forger's root,
    with the genuine department's code, name and scope."""
    key = Ed25519PrivateKey.generate()
    issued = pki.issue_department_certificate(
        ca, department_code, department_name, key.public_key(), licence_types
    )
    return key, issued.certificate


def self_made_seal(
    ca: pki.RegionCA, scope: seal_pki.SealScope, seal_name: str, department_name: str, png: bytes
) -> pades.SealIdentity:
    """A seal key with a seal certificate from the forger's root, naming a genuine seal's
    id, owner and scope, and showing `png` (the genuine seal's image) when it signs."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    issued = seal_pki.issue_seal_certificate(
        ca,
        scope,
        seal_name,
        department_name,
        key.public_key(),
        not_before=now - timedelta(minutes=1),
        not_after=now + timedelta(days=30),
    )
    return pades.SealIdentity(key, issued.certificate, issued.chain, png)


def seal_outside_service(
    pdf: bytes, identity: pades.SealIdentity, placement: pades.Placement, reason: str = "同意"
) -> bytes:
    """A PAdES seal made with a seal key outside the service (no ledger entry), exactly as
    the service's sealing workers make one."""
    return pades.PdfSealer(identity).seal(pdf, placement, reason=reason, location="上海")


# -- PDFs -----------------------------------------------------------------------------------


def revisions(pdf: bytes) -> int:
    """How many revisions (the original and each incremental update) `pdf` has."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    total: int = reader.xrefs.total_revisions
    return total


def first_revision(pdf: bytes) -> bytes:
    """The document as it was before any incremental update: up to its first %%EOF."""
    end = pdf.index(b"%%EOF") + len(b"%%EOF")
    while end < len(pdf) and pdf[end : end + 1] in (b"\r", b"\n"):
        end += 1
    return pdf[:end]


def contract_pdf(title: str, lines: list[str], pages: int = 2) -> bytes:
    """A plain document of `pages` A4 pages (Latin text), like tests.e2e.plain_pdf."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, invariant=True)
    for number in range(pages):
        page.drawString(72, 760, f"{title} page {number + 1}")
        for i, line in enumerate(lines):
            page.drawString(72, 730 - 16 * i, line)
        page.showPage()
    page.save()
    return out.getvalue()


def document_with_seal_image(
    png: bytes, box: tuple[float, float, float, float], *, title: str = "Contract", pages: int = 2
) -> bytes:
    """A document the forger typeset with reportlab, the registered seal's PNG drawn on
    its last page where a seal goes (套用): no signature anywhere."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, invariant=True)
    x, y, width, height = box
    for number in range(pages):
        page.drawString(72, 760, f"{title} page {number + 1}")
        if number == pages - 1:
            page.drawImage(ImageReader(io.BytesIO(png)), x, y, width, height, mask="auto")
        page.showPage()
    page.save()
    return out.getvalue()


def _content_span(pdf: bytes, page_index: int) -> tuple[int, int]:
    """Offsets of the data of the page's (single, uncompressed) content stream."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    page_ref, _ = reader.find_page_for_modification(page_index)  # type: ignore[no-untyped-call]
    ref = page_ref.get_object().raw_get("/Contents")
    if not isinstance(ref, generic.IndirectObject):
        raise ValueError("the page's content is not one indirect stream")
    header = re.compile(rb"(?:^|[\r\n])%d %d obj\b" % (ref.idnum, ref.generation))
    found = list(header.finditer(pdf))
    if len(found) != 1:
        raise ValueError(f"object {ref.idnum} is defined {len(found)} times")
    start = pdf.index(b"stream", found[0].end())
    start += len(b"stream")
    start += 2 if pdf[start : start + 2] == b"\r\n" else 1
    return start, pdf.index(b"endstream", start)


def reportlab_cid_literal(text: str) -> bytes:
    """How reportlab writes `text` in a string operand for a UCS-2 CID font (the licence
    PDF's STSong-Light): each UTF-16BE byte, octal-escaped unless printable ASCII."""
    out = bytearray()
    for byte in text.encode("utf-16-be"):
        printable = 0x20 <= byte < 0x7F and byte not in b"()\\"
        out += bytes([byte]) if printable else b"\\%03o" % byte
    return bytes(out)


def change_printed_text(pdf: bytes, page_index: int, old: bytes, new: bytes) -> bytes:
    """The forger overwrites bytes of a page's content stream in place (e.g. a digit of the
    printed licence number): same length, so every offset, the xref and the signature's
    /ByteRange and /Contents stay as they were; only the covered bytes differ."""
    if len(old) != len(new) or old == new:
        raise ValueError("the replacement must differ and keep the length")
    start, end = _content_span(pdf, page_index)
    at = pdf.find(old, start, end)
    if at < 0 or pdf.find(old, at + 1, end) >= 0:
        raise ValueError(f"{old!r} does not occur exactly once in the page's content")
    return pdf[:at] + new + pdf[at + len(old) :]


def _writer(pdf: bytes) -> Any:
    return IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)


def _written(writer: Any) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _helvetica(writer: Any) -> Any:
    font = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type1"),
            pdf_name("/BaseFont"): pdf_name("/Helvetica"),
            pdf_name("/Encoding"): pdf_name("/WinAnsiEncoding"),
        }
    )
    return writer.add_object(font)


def _text_ops(x: float, y: float, size: float, text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"BT /FgHelv %g Tf 0.8 0 0 rg %g %g Td (%s) Tj ET" % (
        size,
        x,
        y,
        escaped.encode("latin-1"),
    )


def append_to_content_stream(pdf: bytes, page_index: int, operators: bytes) -> bytes:
    """An incremental update that rewrites the page's own content stream object (same
    object number) as its old content followed by `operators`, e.g. a white box over a
    line of the signed text."""
    writer = _writer(pdf)
    page_ref, _ = writer.find_page_for_modification(page_index)
    ref = page_ref.get_object().raw_get("/Contents")
    if not isinstance(ref, generic.IndirectObject):
        raise ValueError("the page's content is not one indirect stream")
    old = ref.get_object()
    new = generic.StreamObject(stream_data=old.data + b"\n" + operators + b"\n")
    # What IncrementalPdfFileWriter.mark_update does, with a new object in the old one's
    # place: the update redefines the object number the signed page points to.
    writer.objects[(ref.generation, ref.idnum)] = new
    return _written(writer)


def add_text_overlay(pdf: bytes, page_index: int, x: float, y: float, text: str) -> bytes:
    """An incremental update appending a second content stream to the page that draws
    `text` (with its own Helvetica resource) over what was signed."""
    writer = _writer(pdf)
    stream = generic.StreamObject(stream_data=_text_ops(x, y, 18, text))
    resources = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/FgHelv"): _helvetica(writer)})}
    )
    writer.add_stream_to_page(page_index, writer.add_object(stream), resources=resources)
    return _written(writer)


def add_page(pdf: bytes, text: str) -> bytes:
    """An incremental update adding an A4 page with `text` at the end of the document."""
    writer = _writer(pdf)
    stream = writer.add_object(generic.StreamObject(stream_data=_text_ops(72, 760, 14, text)))
    page = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Page"),
            pdf_name("/MediaBox"): generic.ArrayObject(
                [generic.FloatObject(v) for v in (0, 0, A4[0], A4[1])]
            ),
            pdf_name("/Resources"): generic.DictionaryObject(
                {
                    pdf_name("/Font"): generic.DictionaryObject(
                        {pdf_name("/FgHelv"): _helvetica(writer)}
                    )
                }
            ),
            pdf_name("/Contents"): stream,
        }
    )
    writer.insert_page(page)
    return _written(writer)


def add_overlay_annotation(
    pdf: bytes, page_index: int, rect: tuple[float, float, float, float], text: str
) -> bytes:
    """An incremental update adding a /Stamp annotation whose appearance (a form XObject)
    paints an opaque white box with `text` over the page at `rect` (x1, y1, x2, y2)."""
    writer = _writer(pdf)
    x1, y1, x2, y2 = rect
    width, height = x2 - x1, y2 - y1
    ops = b"1 1 1 rg 0 0 %g %g re f " % (width, height) + _text_ops(4, height / 3, 14, text)
    appearance = generic.StreamObject(
        {
            pdf_name("/Type"): pdf_name("/XObject"),
            pdf_name("/Subtype"): pdf_name("/Form"),
            pdf_name("/BBox"): generic.ArrayObject(
                [generic.FloatObject(v) for v in (0, 0, width, height)]
            ),
            pdf_name("/Resources"): generic.DictionaryObject(
                {
                    pdf_name("/Font"): generic.DictionaryObject(
                        {pdf_name("/FgHelv"): _helvetica(writer)}
                    )
                }
            ),
        },
        stream_data=ops,
    )
    annotation = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Annot"),
            pdf_name("/Subtype"): pdf_name("/Stamp"),
            pdf_name("/Rect"): generic.ArrayObject([generic.FloatObject(v) for v in rect]),
            pdf_name("/F"): generic.NumberObject(4),  # print
            pdf_name("/AP"): generic.DictionaryObject(
                {pdf_name("/N"): writer.add_object(appearance)}
            ),
        }
    )
    page_ref, _ = writer.find_page_for_modification(page_index)
    writer.register_annotation(page_ref, writer.add_object(annotation))
    return _written(writer)


def paste_image(
    pdf: bytes, png: bytes, page_index: int, box: tuple[float, float, float, float]
) -> bytes:
    """An incremental update drawing `png` (with its transparency) on the page at `box`
    (x, y, width, height): a seal image pasted in as a plain image, no signature."""
    writer = _writer(pdf)
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGBA")
    image_ref = pil_image(image, writer)
    x, y, width, height = box
    ops = b"q %g 0 0 %g %g %g cm /FgSeal Do Q" % (width, height, x, y)
    resources = generic.DictionaryObject(
        {pdf_name("/XObject"): generic.DictionaryObject({pdf_name("/FgSeal"): image_ref})}
    )
    stream = writer.add_object(generic.StreamObject(stream_data=ops))
    writer.add_stream_to_page(page_index, stream, resources=resources)
    return _written(writer)


def transplant_signature(sealed: bytes, target: bytes, png: bytes) -> bytes:
    """The genuine seal's CMS (the whole /Contents) moved into `target`: the forger lets
    pyHanko prepare `target` with the same field name, page, box, seal appearance and
    reserved size as the genuine signature, then writes the genuine CMS into the hole.
    The CMS signs the digest of the genuine document's byte range, not of this one."""
    reader = PdfFileReader(io.BytesIO(sealed), strict=False)
    genuine = reader.embedded_signatures[-1]
    padded: bytes = genuine.sig_object["/Contents"]
    content_info = cms.ContentInfo.load(padded, strict=False)
    der: bytes = content_info.dump()
    signer_cert = genuine.signer_cert
    certificates = [c.chosen for c in content_info["content"]["certificates"]]
    annotation = genuine.sig_field["/Kids"][0] if "/Kids" in genuine.sig_field else None
    widget = annotation.get_object() if annotation is not None else genuine.sig_field
    # pyHanko annotates the box as ints but writes it as reals.
    box: Any = tuple(float(v) for v in widget["/Rect"])
    page_index = _page_index(reader, widget.raw_get("/P"))
    external = signers.ExternalSigner(
        signing_cert=signer_cert,
        cert_registry=SimpleCertificateStore.from_certs(certificates),  # type: ignore[no-untyped-call]
        signature_value=bytes(72),
    )
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGBA")
    style = StaticStampStyle(border_width=0, background=PdfImage(image), background_opacity=1.0)
    meta = signers.PdfSignatureMetadata(
        field_name=genuine.field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
    )
    spec = fields.SigFieldSpec(genuine.field_name, on_page=page_index, box=box)
    pdf_signer = signers.PdfSigner(meta, external, stamp_style=style, new_field_spec=spec)
    prepared, _, output = asyncio.run(
        pdf_signer.async_digest_doc_for_signing(_writer(target), bytes_reserved=2 * len(padded))
    )
    PdfTBSDocument.finish_signing(output, prepared, der)
    output.seek(0)
    result: bytes = output.read()
    return result


def _page_index(reader: Any, page_ref: Any) -> int:
    target = page_ref.reference if isinstance(page_ref, generic.IndirectObject) else page_ref
    for index in range(int(reader.root["/Pages"]["/Count"])):
        ref, _ = reader.find_page_for_modification(index)
        if ref.reference == target:
            return index
    raise ValueError("the signature widget is on no page")


def signing_certificate(pdf: bytes, index: int = 0) -> x509.Certificate:
    """The certificate a PDF's signature names as its signer."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    der: bytes = reader.embedded_signatures[index].signer_cert.dump()
    return x509.load_der_x509_certificate(der)


def cms_of(pdf: bytes, index: int = 0) -> bytes:
    """The DER CMS of a PDF's signature, without the /Contents padding."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    padded: bytes = reader.embedded_signatures[index].sig_object["/Contents"]
    dumped: bytes = cms.ContentInfo.load(padded, strict=False).dump()
    return dumped


def truncated(pdf: bytes) -> bytes:
    """The first half of the file, as a broken download leaves it."""
    return pdf[: len(pdf) // 2]


def broken_xref(pdf: bytes) -> bytes:
    """The same length, but the last cross-reference section's keyword and the startxref
    offset overwritten with junk: no object can be found by its offset."""
    at = pdf.rindex(b"startxref")
    number = re.match(rb"startxref\s+(\d+)", pdf[at:])
    if number is None:
        raise ValueError("no startxref")
    start, end = at + number.start(1), at + number.end(1)
    offset = int(number.group(1))
    junk = pdf[:start] + b"9" * (end - start) + pdf[end:]
    if junk[offset : offset + 4] == b"xref":
        junk = junk[:offset] + b"XR#F" + junk[offset + 4 :]
    return junk


# -- the ledger on disk ---------------------------------------------------------------------


def rewrite_in_leaf(leaf: bytes, old: bytes, new: bytes) -> bytes:
    """A ledger leaf (predecessor hash, then the record) with `old` overwritten by `new` of
    the same length inside the record, as an insider with write access to RocksDB would
    rewrite who did something: the protobuf stays well-formed."""
    if len(old) != len(new):
        raise ValueError("the replacement must keep the length")
    at = leaf.find(old, 32)
    if at < 0 or leaf.find(old, at + 1) >= 0:
        raise ValueError(f"{old!r} does not occur exactly once in the record")
    return leaf[:at] + new + leaf[at + len(old) :]


def asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))
