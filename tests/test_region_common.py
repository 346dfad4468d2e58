"""Shared pieces of the region's operations that stand on their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st

from service.region.common import timestamp_of

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
