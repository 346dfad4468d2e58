"""Seal images: the development seal is drawn as promised, and hostile uploads are refused."""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from signer.sealimage import (
    MAX_SEAL_IMAGE_BYTES,
    MAX_SIDE,
    MIN_SIDE,
    SealImage,
    SealImageError,
    check_seal_image,
    find_cjk_font,
    make_dev_seal_png,
)

SEAL_NAME = "杭州市西湖区市场监督管理局"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def encode(img: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def chunks(png: bytes) -> list[tuple[bytes, bytes]]:
    found, pos = [], len(PNG_SIGNATURE)
    while pos < len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        found.append((png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return found


def rebuild(parts: list[tuple[bytes, bytes]]) -> bytes:
    return PNG_SIGNATURE + b"".join(chunk(kind, data) for kind, data in parts)


def small_png(width: int = 64, height: int = 64) -> bytes:
    return encode(Image.new("RGBA", (width, height), (220, 20, 20, 128)))


def refused(png: bytes) -> str:
    with pytest.raises(SealImageError) as info:
        check_seal_image(png)
    return info.value.reason


@pytest.fixture(scope="module")
def dev_seal() -> bytes:
    return make_dev_seal_png(SEAL_NAME)


def test_dev_seal_is_a_seal_image(dev_seal: bytes) -> None:
    seal = check_seal_image(dev_seal)
    assert seal == SealImage(dev_seal, 480, 480, hashlib.sha256(dev_seal).digest())
    assert dev_seal not in repr(seal).encode()


def test_dev_seal_is_deterministic(dev_seal: bytes) -> None:
    assert make_dev_seal_png(SEAL_NAME) == dev_seal
    assert make_dev_seal_png(SEAL_NAME, font_path=find_cjk_font()) == dev_seal
    assert make_dev_seal_png("杭州市人民政府") != dev_seal


def test_dev_seal_is_red_ink_on_transparency(dev_seal: bytes) -> None:
    with Image.open(io.BytesIO(dev_seal)) as img:
        rgba = img.convert("RGBA")
    assert rgba.getpixel((240, 240)) == (220, 20, 20, 255)  # the centre of the star
    for corner in [(0, 0), (479, 0), (0, 479), (479, 479)]:
        assert rgba.getpixel(corner)[3] == 0  # type: ignore[index]
    # One red throughout, the shapes drawn by alpha alone.
    assert rgba.convert("RGB").getcolors() == [(480 * 480, (220, 20, 20))]
    assert rgba.getchannel("A").histogram()[255] > 480 * 480 // 20
    # The name runs over the top only: a band between the star and the ring at the
    # top has ink, the same band at the bottom has none.
    top = rgba.crop((190, 45, 290, 100)).getchannel("A").getextrema()
    bottom = rgba.crop((190, 330, 290, 440)).getchannel("A").getextrema()
    assert top[1] == 255
    assert bottom == (0, 0)


@pytest.mark.parametrize("size", [MIN_SIDE, 1000, MAX_SIDE])
def test_dev_seal_sizes(size: int) -> None:
    seal = check_seal_image(
        make_dev_seal_png("浙江省杭州市西湖区市场监督管理局行政审批专用章", size=size)
    )
    assert (seal.width, seal.height) == (size, size)


@pytest.mark.parametrize("size", [MIN_SIDE - 1, MAX_SIDE + 1])
def test_dev_seal_size_outside_limits(size: int) -> None:
    with pytest.raises(ValueError, match="side"):
        make_dev_seal_png(SEAL_NAME, size=size)


@pytest.mark.parametrize("name", ["测", "测试", "龘" * 30])
def test_dev_seal_name_lengths(name: str) -> None:
    check_seal_image(make_dev_seal_png(name))


@pytest.mark.parametrize("name", ["", "龘" * 31, "杭州\n政府", "杭州\u202e政府"])
def test_dev_seal_name_refused(name: str) -> None:
    with pytest.raises(ValueError, match="seal name"):
        make_dev_seal_png(name)


def test_cjk_font_is_found() -> None:
    path = find_cjk_font()
    assert os.path.isfile(path)
    assert path.endswith((".ttf", ".ttc", ".otf", ".otc"))


def test_error_is_a_value_error_with_a_reason() -> None:
    error = SealImageError("SEAL_IMAGE_CORRUPT", "broken")
    assert isinstance(error, ValueError)
    assert (error.reason, str(error)) == ("SEAL_IMAGE_CORRUPT", "broken")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(random.Random(1).randbytes(4000), id="random"),
        pytest.param(encode(Image.new("RGB", (100, 100), "red"), "JPEG"), id="jpeg"),
        pytest.param(encode(Image.new("P", (100, 100)), "GIF"), id="gif"),
        pytest.param(encode(Image.new("RGBA", (100, 100), "red"), "WEBP"), id="webp"),
        pytest.param(PNG_SIGNATURE[:7], id="short-signature"),
    ],
)
def test_not_png(data: bytes) -> None:
    assert refused(data) == "SEAL_IMAGE_NOT_PNG"


def test_animated_png_refused() -> None:
    frames = [Image.new("RGBA", (64, 64), colour) for colour in ["red", "blue"]]
    apng = encode(frames[0], save_all=True, append_images=frames[1:])
    assert b"acTL" in apng
    assert refused(apng) == "SEAL_IMAGE_NOT_PNG"


def test_byte_limit() -> None:
    noisy = Image.frombytes("RGB", (700, 700), random.Random(2).randbytes(700 * 700 * 3))
    assert refused(encode(noisy)) == "SEAL_IMAGE_TOO_LARGE"
    # A private ancillary chunk pads a valid image to the limit exactly; readers skip it.
    parts = chunks(small_png())
    pad = MAX_SEAL_IMAGE_BYTES - len(rebuild(parts)) - 12
    padded = rebuild([parts[0], (b"prVt", bytes(pad)), *parts[1:]])
    assert len(padded) == MAX_SEAL_IMAGE_BYTES
    assert check_seal_image(padded).width == 64
    one_more = rebuild([parts[0], (b"prVt", bytes(pad + 1)), *parts[1:]])
    assert refused(one_more) == "SEAL_IMAGE_TOO_LARGE"


@pytest.mark.parametrize(
    ("width", "height", "accepted"),
    [
        (32, 32, False),
        (MIN_SIDE - 1, 100, False),
        (MIN_SIDE, MIN_SIDE, True),
        (MAX_SIDE, MAX_SIDE, True),
        (MAX_SIDE + 1, 100, False),
        (3000, 10, False),
        (100, 3000, False),
    ],
)
def test_dimensions(width: int, height: int, accepted: bool) -> None:
    # Bilevel images keep even the largest of these a few hundred bytes long.
    png = encode(Image.new("1", (width, height)))
    if accepted:
        assert (check_seal_image(png).width, check_seal_image(png).height) == (width, height)
    else:
        assert refused(png) == "SEAL_IMAGE_DIMENSIONS"


def test_decompression_bomb_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    # The header claims 30000×30000 RGBA (3.6 GB decoded); the refusal must not rest
    # on Pillow's own process-wide bomb guard, which is switched off here.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    parts = chunks(small_png())
    parts[0] = (b"IHDR", struct.pack(">II", 30000, 30000) + parts[0][1][8:])
    assert refused(rebuild(parts)) == "SEAL_IMAGE_DIMENSIONS"


def test_corrupt() -> None:
    png = small_png()
    parts = chunks(png)
    kinds = [kind for kind, _ in parts]
    idat = kinds.index(b"IDAT")
    assert refused(PNG_SIGNATURE + random.Random(3).randbytes(500)) == "SEAL_IMAGE_CORRUPT"
    assert refused(PNG_SIGNATURE) == "SEAL_IMAGE_CORRUPT"
    for cut in [10, 30, len(png) // 2, len(png) - 1]:
        assert refused(png[:cut]) == "SEAL_IMAGE_CORRUPT", cut
    flipped = bytearray(png)
    flipped[len(png) // 2] ^= 0x01
    assert refused(bytes(flipped)) == "SEAL_IMAGE_CORRUPT"  # the CRC no longer matches
    assert refused(png + b"PK\x03\x04 hidden archive") == "SEAL_IMAGE_CORRUPT"
    assert refused(png + chunk(b"IEND", b"")) == "SEAL_IMAGE_CORRUPT"
    assert refused(rebuild(parts[1:])) == "SEAL_IMAGE_CORRUPT"  # no IHDR first
    assert refused(rebuild(parts[:-1])) == "SEAL_IMAGE_CORRUPT"  # no IEND
    # Well-formed chunks whose pixel data is not a zlib stream: only decoding finds out.
    row = bytes(1 + 64 * 4)  # a filter byte and 64 RGBA pixels
    for pixels in [
        random.Random(4).randbytes(300),
        zlib.compress(row * 63),  # a row short, which Pillow alone would fill with zeros
        zlib.compress(row * 65),
        zlib.compress(row * 64) + b"\0",
    ]:
        replaced = [*parts[:idat], (b"IDAT", pixels), *parts[idat + 1 :]]
        assert refused(rebuild(replaced)) == "SEAL_IMAGE_CORRUPT"
    exact = [*parts[:idat], (b"IDAT", zlib.compress(row * 64)), *parts[idat + 1 :]]
    assert check_seal_image(rebuild(exact)).height == 64


def outcome(data: bytes) -> str:
    try:
        check_seal_image(data)
    except SealImageError as error:
        return error.reason
    return "accepted"


OUTCOMES = {
    "accepted",
    "SEAL_IMAGE_NOT_PNG",
    "SEAL_IMAGE_TOO_LARGE",
    "SEAL_IMAGE_DIMENSIONS",
    "SEAL_IMAGE_CORRUPT",
}


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_raise_only_seal_image_errors(data: bytes) -> None:
    assert outcome(data) in OUTCOMES
    assert outcome(PNG_SIGNATURE + data) in OUTCOMES


@settings(max_examples=300, deadline=None)
@given(
    mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16"]),
    fields=st.none() | st.binary(min_size=5, max_size=5),
    data=st.data(),
)
def test_random_pixels_and_header_fields_raise_only_seal_image_errors(
    mode: str, fields: bytes | None, data: st.DataObject
) -> None:
    # Well-formed chunks and pixel data of the right length get past the structural
    # checks, so Pillow's decoder meets random pixels (with valid row filters) and
    # random bit depths, colour types and interlacing.
    parts = chunks(encode(Image.new(mode, (64, 64))))
    idat = [kind for kind, _ in parts].index(b"IDAT")
    length = len(zlib.decompress(parts[idat][1]))
    # Hypothesis draws a seed, not the pixels: 64×64 RGBA is more entropy than it
    # allows per example, and the decoder only needs arbitrary bytes.
    seed = data.draw(st.binary(min_size=8, max_size=32))
    pixels = bytearray(random.Random(seed).randbytes(length))
    for row in range(0, length, length // 64):
        pixels[row] %= 5
    parts[idat] = (b"IDAT", zlib.compress(pixels))
    if fields is not None:
        parts[0] = (b"IHDR", parts[0][1][:8] + fields)
    assert outcome(rebuild(parts)) in OUTCOMES
