"""The fast hex-string reader gives exactly what pyHanko's own reader gives."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import _hex_strings

_ALPHABET = list(b"0123456789abcdefABCDEF \n\r\t\x0c\x00>%Zx<")


def _outcome(reader: object, data: bytes) -> tuple[str, object, int]:
    stream = io.BytesIO(data)
    try:
        value = reader(stream)  # type: ignore[operator]
    except Exception as exc:  # the error's type is what is compared
        return ("error", type(exc).__name__, -1)
    return ("value", (type(value).__name__, bytes(value.original_bytes)), stream.tell())


@settings(max_examples=400)
@given(st.lists(st.sampled_from(_ALPHABET), max_size=80).map(bytes), st.binary(max_size=8))
def test_same_result_and_position_as_pyhanko(body: bytes, tail: bytes) -> None:
    data = b"<" + body + tail
    assert _outcome(_hex_strings.read_hex_string_from_stream, data) == _outcome(
        _hex_strings._ORIGINAL, data
    )


def test_a_long_signature_string_is_read_across_chunks() -> None:
    digits = (b"30820a" * 30_000) + b"\n" + b"00" * 100
    data = b"<" + digits + b"> /Type /Sig"
    assert _outcome(_hex_strings.read_hex_string_from_stream, data) == _outcome(
        _hex_strings._ORIGINAL, data
    )
