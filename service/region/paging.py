"""Pages over an index prefix, with opaque tokens bound to the query that made them."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import TypeVar

from ledger import LedgerReader
from service.errors import FieldViolation, invalid_argument
from service.region.index import prefix_end

DEFAULT_PAGE = 50
MAX_PAGE = 1000
_BINDING = 8  # bytes of the query digest carried in a token

T = TypeVar("T")


def page_size(requested: int) -> int:
    if requested > MAX_PAGE:
        raise invalid_argument(
            f"page_size {requested} exceeds {MAX_PAGE}",
            FieldViolation("page_size", f"must be at most {MAX_PAGE}"),
        )
    return requested or DEFAULT_PAGE


def _binding(query: str) -> bytes:
    return hashlib.sha256(query.encode()).digest()[:_BINDING]


def _start_after(token: str, query: str) -> bytes | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) <= _BINDING or raw[:_BINDING] != _binding(query):
        raise invalid_argument(
            "page_token is not from a previous page of this same query",
            FieldViolation("page_token", "use next_page_token of a request with the same filters"),
        )
    return raw[_BINDING:]


def _token(last_key: bytes, query: str) -> str:
    return base64.urlsafe_b64encode(_binding(query) + last_key).decode().rstrip("=")


def page(
    reader: LedgerReader,
    prefix: bytes,
    *,
    query: str,
    token: str,
    size: int,
    accept: Callable[[bytes, bytes], T | None],
) -> tuple[list[T], str]:
    """Up to `size` accepted items after the token's position, and the next token."""
    start = prefix
    after = _start_after(token, query)
    if after is not None:
        if not after.startswith(prefix):
            raise invalid_argument(
                "page_token does not belong to this query",
                FieldViolation("page_token", "use next_page_token of the same query"),
            )
        start = after + b"\0"
    items: list[T] = []
    for key, value in reader.index_scan(start, prefix_end(prefix)):
        item = accept(key, value)
        if item is None:
            continue
        items.append(item)
        if len(items) == size:
            return items, _token(key, query)
    return items, ""
