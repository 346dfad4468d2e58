"""Seal images found in PDFs: one fingerprint per PNG whoever embedded it, the signature
field that draws each image, colours judged, and hostile objects skipped, never raised."""

from __future__ import annotations

import io
import pickle
import random
import time
import zlib
from collections.abc import Callable
from typing import Any, TypeAlias

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.images import pil_image
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas

from signer.licence_pdf import SEAL_BOX, render_licence_pdf
from signer.pades import PdfSealer, Placement, SealIdentity
from signer.pki import create_region_ca
from signer.sealimage import make_dev_seal_png
from tests.test_licence_pdf import LICENCE_TYPE, PAYLOAD, make_licence
from verifier.seal_images import (
    SEAL_RED_SHARE,
    FoundImage,
    find_images,
    image_fingerprint,
    png_fingerprint,
)

SEAL_NAME = "上海市市场监督管理局"
BOX = Placement(page=1, x=380.5, y=90.25, width=120, height=120)

# Builds an object in an incremental update and returns its reference.
Builder: TypeAlias = Callable[[Any], Any]  # pyHanko's writer is untyped


@pytest.fixture(scope="module")
def seal_png() -> bytes:
    return make_dev_seal_png(SEAL_NAME)


@pytest.fixture(scope="module")
def sealer(seal_png: bytes) -> PdfSealer:
    ca = create_region_ca("310000", "测试区域")
    return PdfSealer(SealIdentity(ca.private_key, ca.certificate, (), seal_png))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _pdf(pages: int = 2, images: dict[int, bytes] | None = None) -> bytes:
    """A text PDF; `images` pastes a PNG on a page (0-based) as reportlab draws one."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=A4, pageCompression=0)
    for n in range(pages):
        page.drawString(72, 720, f"Page {n + 1}")
        if images and n in images:
            reader = ImageReader(io.BytesIO(images[n]))
            page.drawImage(reader, 380, 90, 120, 120, mask="auto")
        page.showPage()
    page.save()
    return out.getvalue()


def _found(pdf: bytes) -> list[FoundImage]:
    return find_images(PdfFileReader(io.BytesIO(pdf), strict=False))


def _pdf_object(value: Any) -> Any:
    if isinstance(value, generic.PdfObject):
        return value
    if isinstance(value, bool):
        return generic.BooleanObject(value)  # type: ignore[no-untyped-call]
    if isinstance(value, int):
        return generic.NumberObject(value)  # type: ignore[no-untyped-call]
    if isinstance(value, float):
        return generic.FloatObject(value)  # type: ignore[no-untyped-call]
    if isinstance(value, str):
        return generic.NameObject(value) if value.startswith("/") else generic.pdf_string(value)
    if isinstance(value, bytes):
        return generic.ByteStringObject(value)
    if isinstance(value, list):
        return generic.ArrayObject([_pdf_object(v) for v in value])
    # Keys are names with or without their slash: /ColorSpace or ColorSpace.
    entries = {generic.NameObject("/" + k.lstrip("/")): _pdf_object(v) for k, v in value.items()}
    return generic.DictionaryObject(entries)  # type: ignore[no-untyped-call]


def _image(writer: Any, data: bytes, width: float, height: int, **entries: Any) -> Any:
    """An image XObject whose stream holds `data` exactly as given (filters not applied)."""
    header = {
        "/Type": "/XObject",
        "/Subtype": "/Image",
        "/Width": width,
        "/Height": height,
        "/ColorSpace": "/DeviceRGB",
        "/BitsPerComponent": 8,
        **entries,
    }
    return writer.add_object(generic.StreamObject(_pdf_object(header), encoded_data=data))


def _flate_image(writer: Any, image: Image.Image, **entries: Any) -> Any:
    space = {"RGB": "/DeviceRGB", "L": "/DeviceGray", "CMYK": "/DeviceCMYK"}[image.mode]
    data = zlib.compress(image.tobytes())
    return _image(writer, data, *image.size, ColorSpace=space, Filter="/FlateDecode", **entries)


def _form(writer: Any, xobjects: dict[str, Any]) -> Any:
    resources = {"XObject": xobjects}
    header = _pdf_object(
        {"Type": "/XObject", "Subtype": "/Form", "BBox": [0, 0, 120, 120], "Resources": resources}
    )
    drawing = b" ".join(b"q 120 0 0 120 0 0 cm /%s Do Q" % n.encode() for n in xobjects)
    return writer.add_object(generic.StreamObject(header, stream_data=drawing))


def _updated(
    pdf: bytes,
    page_xobjects: dict[str, Builder] | None = None,
    annotations: list[Builder] | None = None,
    page: int = 0,
) -> bytes:
    """`pdf` with image XObjects put in a page's resources and annotations added to it,
    in an incremental update. Resources only: the page content never draws them."""
    writer: Any = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    page_ref, _ = writer.find_page_for_modification(page)
    if page_xobjects:
        xobjects = {f"/{name}": build(writer) for name, build in page_xobjects.items()}
        page_ref.get_object()["/Resources"] = _pdf_object({"/XObject": xobjects})
        writer.mark_update(page_ref)
    for build in annotations or []:
        writer.register_annotation(page_ref, writer.add_object(build(writer)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _annotation(subtype: str, appearance: Builder, **entries: Any) -> Builder:
    def build(writer: Any) -> Any:
        annotation = _pdf_object(
            {"/Type": "/Annot", "/Subtype": subtype, "/Rect": [300, 300, 420, 420], **entries}
        )
        annotation["/AP"] = _pdf_object({"N": appearance(writer)})
        return annotation

    return build


def _missing(writer: Any) -> Any:
    """A reference to no object."""
    return generic.IndirectObject(99_999, 0, writer)  # type: ignore[no-untyped-call]


def _pasted_form(png: bytes) -> Builder:
    """A form drawing `png` as pyHanko pastes an image."""

    def build(writer: Any) -> Any:
        with Image.open(io.BytesIO(png)) as opened:
            image = opened.copy()
        return _form(writer, {"Im": pil_image(image, writer)})

    return build


# Writers


def test_one_fingerprint_whoever_embedded_the_png(seal_png: bytes, sealer: PdfSealer) -> None:
    expected = png_fingerprint(seal_png)
    assert len(expected) == 32
    sealed = sealer.seal(_pdf(), BOX)  # our sealer: Flate RGB and a gray /SMask
    pasted = _pdf(images={0: seal_png})  # reportlab: the same behind ASCII85
    stamped = _updated(_pdf(), annotations=[_annotation("/Stamp", _pasted_form(seal_png))])
    for pdf in (sealed, pasted, stamped):
        [found] = _found(pdf)
        assert found.fingerprint == expected
    other = png_fingerprint(make_dev_seal_png("上海市浦东新区市场监督管理局"))
    assert other != expected


def test_the_fingerprint_ignores_what_transparency_hides(seal_png: bytes) -> None:
    with Image.open(io.BytesIO(seal_png)) as opened:
        red = opened.convert("RGBA")
    visible = red.getchannel("A").point([255 if a >= 128 else 0 for a in range(256)])
    black = Image.composite(red, Image.new("RGBA", red.size), visible)
    black.putalpha(red.getchannel("A"))  # the same alpha, black under invisible pixels
    assert black.tobytes() != red.tobytes()
    assert image_fingerprint(black) == image_fingerprint(red) == png_fingerprint(seal_png)
    assert png_fingerprint(_png(red)) == png_fingerprint(seal_png)  # another encoding


def test_found_images_cross_a_process_boundary(seal_png: bytes) -> None:
    found = _found(_pdf(images={0: seal_png}))
    assert pickle.loads(pickle.dumps(found)) == found  # noqa: S301 — our own bytes


# Where images are, and who draws them


def test_a_seal_reports_its_signature_field(sealer: PdfSealer) -> None:
    sealed = sealer.seal(_pdf(), BOX, field_name="发证机关印章")
    [found] = _found(sealed)
    assert (found.page, found.signature_field) == (0, "发证机关印章")
    assert (found.width, found.height, found.looks_like_seal) == (480, 480, True)
    assert found.red_share >= 0.95


def test_a_sealed_licence(sealer: PdfSealer) -> None:
    licence = render_licence_pdf(
        make_licence(), PAYLOAD, licence_type=LICENCE_TYPE, region_name="上海市"
    )
    box = Placement(SEAL_BOX.page, SEAL_BOX.x, SEAL_BOX.y, SEAL_BOX.width, SEAL_BOX.height)
    sealed = sealer.seal(licence, box)
    assert _found(licence) == []  # the QR code is an inline image: not a resource
    timings = []
    for _ in range(5):
        reader = PdfFileReader(io.BytesIO(sealed), strict=False)
        start = time.perf_counter()
        [found] = find_images(reader)
        timings.append(time.perf_counter() - start)
    assert (found.signature_field, found.looks_like_seal) == ("Seal1", True)
    assert min(timings) < 0.05  # measured ~6 ms; this only catches a blow-up


def test_a_seal_pasted_on_page_two(seal_png: bytes) -> None:
    [found] = _found(_pdf(images={1: seal_png}))
    assert (found.page, found.signature_field, found.looks_like_seal) == (1, None, True)
    assert (found.width, found.height) == (480, 480)


def test_a_seal_pasted_as_a_stamp_annotation(seal_png: bytes) -> None:
    stamp = _annotation("/Stamp", _pasted_form(seal_png))
    [found] = _found(_updated(_pdf(), annotations=[stamp], page=1))
    assert (found.page, found.signature_field, found.looks_like_seal) == (1, None, True)
    assert found.fingerprint == png_fingerprint(seal_png)


def test_a_widget_outside_the_form_names_no_field(seal_png: bytes, sealer: PdfSealer) -> None:
    sealed = sealer.seal(_pdf(), BOX)

    def child(writer: Any) -> Any:
        field = writer.root["/AcroForm"]["/Fields"].raw_get(0)
        return _annotation("/Widget", _pasted_form(seal_png), Parent=field)(writer)

    claims = [  # each claims the sealed field without being one of its widgets
        _annotation("/Widget", _pasted_form(seal_png), FT="/Sig", T="Seal1"),
        child,
    ]
    found = _found(_updated(sealed, annotations=claims))
    assert [f.signature_field for f in found] == ["Seal1", None, None]


def test_a_name_two_fields_share_names_neither(seal_png: bytes, sealer: PdfSealer) -> None:
    sealed = sealer.seal(_pdf(), BOX)
    writer: Any = IncrementalPdfFileWriter(io.BytesIO(sealed))
    page_ref, _ = writer.find_page_for_modification(0)
    twin = _annotation("/Widget", _pasted_form(seal_png), FT="/Sig", T="Seal1")(writer)
    twin_ref = writer.add_object(twin)
    writer.register_annotation(page_ref, twin_ref)
    fields = writer.root["/AcroForm"]["/Fields"]
    fields.append(twin_ref)
    writer.update_container(fields)
    out = io.BytesIO()
    writer.write(out)
    assert [f.signature_field for f in _found(out.getvalue())] == [None, None]


def test_fully_qualified_field_names(seal_png: bytes) -> None:
    writer: Any = IncrementalPdfFileWriter(io.BytesIO(_pdf()))
    page_ref, _ = writer.find_page_for_modification(0)
    parent = writer.add_object(_pdf_object({"T": "机关", "FT": "/Sig", "Kids": []}))
    seal = _annotation("/Widget", _pasted_form(seal_png), T="印章", Parent=parent)(writer)
    second = writer.add_object(_pdf_object({"T": "副章", "Parent": parent, "Kids": []}))
    parent.get_object()["/Kids"].append(second)  # a field with a widget of its own
    widget = _annotation("/Widget", _pasted_form(seal_png), Parent=second)(writer)
    for field, kid in [(parent, seal), (second, widget)]:
        ref = writer.add_object(kid)
        field.get_object()["/Kids"].append(ref)
        writer.register_annotation(page_ref, ref)
    writer.root["/AcroForm"] = _pdf_object({"Fields": [parent]})
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    assert [f.signature_field for f in _found(out.getvalue())] == ["机关.印章", "机关.副章"]


def test_images_inside_forms_and_on_several_pages(seal_png: bytes) -> None:
    def nested(writer: Any) -> Any:
        with Image.open(io.BytesIO(seal_png)) as opened:
            image = pil_image(opened.copy(), writer)
        inner = _form(writer, {"Im": image, "Again": image})
        return _form(writer, {"Inner": inner, "Im": image})

    pdf = _updated(_pdf(), page_xobjects={"Outer": nested})
    [found] = _found(pdf)  # one image, drawn three ways on one page: listed once
    assert (found.page, found.looks_like_seal) == (0, True)
    twice = _pdf(pages=3, images={0: seal_png, 2: seal_png})
    assert [f.page for f in _found(twice)] == [0, 2]


def test_a_plain_text_pdf_has_no_images() -> None:
    assert _found(_pdf()) == []


# Colours


def _text_image() -> Image.Image:
    image = Image.new("RGB", (400, 120), "white")
    draw = ImageDraw.Draw(image)
    for row in range(4):
        draw.text((10, 10 + 25 * row), "Licence number 310115000123456 " * 2, fill="black")
    return image


def _blue_logo() -> Image.Image:
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, 190, 190), outline=(20, 60, 200, 255), width=14)
    draw.polygon([(100, 40), (150, 150), (50, 150)], fill=(20, 60, 200, 255))
    return image


def _noise() -> Image.Image:
    return Image.frombytes("RGB", (160, 160), random.Random(1).randbytes(160 * 160 * 3))


def _on_white(png: bytes) -> Image.Image:
    with Image.open(io.BytesIO(png)) as opened:
        seal = opened.convert("RGBA")
    scan = Image.new("RGBA", seal.size, "white")
    scan.alpha_composite(seal)
    return scan.convert("RGB")


@pytest.mark.parametrize("make", [_text_image, _blue_logo, _noise])
def test_what_is_not_a_seal(make: Callable[[], Image.Image]) -> None:
    [found] = _found(_pdf(images={0: _png(make())}))
    assert not found.looks_like_seal
    assert found.red_share < SEAL_RED_SHARE


def test_a_seal_scanned_on_white_and_a_tiny_one(seal_png: bytes) -> None:
    [scan] = _found(_pdf(images={0: _png(_on_white(seal_png))}))
    assert scan.looks_like_seal  # the paper is not counted as ink
    tiny = Image.open(io.BytesIO(make_dev_seal_png(SEAL_NAME, size=64))).resize((24, 24))
    [small] = _found(_pdf(images={0: _png(tiny)}))
    assert not small.looks_like_seal


# Encodings


def _idat(png: bytes) -> bytes:
    """The zlib stream of a PNG's IDAT chunks: PDF's Flate data with PNG predictors."""
    out, pos = b"", 8
    while pos < len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        if png[pos + 4 : pos + 8] == b"IDAT":
            out += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return out


def test_decoded_encodings(seal_png: bytes) -> None:
    scan = _on_white(seal_png)
    gray, jpeg = scan.convert("L"), io.BytesIO()
    scan.save(jpeg, "JPEG", quality=90)
    palette = scan.quantize(16)
    cmyk_red = Image.new("CMYK", (64, 64), (0, 255, 255, 0))

    def predicted(writer: Any) -> Any:
        params = {"Predictor": 15, "Colors": 3, "Columns": scan.width}
        flate: dict[str, Any] = {"Filter": "/FlateDecode", "DecodeParms": params}
        return _image(writer, _idat(_png(scan)), *scan.size, **flate)

    builders: dict[str, Builder] = {
        "Predicted": predicted,
        "Jpeg": lambda w: _image(w, jpeg.getvalue(), *scan.size, Filter="/DCTDecode"),
        "Gray": lambda w: _flate_image(w, gray),
        "Indexed": lambda w: pil_image(palette, w),
        "Cmyk": lambda w: _flate_image(w, cmyk_red),
        "Inverted": lambda w: _flate_image(w, gray, Decode=[1, 0]),
    }
    found = dict(zip(builders, _found(_updated(_pdf(), page_xobjects=builders)), strict=True))
    for name, image in [("Predicted", scan), ("Gray", gray), ("Indexed", palette)]:
        assert found[name].fingerprint == png_fingerprint(_png(image))  # lossless: exact
    seals = {name for name, f in found.items() if f.looks_like_seal}
    assert seals == {"Predicted", "Jpeg", "Indexed", "Cmyk"}
    assert found["Cmyk"].red_share == 1.0
    assert found["Inverted"].fingerprint == png_fingerprint(_png(gray.point(lambda v: 255 - v)))


def test_masks(seal_png: bytes) -> None:
    scan = _on_white(seal_png)
    white_key = [255, 255, 255, 255, 255, 255]
    ring = Image.new("1", scan.size, 1)
    ImageDraw.Draw(ring).ellipse((0, 0, *scan.size), fill=0)  # 0 paints, 1 masks out

    def stencilled(writer: Any) -> Any:
        data = zlib.compress(ring.tobytes())
        stencil = _image(writer, data, *scan.size, ImageMask=True, BitsPerComponent=1, Filter="/Fl")
        return _flate_image(writer, Image.new("RGB", scan.size, (200, 0, 0)), Mask=stencil)

    builders: dict[str, Builder] = {
        "Keyed": lambda w: _flate_image(w, scan, Mask=white_key),
        "Stencilled": stencilled,
    }
    keyed, stencil = _found(_updated(_pdf(), page_xobjects=builders))
    assert keyed.looks_like_seal
    assert stencil.looks_like_seal
    solid = Image.new("RGBA", scan.size, (200, 0, 0, 255))
    solid.putalpha(ring.convert("L").point(lambda v: 255 - v))
    assert stencil.fingerprint == image_fingerprint(solid)


# Hostile objects


def test_malformed_images_are_skipped() -> None:
    rgb = Image.new("RGB", (40, 40), (220, 20, 20)).tobytes()
    flate = zlib.compress(rgb)

    def cycle(writer: Any) -> Any:
        good = _image(writer, rgb, 40, 40)
        form = _form(writer, {"Im": good})
        form.get_object()["/Resources"]["/XObject"][generic.NameObject("/Me")] = form
        return form

    def deep(writer: Any) -> Any:
        ref = _image(writer, rgb, 40, 40)
        for _ in range(20):
            ref = _form(writer, {"Down": ref})
        return ref

    def bad_smask(writer: Any) -> Any:
        soft = _image(writer, b"junk", 40, 40, ColorSpace="/DeviceGray", Filter="/FlateDecode")
        return _image(writer, flate, 40, 40, Filter="/FlateDecode", SMask=soft)

    params = {"Predictor": 15, "Colors": 1, "Columns": 40}
    builders: dict[str, Builder] = {
        "Short": lambda w: _image(w, rgb[:-1], 40, 40),
        "Long": lambda w: _image(w, rgb + b"\0", 40, 40),
        "Bogus": lambda w: _image(w, rgb, 40, 40, Filter="/Bogus"),
        "Crypt": lambda w: _image(w, rgb, 40, 40, Filter=["/Crypt"]),
        "NotFlate": lambda w: _image(w, b"not zlib", 40, 40, Filter="/FlateDecode"),
        "NotJpeg": lambda w: _image(w, b"\xff\xd8 not jpeg", 40, 40, Filter="/DCTDecode"),
        "Predictor": lambda w: _image(w, flate, 40, 40, Filter="/Fl", DecodeParms=params),
        "OneBit": lambda w: _image(w, rgb, 40, 40, BitsPerComponent=1),
        "Sixteen": lambda w: _image(w, rgb + rgb, 40, 40, BitsPerComponent=16),
        "Negative": lambda w: _image(w, rgb, -40, 40),
        "Huge": lambda w: _image(w, flate, 100_000, 100_000, Filter="/FlateDecode"),
        "Real": lambda w: _image(w, rgb, 40.5, 40),
        "Lab": lambda w: _image(w, rgb, 40, 40, ColorSpace=["/Lab", {}]),
        "Palette": lambda w: _image(w, rgb[:1600], 40, 40, ColorSpace=["/Indexed", "/G", 9, b""]),
        "Decode": lambda w: _image(w, rgb, 40, 40, Decode=["/a", 1]),
        "Stencil": lambda w: _image(w, rgb[:200], 40, 40, ImageMask=True, BitsPerComponent=1),
        "Cycle": cycle,
        "Deep": deep,
        "BadSMask": bad_smask,
        "Broken": lambda w: _missing(w),
    }
    found = _found(_updated(_pdf(), page_xobjects=builders))
    # The image in the cycle, once; the one with an unreadable soft mask, as opaque.
    assert [(f.width, f.looks_like_seal) for f in found] == [(40, True)] * 2
    assert found[0].fingerprint == found[1].fingerprint


def test_unreadable_pages_are_skipped(seal_png: bytes) -> None:
    pdf = _pdf(pages=2, images={0: seal_png, 1: seal_png})
    writer: Any = IncrementalPdfFileWriter(io.BytesIO(pdf))
    kids = writer.root["/Pages"]["/Kids"]
    kids.insert(1, _missing(writer))
    kids.insert(1, kids.raw_get(0))  # a page twice: a cycle to a walker without care
    writer.update_container(kids)
    out = io.BytesIO()
    writer.write(out)
    assert [f.page for f in _found(out.getvalue())] == [0, 1]


_TOKENS = [b"<<", b">>", b"[", b"]", b" 0 R", b"/Filter", b"/FlateDecode", b"/DCTDecode"]
_TOKENS += [b"/Indexed", b"/SMask", b"/Width", b"-1", b"99999999", b"/XObject", b"/Form"]


@st.composite
def _mutations(draw: st.DrawFn) -> list[tuple[int, int, bytes]]:
    """Up to 8 edits: (offset, bytes replaced, replacement); offsets wrap around."""
    edit = st.tuples(
        st.integers(0, 1 << 20),
        st.integers(0, 8),
        st.one_of(st.binary(max_size=8), st.sampled_from(_TOKENS)),
    )
    return draw(st.lists(edit, min_size=1, max_size=8))


@pytest.fixture(scope="module")
def small_pasted_pdf() -> bytes:
    # A small seal keeps most bytes structure rather than pixels, for mutations to hit.
    seal = make_dev_seal_png(SEAL_NAME, size=64)
    return _updated(_pdf(images={0: seal}), annotations=[_annotation("/Stamp", _pasted_form(seal))])


@settings(max_examples=300, deadline=None)
@given(edits=_mutations())
def test_mutated_pdfs_never_raise(small_pasted_pdf: bytes, edits: list[Any]) -> None:
    data = bytearray(small_pasted_pdf)
    for offset, length, replacement in edits:
        start = offset % len(data)
        data[start : start + length] = replacement
    try:
        reader = PdfFileReader(io.BytesIO(bytes(data)), strict=False)
    except Exception:  # only find_images is under test
        return
    found = find_images(reader)
    assert all(isinstance(f, FoundImage) and len(f.fingerprint) == 32 for f in found)
