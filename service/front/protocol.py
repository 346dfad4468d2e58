"""The messages between a front end and the region process.

Every frame (`service.frames`) holds a pickled list of messages, each a tuple whose
first item is its kind. Pickle is safe here: both ends are this program's own
processes, joined by pipes nothing else holds.

Front end to region:
    (CALL, call_id, method, client_certificate_pem | None, request_bytes)
    (CANCEL, call_id)             the client went away or its deadline passed
    (ACK, call_id)                one streamed item was written to the client
    (READY, port, mtls_port)      the first message, once the ports are bound
    (FAILED, message)             the first message instead, when they cannot be
    (STOPPED,)                    the last message, after a graceful stop

Region to front end:
    (REPLY, call_id, response_bytes)
    (ITEM, call_id, response_bytes)   one item of a server stream
    (END, call_id)                    the stream ended well
    (STATUS, call_id, code, message, trailing_metadata)
    (STOP, grace_seconds)
"""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import dataclass
from typing import Any

from service.frames import frame

CALL = "call"
CANCEL = "cancel"
ACK = "ack"
READY = "ready"
FAILED = "failed"
STOPPED = "stopped"
REPLY = "reply"
ITEM = "item"
END = "end"
STATUS = "status"
STOP = "stop"

Message = tuple[Any, ...]

# Items of one stream sent and not yet acknowledged: the region's handler waits
# beyond this, so a client that reads slowly cannot make either process buffer its
# whole stream.
STREAM_WINDOW = 16


@dataclass(frozen=True)
class FrontEndConfig:
    """All a front end needs, sent as its first frame."""

    address: str
    mtls_address: str
    server_key_pem: bytes
    server_certificate_pem: bytes
    ca_pem: bytes
    max_message_bytes: int
    # Method path ("/package.Service/Method") -> whether the server streams its reply.
    methods: dict[str, bool]
    # Health: SERVING for these service names (and ""), NOT_SERVING for the planned.
    serving: tuple[str, ...]
    planned: tuple[str, ...]
    log_level: str = "INFO"
    # Several front ends listen on the same ports (SO_REUSEPORT). A lone one does not
    # allow it, so a second server started on its ports fails instead of taking a share
    # of its connections.
    share_ports: bool = False

    def __repr__(self) -> str:  # never print the key
        return f"FrontEndConfig({self.address}, {self.mtls_address}, {len(self.methods)} methods)"


def encode(messages: list[Message]) -> bytes:
    return pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> list[Message]:
    messages: list[Message] = pickle.loads(data)  # noqa: S301 — our own process's frames
    return messages


def encode_config(config: FrontEndConfig) -> bytes:
    return pickle.dumps(config, protocol=pickle.HIGHEST_PROTOCOL)


def decode_config(data: bytes) -> FrontEndConfig:
    config = pickle.loads(data)  # noqa: S301 — our parent's own frame
    if not isinstance(config, FrontEndConfig):
        raise TypeError("the first frame is not a FrontEndConfig")
    return config


class Outbox:
    """Messages sent during one turn of the event loop, written as one frame."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self._transport = transport
        self._queued: list[Message] = []

    def send(self, message: Message) -> None:
        if not self._queued:
            asyncio.get_running_loop().call_soon(self.flush)
        self._queued.append(message)

    def flush(self) -> None:
        queued, self._queued = self._queued, []
        if queued and not self._transport.is_closing():
            self._transport.write(frame(encode(queued)))

    def close(self) -> None:
        self.flush()
        self._transport.close()
