"""A faster reader for PDF hex strings, installed into pyHanko's parser.

pyHanko reads a hex string one byte at a time through Python calls; a signature's
/Contents is a hex string of tens of kilobytes, so reading one took about 4 ms, a
third of a sealed PDF's verification. This reader finds the closing ``>`` with one
search and decodes with `binascii`, with the same result for every input: strings
holding a comment (``%``) go to pyHanko's own reader, and anything else it would
refuse is refused with the same error type. `tests/test_hex_strings.py` compares
the two on generated input.
"""

from __future__ import annotations

import binascii
import re
from typing import BinaryIO

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError

_ORIGINAL = generic.read_hex_string_from_stream
_PDF_WHITESPACE = b" \n\r\t\x0c\x00"
_HEX = re.compile(rb"[0-9A-Fa-f]*")
_CHUNK = 1 << 16


def read_hex_string_from_stream(
    stream: BinaryIO,
) -> generic.ByteStringObject | generic.TextStringObject:
    start = stream.tell()
    stream.read(1)  # the opening "<"
    parts: list[bytes] = []
    consumed = 1
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            stream.seek(start)
            return _ORIGINAL(stream)  # let pyHanko name the truncation its own way
        end = chunk.find(b">")
        if end >= 0:
            parts.append(chunk[:end])
            consumed += end + 1
            break
        parts.append(chunk)
        consumed += len(chunk)
    body = b"".join(parts)
    if b"%" in body:
        stream.seek(start)
        return _ORIGINAL(stream)
    digits = body.translate(None, _PDF_WHITESPACE)
    if not _HEX.fullmatch(digits):
        raise PdfStreamError("Unexpected token in hex string")
    stream.seek(start + consumed)
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


def install() -> None:
    """Make pyHanko's object parser use this reader (idempotent)."""
    generic.read_hex_string_from_stream = read_hex_string_from_stream
