"""Length-prefixed frames between the server and its child processes.

The signing worker and the gRPC front ends talk to the server over pipes the server
made when it spawned them: private to the two processes, so nothing else can inject
a frame. Each frame is a 4-byte big-endian length and that many bytes; the parties
put pickles of their own messages in them.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import IO, Protocol

_LENGTH = struct.Struct(">I")


def frame(data: bytes) -> bytes:
    return _LENGTH.pack(len(data)) + data


def write_frame(stream: IO[bytes], data: bytes) -> None:
    stream.write(frame(data))
    stream.flush()


class Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


def read_frame(stream: Readable) -> bytes | None:
    """The next frame from a blocking stream; None at its end (or a cut-off frame)."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    data = stream.read(length)
    return data if len(data) == length else None


class FrameReader(asyncio.Protocol):
    """An event-loop read pipe delivering whole frames to `received`, then `ended`."""

    def __init__(self, received: Callable[[bytes], None], ended: Callable[[], None]) -> None:
        self._received = received
        self._ended = ended
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, start)
            end = start + _LENGTH.size + length
            if len(buffer) < end:
                break
            self._received(bytes(buffer[start + _LENGTH.size : end]))
            start = end
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        self._ended()
