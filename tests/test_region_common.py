"""Shared pieces of the region's operations that stand on their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from service.errors import ServiceError
from service.region.common import MAX_REQUEST_ID, check_request_id, text_problem, timestamp_of
from service.region.index import ParsedCache

_INSTANTS = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
_OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(_INSTANTS, _OFFSETS)
def test_timestamp_of_matches_protobufs_own_conversion(at: datetime, zone: timezone) -> None:
    expected = Timestamp()
    expected.FromDatetime(at)
    assert timestamp_of(at.astimezone(zone)) == expected
    assert timestamp_of(at.replace(tzinfo=None)) == expected  # naive means UTC


def naive_text_problem(value: str, limit: int) -> str | None:
    """The rule spelled out character by character, to compare the real one with."""
    if not value:
        return "required"
    if value != value.strip():
        return "must not start or end with whitespace"
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        return "must not contain control characters"
    if len(value) > limit:
        return f"must be at most {limit} characters (has {len(value)})"
    return None


@pytest.mark.parametrize("control", ["\x00", "\x1f", "\x7f", "\x85", "\x9f"])
def test_control_characters_are_refused(control: str) -> None:
    assert text_problem(f"a{control}b", 10) == "must not contain control characters"


@pytest.mark.parametrize("value", ["营业执照", "a\u00a0b", "A~", "x" * 10])
def test_printable_text_is_accepted(value: str) -> None:
    assert text_problem(value, 10) is None


def test_text_rules() -> None:
    assert text_problem("", 10) == "required"
    assert text_problem("", 10, required=False) is None
    assert text_problem(" a", 10) == "must not start or end with whitespace"
    assert text_problem("x" * 11, 10) == "must be at most 10 characters (has 11)"


@given(st.text(max_size=20), st.integers(1, 20))
def test_text_problem_agrees_with_the_naive_rule(value: str, limit: int) -> None:
    assert text_problem(value, limit) == naive_text_problem(value, limit)


@pytest.mark.parametrize("request_id", ["a", "!~", "req-1/2:3", "x" * MAX_REQUEST_ID])
def test_request_ids_accepted(request_id: str) -> None:
    check_request_id(request_id)


@pytest.mark.parametrize(
    ("request_id", "reason"),
    [
        ("", "REQUEST_ID_MISSING"),
        ("a b", "FIELD_INVALID"),
        ("a\tb", "FIELD_INVALID"),
        ("a\n", "FIELD_INVALID"),
        ("é", "FIELD_INVALID"),
        ("ａ", "FIELD_INVALID"),  # full-width
        ("x" * (MAX_REQUEST_ID + 1), "FIELD_INVALID"),
    ],
)
def test_request_ids_refused(request_id: str, reason: str) -> None:
    with pytest.raises(ServiceError) as error:
        check_request_id(request_id)
    assert error.value.reason == reason
    assert [v.field for v in error.value.violations] == ["request_id"]


class _Store:
    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.parsed: list[bytes] = []

    def index_get(self, key: bytes) -> bytes | None:
        return self.values.get(key)

    def parse(self, data: bytes) -> str:
        self.parsed.append(data)
        return data.decode().upper()


def test_parsed_cache_parses_once_and_sees_every_change() -> None:
    store = _Store()
    cache = ParsedCache(lambda code: b"k/" + code.encode(), store.parse)
    assert cache.get(store, "a") is None
    store.values[b"k/a"] = b"first"
    assert cache.get(store, "a") == "FIRST"
    assert cache.get(store, "a") == "FIRST"
    assert store.parsed == [b"first"]
    store.values[b"k/a"] = b"second"  # changed in place: seen by the next read
    assert cache.get(store, "a") == "SECOND"
    del store.values[b"k/a"]
    assert cache.get(store, "a") is None
    assert store.parsed == [b"first", b"second"]
