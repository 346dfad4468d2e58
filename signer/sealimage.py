"""Electronic seal images: checking uploaded ones and drawing a development one.

A seal image is the picture stamped on a sealed document, modelled on the seal
images of GB/T 38540. Seals should be RGBA PNGs with a transparent background, so
the page shows through around the ink; transparency is not required, because a
department may only have a scan on white.

`check_seal_image` is the gate every uploaded image passes before it is stored or
drawn. Uploads are hostile bytes, so it works from cheapest to dearest and never
lets Pillow decode more than it has to: the PNG signature and the byte limit
first, then a walk over the chunk structure (lengths, CRCs, IHDR first, IEND last
with nothing after it, no animation), then the dimensions from the IHDR header,
then the inflated length of the pixel data, and only then a full decode by Pillow
to catch corrupt pixel data. The dimensions are checked before anything is
inflated, so a decompression bomb (a small file claiming 30000×30000 pixels) is
refused without depending on `Image.MAX_IMAGE_PIXELS`, a process-wide setting
other code may change.

`make_dev_seal_png` draws a red round seal for development and tests: it is not a
legal seal and makes no attempt at the exact geometry GB/T 38540 prescribes. Even
at 2048 pixels with 30 dense characters it stays near 400 KB, under the byte limit.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass, field

from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

MAX_SEAL_IMAGE_BYTES = 512 * 1024
MIN_SIDE = 64  # pixels
MAX_SIDE = 2048  # pixels
MAX_SEAL_NAME_CHARS = 30

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DEV_SEAL_RED = (220, 20, 20, 255)

# Tried in order when fontconfig is missing or finds nothing, and preferred in this
# order among what it finds, so every machine with the Debian package draws alike.
_KNOWN_CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
# fontconfig also lists bitmap fonts (wqy's .pcf among them), which FreeType through
# Pillow cannot scale.
_SCALABLE_FONT_SUFFIXES = (".ttf", ".ttc", ".otf", ".otc")


class SealImageError(ValueError):
    """An image cannot be a seal image; `reason` is a stable code for error details."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SealImage:
    png: bytes = field(repr=False)
    width: int
    height: int
    sha256: bytes  # digest of the exact PNG bytes


def _corrupt(message: str) -> SealImageError:
    return SealImageError("SEAL_IMAGE_CORRUPT", message)


def _png_chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, data) chunks after the signature, each length and CRC checked."""
    chunks = []
    pos = len(_PNG_SIGNATURE)
    while pos < len(png):
        if pos + 12 > len(png):
            raise _corrupt("the PNG file ends inside a chunk header")
        length, kind = struct.unpack_from(">I4s", png, pos)
        end = pos + 12 + length
        if end > len(png):
            raise _corrupt(f"PNG chunk {kind!r} runs past the end of the file")
        data = png[pos + 8 : end - 4]
        if zlib.crc32(kind + data) != int.from_bytes(png[end - 4 : end], "big"):
            raise _corrupt(f"PNG chunk {kind!r} has a wrong CRC")
        chunks.append((kind, data))
        pos = end
    return chunks


# Samples per pixel of each PNG colour type, and the Adam7 passes as
# (first column, first row, column step, row step).
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = (
    (0, 0, 8, 8),
    (4, 0, 8, 8),
    (0, 4, 4, 8),
    (2, 0, 4, 4),
    (0, 2, 2, 4),
    (1, 0, 2, 2),
    (0, 1, 1, 2),
)


def _check_pixel_data(ihdr: bytes, chunks: list[tuple[bytes, bytes]]) -> None:
    """Refuse IDAT data that does not inflate to exactly the rows the header promises.

    Pillow fills the missing rows of a short but well-formed zlib stream with zeros and
    ignores surplus data, so it cannot be relied on for this.
    """
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    bits = depth * _CHANNELS.get(colour, 0)
    expected = 0
    for x0, y0, dx, dy in _ADAM7 if interlace else ((0, 0, 1, 1),):
        columns, rows = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if columns and rows:
            expected += rows * ((columns * bits + 7) // 8 + 1)  # each row has a filter byte
    idat = b"".join(data for kind, data in chunks if kind == b"IDAT")
    inflater = zlib.decompressobj()
    try:
        # Bounded by the checked dimensions: 2048×2048 at 64 bits a pixel is 32 MiB.
        size = len(inflater.decompress(idat, expected + 1))
    except zlib.error as exc:
        raise _corrupt(f"the PNG pixel data is not a zlib stream: {exc}") from exc
    if size != expected or not inflater.eof or inflater.unused_data:
        raise _corrupt(f"the PNG pixel data is not the {expected} bytes its header promises")


def check_seal_image(png: bytes) -> SealImage:
    """Accept `png` as a seal image or raise SealImageError."""
    if not png.startswith(_PNG_SIGNATURE):
        raise SealImageError("SEAL_IMAGE_NOT_PNG", "a seal image must be a PNG file")
    if len(png) > MAX_SEAL_IMAGE_BYTES:
        raise SealImageError(
            "SEAL_IMAGE_TOO_LARGE",
            f"a seal image may be at most {MAX_SEAL_IMAGE_BYTES} bytes, not {len(png)}",
        )
    chunks = _png_chunks(png)
    if not chunks or chunks[0][0] != b"IHDR" or len(chunks[0][1]) != 13:
        raise _corrupt("a PNG file must start with a 13-byte IHDR chunk")
    # Pillow ignores anything after IEND; refusing it keeps other data (a ZIP, a
    # script) from riding along under the seal's digest.
    if chunks[-1][0] != b"IEND" or [kind for kind, _ in chunks].count(b"IEND") != 1:
        raise _corrupt("a PNG file must end with its one IEND chunk")
    # A viewer would play an APNG while a PDF shows its first frame: one seal must
    # look the same everywhere.
    if any(kind == b"acTL" for kind, _ in chunks):
        raise SealImageError("SEAL_IMAGE_NOT_PNG", "an animated PNG cannot be a seal image")
    width, height = struct.unpack_from(">II", chunks[0][1])
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise SealImageError(
            "SEAL_IMAGE_DIMENSIONS",
            f"each side of a seal image must be {MIN_SIDE} to {MAX_SIDE} pixels, "
            f"not {width}×{height}",
        )
    _check_pixel_data(chunks[0][1], chunks)
    try:
        with Image.open(io.BytesIO(png), formats=["PNG"]) as img:
            if img.format != "PNG" or img.size != (width, height):
                raise _corrupt("Pillow does not read the file as the PNG its header describes")
            img.load()
    except SealImageError:
        raise
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        zlib.error,
        Image.DecompressionBombError,
    ) as exc:
        # Pillow's message for these names an in-memory object, not the fault.
        unread = isinstance(exc, UnidentifiedImageError)
        raise _corrupt(f"Pillow cannot decode the PNG: {'unsupported' if unread else exc}") from exc
    return SealImage(png=png, width=width, height=height, sha256=hashlib.sha256(png).digest())


def _fontconfig_cjk_fonts() -> list[str]:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return []
    # fc-match is no use here: it always answers, with a Latin font if need be.
    try:
        listed = subprocess.run(  # noqa: S603 — fixed arguments, no shell
            [fc_list, "-f", "%{file}\n", ":lang=zh"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(
        {path for path in listed.splitlines() if path.lower().endswith(_SCALABLE_FONT_SUFFIXES)}
    )


def find_cjk_font() -> str:
    """Path of a font file with Chinese glyphs (fontconfig first, then known paths).

    Raises SealImageError("NO_CJK_FONT") when there is none.
    """
    found = [path for path in _fontconfig_cjk_fonts() if os.path.isfile(path)]
    for path in _KNOWN_CJK_FONTS:
        if path in found or (not found and os.path.isfile(path)):
            return path
    if found:
        return found[0]
    raise SealImageError(
        "NO_CJK_FONT",
        "no font with Chinese characters is installed; install one, for example "
        "`apt-get install fonts-wqy-microhei`",
    )


def _star(cx: float, cy: float, outer: float) -> list[tuple[float, float]]:
    # The inner radius of a regular five-pointed star, where its edges cross.
    inner = outer * math.sin(math.radians(18)) / math.sin(math.radians(54))
    points = []
    for i in range(10):
        angle = -math.pi / 2 + i * math.pi / 5
        radius = outer if i % 2 == 0 else inner
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def make_dev_seal_png(name: str, *, size: int = 480, font_path: str | None = None) -> bytes:
    """A development seal image: red round seal, `name` around the top, a five-pointed star.

    The name reads clockwise from the lower left, each character's top pointing away
    from the centre, as on a Chinese official seal. The same arguments, font and Pillow
    give the same bytes.
    """
    if not name or len(name) > MAX_SEAL_NAME_CHARS or not name.isprintable():
        raise ValueError(f"a seal name must be 1 to {MAX_SEAL_NAME_CHARS} printable characters")
    if not MIN_SIDE <= size <= MAX_SIDE:
        raise ValueError(f"a seal image side must be {MIN_SIDE} to {MAX_SIDE} pixels")
    font_file = font_path if font_path is not None else find_cjk_font()

    # ImageDraw does not anti-alias shapes, so draw large and scale down.
    scale = max(1, min(4, 4096 // size))
    side = size * scale
    img = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    centre = side / 2
    margin = round(side * 0.02)
    ring = round(side * 0.03)
    draw.ellipse(
        (margin, margin, side - 1 - margin, side - 1 - margin), outline=_DEV_SEAL_RED, width=ring
    )
    draw.polygon(_star(centre, centre, side * 0.15), fill=_DEV_SEAL_RED)

    # Characters sit in a band inside the ring. Long names get characters small enough
    # to fit the widest arc at a pitch of 1.25 characters; short ones keep the largest
    # size at a pitch of 1.6, centred on the top, rather than being scattered over the
    # whole 250 degrees.
    n = len(name)
    max_span = math.radians(250)
    band = centre - margin - ring - side * 0.025
    largest = side * 0.12
    font_px = min(largest, (band - largest / 2) * max_span / (n * 1.25))
    radius = band - font_px / 2
    step = min(max_span / n, 1.6 * font_px / radius)
    first = -math.pi / 2 - step * (n - 1) / 2
    font = ImageFont.truetype(font_file, max(1, round(font_px)))
    tile = math.ceil(font_px * 1.5)  # room for a glyph's diagonal when rotated
    for i, char in enumerate(name):
        # Screen angles grow clockwise, because y grows downwards.
        angle = first + i * step
        glyph = Image.new("RGBA", (tile, tile), (0, 0, 0, 0))
        ImageDraw.Draw(glyph).text(
            (tile / 2, tile / 2), char, font=font, fill=_DEV_SEAL_RED, anchor="mm"
        )
        # Upright is -90 degrees; Pillow rotates counter-clockwise, hence the sign.
        glyph = glyph.rotate(-math.degrees(angle) - 90, resample=Image.Resampling.BICUBIC)
        x = centre + radius * math.cos(angle) - tile / 2
        y = centre + radius * math.sin(angle) - tile / 2
        img.alpha_composite(glyph, (round(x), round(y)))

    if scale > 1:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    # Scaling leaves rounding noise in the colour of edge pixels, which costs PNG
    # compression dearly: every pixel gets the one red, only its alpha varies. The
    # transparent ones being red too spares renderers that scale without
    # premultiplying a dark fringe.
    ink = Image.new("RGBA", (size, size), _DEV_SEAL_RED)
    ink.putalpha(img.getchannel("A"))
    out = io.BytesIO()
    ink.save(out, format="PNG", optimize=True)
    png = out.getvalue()
    check_seal_image(png)  # the contract: a development seal is always accepted
    return png
