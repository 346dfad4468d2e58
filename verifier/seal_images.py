"""Raster images in a PDF that look like seals, and the signature field drawing each.

Forgery case 套用: a seal image pasted into a PDF with no valid signature behind it.
`find_images` lists every image XObject a page or an annotation appearance uses, with
a fingerprint to compare with registered seal images, whether its colours look like a
seal, and the signature field whose widget draws it. The caller decides whether a
valid signature covers that field; an image with no field is a pasted one. A field
name says who draws the image, not that the drawing is signed: a later incremental
update can change a signed field's appearance, which only the signature's
modification analysis shows.

The fingerprint is taken from decoded pixels, not from stored bytes, so one PNG has
one fingerprint however it was embedded: by our sealer (Flate RGB plus a gray
/SMask), reportlab (the same behind ASCII85) or pyHanko. Transparency is reduced to
visible or not, the image to 32×32 and each sample to 4 bits: what a viewer shows,
without the compressor's or the writer's choices.

Decoded: 8-bit samples, uncompressed or behind Flate (PNG predictors included), DCT
and the ASCII filters; gray, RGB and CMYK (device, ICC-based or calibrated) and
palettes over gray or RGB; a soft mask, a stencil /Mask or a colour key as alpha.
Anything else (other depths, LZW, run-length, JBIG2, CCITT, JPEG 2000, crypt filters,
Lab, Separation, DeviceN) is skipped, and a soft mask's /Matte is ignored.

Images are found through resources only: content streams are not parsed, so an image
listed in a resource dictionary counts even if no `Do` operator draws it, and inline
images (BI … EI), stencil masks painted in red, and seals drawn as vector paths or
text are not found at all.

Input PDFs are hostile. Nothing here raises on a malformed document: an image that
cannot be decoded, or that is too large to decode, is left out, as is whatever part of
the document cannot be read. The work is bounded per call (objects visited, pixels
decoded), and a document that exceeds the bounds is only partly searched.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from PIL import Image, ImageChops
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.filters import get_generic_decoder
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader

SEAL_RED_SHARE = 0.30  # of an image's ink that is seal red
MIN_SEAL_INK = 200  # ink pixels in the ≤128×128 sample
MIN_SEAL_SIDE = 32  # pixels
MAX_IMAGE_PIXELS = 16_000_000  # larger images are skipped

_MAX_DEPTH = 8  # Form XObjects (and patterns, Type 3 fonts) within each other
_MAX_OBJECTS = 100_000  # page tree nodes, annotations and resources visited per call
_MAX_DECODED_PIXELS = 4 * MAX_IMAGE_PIXELS  # per call; distinct images only
_SAMPLE_SIDE = 128  # colours are judged on a sample of at most this many pixels a side
_FINGERPRINT_SIDE = 32

# pyHanko fails on hostile bytes with its own errors, its structural `assert`s and
# whatever a half-parsed object makes Python raise; Pillow adds SyntaxError and
# EOFError for broken image data, zlib its own error.
_PARSE_ERRORS: tuple[type[Exception], ...] = (PdfError, ValueError, LookupError, TypeError)
_PARSE_ERRORS += (AttributeError, ArithmeticError, AssertionError, RecursionError)
_PARSE_ERRORS += (OSError, EOFError, SyntaxError, NotImplementedError, struct.error)
_PARSE_ERRORS += (zlib.error, Image.DecompressionBombError)

_FLATE = frozenset({"/FlateDecode", "/Fl"})
_DCT = frozenset({"/DCTDecode", "/DCT"})
_ASCII = frozenset({"/ASCII85Decode", "/A85", "/ASCIIHexDecode", "/AHx"})
_BANDS = {"1": 1, "L": 1, "P": 1, "RGB": 3, "CMYK": 4}
_PNG_COLOUR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # PNG colour type by samples per pixel
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_NIBBLE = bytes(v >> 4 for v in range(256))
_VISIBLE = [255 if v >= 128 else 0 for v in range(256)]
_PAPER = [255 if v >= 200 else 0 for v in range(256)]
_RED_R = [255 if v >= 150 else 0 for v in range(256)]
_RED_GB = [255 if v <= 110 else 0 for v in range(256)]
_RED_MARGIN = [255 if v >= 70 else 0 for v in range(256)]


@dataclass(frozen=True, slots=True)
class FoundImage:
    page: int  # 0-based
    signature_field: str | None  # fully qualified name of the signature field drawing it
    fingerprint: bytes  # image_fingerprint of the decoded image, 32 bytes
    width: int  # pixels
    height: int
    red_share: float  # of the ink: visible pixels (alpha >= 128) that are not near-white
    looks_like_seal: bool


@dataclass(frozen=True, slots=True)
class _Analysis:
    fingerprint: bytes
    width: int
    height: int
    red_share: float
    looks_like_seal: bool


class _SkipError(Exception):
    """An image this module does not decode: a filter, colour space or depth it lacks."""


class _OverBudgetError(Exception):
    """The call has visited as many objects as it may: the walk stops where it is."""


_SKIPPED: tuple[type[Exception], ...] = (_SkipError, *_PARSE_ERRORS)
_STOPPED: tuple[type[Exception], ...] = (_OverBudgetError, *_SKIPPED)


def image_fingerprint(rgba: Image.Image) -> bytes:
    """32 bytes identifying what an image shows, equal for equal decoded pixels."""
    return _fingerprint(_normalised(rgba.copy() if rgba.mode == "RGBA" else rgba.convert("RGBA")))


def png_fingerprint(png: bytes) -> bytes:
    """The fingerprint of a registered seal image (a PNG), as `find_images` reports it."""
    with Image.open(io.BytesIO(png), formats=["PNG"]) as opened:
        return image_fingerprint(opened.convert("RGBA"))


def find_images(reader: PdfFileReader) -> list[FoundImage]:
    """Every image XObject used by a page or an annotation's normal appearance, in page
    order: the page's own resources first, then its annotations in order. An image used
    twice in one place is listed once; used on two pages, or by the page and by an
    annotation, it is listed for each. Never raises on a malformed document."""
    finder = _Finder(reader)
    # A document too broken or too large to walk further: what was found stands.
    with contextlib.suppress(*_STOPPED):
        finder.run()
    return finder.found


def _normalised(rgba: Image.Image) -> Image.Image:
    """Visible pixels (alpha >= 128) opaque in their colour, the others (0, 0, 0, 0);
    `rgba`'s alpha is overwritten.

    Writers disagree on the colour under full transparency (our development seal keeps
    it red, others use black or white), which no viewer shows. The result is labelled
    premultiplied ("RGBa"), which with alpha 0 or 255 it is, so that Pillow averages
    it as it stands."""
    rgba.putalpha(rgba.getchannel("A").point(_VISIBLE))
    return rgba.convert("RGBa")


def _fingerprint(normalised: Image.Image) -> bytes:
    # Averaging over boxes and dropping the low bits absorb most of the rounding by which
    # decoders of one image may differ; a sample near a 4-bit step can still tip over.
    side = (_FINGERPRINT_SIDE, _FINGERPRINT_SIDE)
    small = normalised.resize(side, Image.Resampling.BOX)
    return hashlib.sha256(small.tobytes().translate(_NIBBLE)).digest()


def _red_share(rgba: Image.Image) -> tuple[float, int]:
    """The share of ink that is seal red, and the ink's pixel count, on a sample of a
    normalised image.

    Near-white pixels are paper, not ink: a seal scanned on white is as much a seal as
    one on a transparent background, and its paper would otherwise outweigh the ring.
    Nearest-neighbour sampling keeps pixels' own colours, where averaging would turn a
    thin red ring on white into pink."""
    width, height = rgba.size
    scale = max(width, height) / _SAMPLE_SIDE
    if scale > 1:
        size = (max(1, round(width / scale)), max(1, round(height / scale)))
        rgba = rgba.resize(size, Image.Resampling.NEAREST)
    r, g, b, a = rgba.split()
    paper = ImageChops.darker(ImageChops.darker(r.point(_PAPER), g.point(_PAPER)), b.point(_PAPER))
    ink = ImageChops.subtract(a, paper)
    margin = ImageChops.subtract(r, ImageChops.lighter(g, b)).point(_RED_MARGIN)
    red = ImageChops.darker(ink, r.point(_RED_R))
    red = ImageChops.darker(red, ImageChops.darker(g.point(_RED_GB), b.point(_RED_GB)))
    red = ImageChops.darker(red, margin)
    ink_count, red_count = ink.histogram()[255], red.histogram()[255]
    return (red_count / ink_count if ink_count else 0.0), ink_count


def _analyse(rgba: Image.Image) -> _Analysis:
    width, height = rgba.size
    normalised = _normalised(rgba)
    share, ink = _red_share(normalised)
    seal = share >= SEAL_RED_SHARE and ink >= MIN_SEAL_INK and min(width, height) >= MIN_SEAL_SIDE
    return _Analysis(_fingerprint(normalised), width, height, share, seal)


class _Finder:
    """One call's walk: its budgets, and each image decoded once whatever uses it."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader
        self._objects = 0
        self._pixels = 0
        self._analyses: dict[tuple[int, int], _Analysis | None] = {}
        self.found: list[FoundImage] = []

    def run(self) -> None:
        root = self._reader.root
        widgets = self._signature_widgets(root)
        for index, (page, resources) in enumerate(self._pages(root)):
            try:
                self._page(index, page, resources, widgets)
            except _SKIPPED:
                continue

    def _page(
        self, index: int, page: Any, resources: Any, widgets: dict[tuple[int, int], str]
    ) -> None:
        if resources is not None:
            self._walk(resources, index, None, set(), 0)
        annotations = _get(page, "/Annots")
        if not isinstance(annotations, generic.ArrayObject):
            return
        for i in range(len(annotations)):
            self._count()
            try:
                self._annotation(annotations.raw_get(i), index, widgets)
            except _SKIPPED:
                continue

    def _count(self) -> None:
        self._objects += 1
        if self._objects > _MAX_OBJECTS:
            raise _OverBudgetError

    def _pages(self, root: Any) -> Iterator[tuple[Any, Any]]:
        """Each page with its resources, inherited when it has none of its own."""
        seen: set[tuple[int, int]] = set()
        stack: list[tuple[Any, Any]] = [(root.raw_get("/Pages"), None)]
        while stack:
            raw, inherited = stack.pop()
            self._count()
            try:
                node = _resolve(raw, seen)
                if not isinstance(node, generic.DictionaryObject):
                    continue
                resources = _get(node, "/Resources")
                if not isinstance(resources, generic.DictionaryObject):
                    resources = inherited  # /Resources is inherited down the page tree
                kind, kids = _get(node, "/Type"), _get(node, "/Kids")
                page = None
                if kind == "/Page" or (kind != "/Pages" and not isinstance(kids, list)):
                    page = (node, resources)
                elif isinstance(kids, generic.ArrayObject):
                    stack.extend((kids.raw_get(i), resources) for i in reversed(range(len(kids))))
            except _SKIPPED:
                continue
            if page is not None:
                yield page

    def _signature_widgets(self, root: Any) -> dict[tuple[int, int], str]:
        """The widget annotations of signature fields reachable from the form, by
        reference, with their fields' fully qualified names.

        A widget claiming a signature field through its own /FT or /Parent, but absent
        from the field's /Kids, is not one of its widgets: otherwise anyone could paste
        a seal in an annotation naming a field that a valid signature covers. For the
        same reason a name shared by two fields names neither."""
        widgets: dict[tuple[int, int], tuple[str, tuple[int, int]]] = {}
        fields_named: dict[str, set[tuple[int, int]]] = {}
        try:
            form = _get(root, "/AcroForm")
            top = _get(form, "/Fields") if isinstance(form, generic.DictionaryObject) else None
        except _SKIPPED:
            return {}
        if not isinstance(top, generic.ArrayObject):
            return {}
        seen: set[tuple[int, int]] = set()
        # (raw node, parent's name, inherited /FT, parent field's reference, depth)
        stack: list[tuple[Any, str, Any, tuple[int, int] | None, int]] = [
            (top.raw_get(i), "", None, None, 0) for i in reversed(range(len(top)))
        ]
        while stack:
            raw, parent, inherited_type, parent_field, depth = stack.pop()
            self._count()
            try:
                key = _key(raw)
                node = _resolve(raw, seen)
                if not isinstance(node, generic.DictionaryObject) or key is None:
                    continue
                partial = _get(node, "/T")
                if partial is not None and not isinstance(partial, str):
                    continue  # not a field we can name
                if partial is not None:
                    partial = str(partial)  # pyHanko's string would pickle its whole reader
                name = f"{parent}.{partial}" if parent and partial is not None else partial
                name = parent if name is None else name
                field_type = _get(node, "/FT") or inherited_type
                field = key if partial is not None else parent_field
                if field_type == "/Sig" and _get(node, "/Subtype") == "/Widget" and name:
                    widgets[key] = (name, field or key)
                    fields_named.setdefault(name, set()).add(field or key)
                kids = _get(node, "/Kids")
                if isinstance(kids, generic.ArrayObject) and depth < 2 * _MAX_DEPTH:
                    stack.extend(
                        (kids.raw_get(i), name, field_type, field, depth + 1)
                        for i in reversed(range(len(kids)))
                    )
            except _SKIPPED:
                continue
        return {key: name for key, (name, _) in widgets.items() if len(fields_named[name]) == 1}

    def _annotation(self, raw: Any, page: int, widgets: dict[tuple[int, int], str]) -> None:
        annotation = raw.get_object()
        if not isinstance(annotation, generic.DictionaryObject):
            return
        key = _key(raw)
        field = widgets.get(key) if key is not None else None
        appearances = _get(annotation, "/AP")
        if not isinstance(appearances, generic.DictionaryObject):
            return
        raw_normal = appearances.raw_get("/N") if "/N" in appearances else None
        normal = _deref(raw_normal)
        seen: set[tuple[int, int]] = set()
        if isinstance(normal, generic.StreamObject):
            self._form(raw_normal, page, field, seen, 0)
        elif isinstance(normal, generic.DictionaryObject):
            for state in list(normal):  # a widget's on and off states: either may show
                try:
                    self._form(normal.raw_get(state), page, field, seen, 0)
                except _SKIPPED:
                    continue

    def _form(self, raw: Any, page: int, field: str | None, seen: set[Any], depth: int) -> None:
        self._count()
        form = _resolve(raw, seen)
        if isinstance(form, generic.StreamObject):
            resources = _get(form, "/Resources")
            if isinstance(resources, generic.DictionaryObject):
                self._walk(resources, page, field, seen, depth + 1)

    def _walk(
        self, resources: Any, page: int, field: str | None, seen: set[Any], depth: int
    ) -> None:
        """Images in a resource dictionary and, recursively, in the forms, tiling
        patterns and Type 3 glyphs it holds. `seen` breaks cycles and keeps each
        image to one entry per page or annotation."""
        if depth > _MAX_DEPTH:
            return
        for category in ("/XObject", "/Pattern", "/Font"):
            try:
                entries = _get(resources, category)
                names = list(entries) if isinstance(entries, generic.DictionaryObject) else []
            except _SKIPPED:
                continue
            for name in names:
                try:
                    self._resource(category, entries.raw_get(name), page, field, seen, depth)
                except _SKIPPED:
                    continue

    def _resource(
        self, category: str, raw: Any, page: int, field: str | None, seen: set[Any], depth: int
    ) -> None:
        self._count()
        key = _key(raw)
        obj = _resolve(raw, seen)
        if not isinstance(obj, generic.DictionaryObject):
            return
        subtype = _get(obj, "/Subtype")
        if category == "/XObject" and subtype == "/Image":
            if key is None or not isinstance(obj, generic.StreamObject):
                return  # an image is always a stream, and a stream always indirect
            analysis = self._analysis(key, obj)
            if analysis is not None:
                self.found.append(
                    FoundImage(
                        page,
                        field,
                        analysis.fingerprint,
                        analysis.width,
                        analysis.height,
                        analysis.red_share,
                        analysis.looks_like_seal,
                    )
                )
            return
        drawn = (
            (category == "/XObject" and subtype == "/Form")
            or (category == "/Pattern" and _get(obj, "/PatternType") == 1)
            or (category == "/Font" and subtype == "/Type3")
        )
        inner = _get(obj, "/Resources") if drawn else None
        if isinstance(inner, generic.DictionaryObject):
            self._walk(inner, page, field, seen, depth + 1)

    def _analysis(self, key: tuple[int, int], image: Any) -> _Analysis | None:
        if key in self._analyses:
            return self._analyses[key]
        result = None
        try:
            content = _content_key(image)
            if content is not None and content in _RECENT:
                _RECENT.move_to_end(content)
                result = _RECENT[content]
            else:
                width, height = _size(image)
                self._pixels += width * height
                if self._pixels <= _MAX_DECODED_PIXELS:
                    result = _analyse(_decode_image(image, width, height))
                    if content is not None:
                        _remember(content, result)
        except _SKIPPED:
            result = None
        self._analyses[key] = result
        return result


# The same seal image is in every document a seal has sealed: a worker verifying
# them keeps recent analyses by content, so each image is decoded once. Only images
# described wholly by direct values are keyed, so the key is their whole content.
_RECENT: OrderedDict[bytes, _Analysis] = OrderedDict()
_RECENT_MAX = 256
_DIRECT = (generic.NameObject, generic.NumberObject, generic.FloatObject, generic.BooleanObject)


def _remember(content: bytes, analysis: _Analysis) -> None:
    _RECENT[content] = analysis
    while len(_RECENT) > _RECENT_MAX:
        _RECENT.popitem(last=False)


def _direct_description(stream: Any) -> list[str] | None:
    described = []
    for name, raw in sorted(stream.items()):
        if name == "/Length" or (name == "/SMask" and isinstance(raw, generic.IndirectObject)):
            continue
        values = list(raw.values()) if isinstance(raw, generic.DictionaryObject) else [raw]
        if isinstance(raw, generic.ArrayObject):
            values = list(raw)
        if not all(isinstance(v, _DIRECT) for v in values):
            return None
        described.append(f"{name}={raw!r}")
    return described


def _content_key(image: Any) -> bytes | None:
    """A digest of everything that decides the image's pixels, or None if not direct."""
    digest = hashlib.sha256()
    for stream in (image, _get(image, "/SMask")):
        if stream is None:
            continue
        if not isinstance(stream, generic.StreamObject):
            return None
        described = _direct_description(stream)
        if described is None:
            return None
        digest.update(repr(described).encode() + b"\0" + stream.encoded_data + b"\0")
    return digest.digest()


def _key(raw: Any) -> tuple[int, int] | None:
    if isinstance(raw, generic.IndirectObject):
        return raw.idnum, raw.generation
    return None


def _deref(raw: Any) -> Any:
    obj = raw.get_object() if isinstance(raw, generic.PdfObject) else raw  # type: ignore[no-untyped-call]
    return None if isinstance(obj, generic.NullObject) else obj


def _resolve(raw: Any, seen: set[tuple[int, int]]) -> Any:
    """The object, or None when its reference was met before on this walk."""
    key = _key(raw)
    if key is not None:
        if key in seen:
            return None
        seen.add(key)
    return _deref(raw)


def _get(obj: Any, key: str) -> Any:
    """obj[key] resolved, or None; `dict.get` would return the unresolved reference."""
    if not isinstance(obj, generic.DictionaryObject):
        return None
    try:
        return _deref(obj[key])
    except KeyError:
        return None


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _SkipError("not an integer")
    return int(value)


def _size(image: Any) -> tuple[int, int]:
    width, height = _int(_get(image, "/Width")), _int(_get(image, "/Height"))
    if width <= 0 or height <= 0 or width * height > MAX_IMAGE_PIXELS:
        raise _SkipError("no or too many pixels")
    return width, height


def _decode_image(image: Any, width: int, height: int) -> Image.Image:
    """The image as RGBA: its colours, and its soft mask or mask as alpha."""
    if _get(image, "/ImageMask"):
        raise _SkipError("a stencil mask is painted in a colour the content stream sets")
    if _get(image, "/BitsPerComponent") != 8:
        raise _SkipError("only 8-bit samples are decoded")
    mode, palette = _colour_space(_get(image, "/ColorSpace"))
    samples = _samples(image, width, height, mode, 8)
    soft, mask = _get(image, "/SMask"), _get(image, "/Mask")
    alpha = _colour_key(samples, mask)  # of the samples as stored, before /Decode
    samples = _apply_decode(samples, _get(image, "/Decode"))
    if palette is not None:
        samples.putpalette(palette, "RGB")
    rgba = samples if samples.mode == "RGB" else samples.convert("RGB")
    if isinstance(soft, generic.StreamObject):  # a soft mask overrides /Mask
        alpha = _soft_mask(soft)
    elif isinstance(mask, generic.StreamObject):
        alpha = _stencil_mask(mask)
    if alpha is not None and alpha.size != rgba.size:
        alpha = alpha.resize(rgba.size, Image.Resampling.BILINEAR)
    rgba.putalpha(255 if alpha is None else alpha)
    return rgba


def _colour_space(space: Any, *, base_only: bool = False) -> tuple[str, bytes | None]:
    """The Pillow mode of an image's samples, and a palette (RGB triples) for /Indexed."""
    if isinstance(space, generic.NameObject):
        device = {
            "/DeviceRGB": "RGB",
            "/RGB": "RGB",
            "/DeviceGray": "L",
            "/G": "L",
            "/DeviceCMYK": "CMYK",
            "/CMYK": "CMYK",
        }
        if space in device:
            return device[space], None
    if isinstance(space, generic.ArrayObject) and len(space) >= 1:
        family = space[0]
        if family == "/ICCBased" and len(space) >= 2:
            components = _get(space[1], "/N")
            if components in (1, 3, 4):
                return {1: "L", 3: "RGB", 4: "CMYK"}[components], None
        if family in ("/CalRGB", "/CalGray"):
            return ("RGB" if family == "/CalRGB" else "L"), None
        if family in ("/Indexed", "/I") and len(space) == 4 and not base_only:
            return "P", _palette(space)
    raise _SkipError(f"colour space {space!r} is not decoded")


def _palette(space: Any) -> bytes:
    base, _ = _colour_space(_deref(space[1]), base_only=True)
    if base not in ("RGB", "L"):
        raise _SkipError("only RGB and gray palettes are decoded")
    highest = _int(_deref(space[2]))
    if not 0 <= highest <= 255:
        raise _SkipError("a palette has 1 to 256 colours")
    lookup = _deref(space[3])
    need = (highest + 1) * _BANDS[base]
    if isinstance(lookup, generic.StreamObject):
        table = _unfilter(lookup.encoded_data, _filters(lookup), need + 4096)
    elif isinstance(lookup, generic.ByteStringObject | generic.TextStringObject):
        table = lookup.original_bytes
    else:
        raise _SkipError("a palette is a string or a stream")
    if len(table) < need:
        raise _SkipError("the palette is shorter than its colour count")
    table = table[:need]
    return table if base == "RGB" else bytes(v for v in table for _ in range(3))


def _filters(stream: Any) -> list[tuple[str, Any]]:
    names, params = _get(stream, "/Filter"), _get(stream, "/DecodeParms")
    if names is None:
        return []
    if isinstance(names, generic.NameObject):
        names, params = [names], [params]
    elif isinstance(names, generic.ArrayObject):
        names = [names[i] for i in range(len(names))]
        if isinstance(params, generic.ArrayObject):
            params = [_deref(params.raw_get(i)) for i in range(len(params))]
        else:
            params = [params] * len(names)
    else:
        raise _SkipError("/Filter is a name or an array")
    if not all(isinstance(name, generic.NameObject) for name in names):
        raise _SkipError("a filter is named")
    params = [p if isinstance(p, generic.DictionaryObject) else None for p in params]
    params += [None] * (len(names) - len(params))
    return list(zip(names, params, strict=False))


def _predictor(params: Any) -> int:
    predictor = _get(params, "/Predictor")
    return 1 if predictor is None else _int(predictor)


def _unfilter(data: bytes, filters: list[tuple[str, Any]], cap: int) -> bytes:
    """Undo the filters, refusing to produce more than `cap` bytes at any stage."""
    for name, params in filters:
        if name in _FLATE and _predictor(params) == 1:
            inflater = zlib.decompressobj()
            # A truncated stream still yields its start; the length check then decides.
            data = inflater.decompress(data, cap + 1)
        elif name in _ASCII:
            data = get_generic_decoder(name).decode(data, {})
        else:
            raise _SkipError(f"filter {name} with these parameters is not decoded")
        if len(data) > cap:
            raise _SkipError("more data than the image holds")
    return data


def _samples(stream: Any, width: int, height: int, mode: str, depth: int) -> Image.Image:
    """The stream's samples as an image of `mode` ("1" for 1-bit masks)."""
    bands = _BANDS[mode]
    row = (width * bands * depth + 7) // 8
    size = row * height
    filters = _filters(stream)
    last, params = filters[-1] if filters else ("", None)
    # Before the last filter the data is compressed: it may exceed the samples, a little.
    data = _unfilter(stream.encoded_data, filters[:-1], 2 * size + 65536)
    if last in _DCT:
        return _jpeg(data, width, height, mode)
    if last in _FLATE and _predictor(params) >= 10:
        return _png_rows(data, width, height, mode, depth, params)
    data = _unfilter(data, filters[-1:], size)
    if len(data) != size:
        raise _SkipError(f"{len(data)} bytes of samples for {width}×{height}")
    return Image.frombytes(mode, (width, height), data)


def _jpeg(data: bytes, width: int, height: int, mode: str) -> Image.Image:
    with Image.open(io.BytesIO(data), formats=["JPEG"]) as opened:
        if opened.size != (width, height) or _BANDS.get(opened.mode) != _BANDS[mode]:
            raise _SkipError("the JPEG data is not the image its dictionary describes")
        opened.load()
        return opened.copy() if mode != "P" else _as_mode(opened, "P")


def _png_rows(
    data: bytes, width: int, height: int, mode: str, depth: int, params: Any
) -> Image.Image:
    """Undo PNG predictors with Pillow's PNG decoder: PDF's predicted Flate data is a
    PNG's IDAT. (pyHanko's own decoder takes /Columns for bytes and lacks two of the
    five row filters, so it garbles most colour images.)"""
    bands = _BANDS[mode]
    colors, bits = _get(params, "/Colors"), _get(params, "/BitsPerComponent")
    columns = _get(params, "/Columns")
    if (colors or 1, bits or 8, columns or 1) != (bands, depth, width):
        raise _SkipError("predictor parameters that do not match the image")
    header = struct.pack(">IIBBBBB", width, height, depth, _PNG_COLOUR_TYPES[bands], 0, 0, 0)
    png = _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")
    with Image.open(io.BytesIO(png), formats=["PNG"]) as opened:
        opened.load()
        return _as_mode(opened, mode)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _as_mode(image: Image.Image, mode: str) -> Image.Image:
    """The same samples read as `mode` (RGBA bytes as CMYK, gray as palette indices)."""
    if image.mode == mode:
        return image.copy()
    return Image.frombytes(mode, image.size, image.tobytes())


def _numbers(value: Any) -> list[float] | None:
    if not isinstance(value, generic.ArrayObject):
        return None
    numbers = [_deref(value.raw_get(i)) for i in range(len(value))]
    if not all(isinstance(n, int | float | Decimal) and not isinstance(n, bool) for n in numbers):
        raise _SkipError("not an array of numbers")
    return [float(n) for n in numbers]


def _apply_decode(samples: Image.Image, decode: Any) -> Image.Image:
    """Map samples through a /Decode array (8-bit samples; palette indices unmapped)."""
    ranges = _numbers(decode)
    if ranges is None:
        return samples
    bands = _BANDS[samples.mode]
    if len(ranges) < 2 * bands:
        raise _SkipError("a /Decode array has two numbers a component")
    if samples.mode == "P":
        if ranges[:2] != [0.0, 255.0]:
            raise _SkipError("a palette image's /Decode is not decoded")
        return samples
    pairs = [(ranges[2 * i], ranges[2 * i + 1]) for i in range(bands)]
    if all(pair == (0.0, 1.0) for pair in pairs):
        return samples
    table = [
        min(255, max(0, round(255 * (low + s * (high - low) / 255))))
        for low, high in pairs
        for s in range(256)
    ]
    return samples.point(table)


def _colour_key(samples: Image.Image, mask: Any) -> Image.Image | None:
    """Alpha from a colour-key /Mask: pixels whose every sample is in range vanish."""
    ranges = _numbers(mask)
    if ranges is None:
        return None
    bands = [samples] if samples.mode == "P" else list(samples.split())
    if len(ranges) < 2 * len(bands):
        raise _SkipError("a colour key has two numbers a component")
    keyed = None
    for i, band in enumerate(_as_mode(b, "L") for b in bands):
        low, high = ranges[2 * i], ranges[2 * i + 1]
        inside = band.point([255 if low <= v <= high else 0 for v in range(256)])
        keyed = inside if keyed is None else ImageChops.darker(keyed, inside)
    return None if keyed is None else ImageChops.invert(keyed)


def _soft_mask(mask: Any) -> Image.Image | None:
    """A soft mask's samples as alpha; None (opaque) when it cannot be decoded."""
    try:
        width, height = _size(mask)
        if _get(mask, "/BitsPerComponent") != 8:
            return None
        samples = _samples(mask, width, height, "L", 8)
        return _apply_decode(samples, _get(mask, "/Decode"))
    except _SKIPPED:
        return None


def _stencil_mask(mask: Any) -> Image.Image | None:
    """A stencil /Mask as alpha: a 1 sample (0 with /Decode [1 0]) masks the pixel out."""
    try:
        width, height = _size(mask)
        if not _get(mask, "/ImageMask") or _get(mask, "/BitsPerComponent") not in (1, None):
            return None
        gray = _samples(mask, width, height, "1", 1).convert("L")
        inverted = (_numbers(_get(mask, "/Decode")) or [0.0, 1.0])[:2] == [1.0, 0.0]
        return gray if inverted else ImageChops.invert(gray)
    except _SKIPPED:
        return None
