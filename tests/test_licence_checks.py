"""Licence status, version, validity and holder, judged as of a validation time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from licenceledger.index.v1 import index_pb2
from licenceledger.licence.v1 import licence_pb2 as lpb
from licenceledger.verification.v1 import report_pb2 as rp
from signer.identifiers import LicenceId
from verifier import licence_checks as lc
from verifier.report import Checks

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LINEAGE = LicenceId("SPJY", "11310000MB0123456F", 1, 1)
V1, V2 = LINEAGE.text, LINEAGE.with_version(2).text


def _licence(licence_id: str = V1, **fields: object) -> lpb.Licence:
    licence = lpb.Licence(licence_id=licence_id, version=int(licence_id.split(".")[-2]))
    licence.holder.id_number = "91310000MA1K000010"
    for name, value in fields.items():
        getattr(licence, name).CopyFrom(lc.timestamp(value))  # type: ignore[arg-type]
    return licence


def _state(
    *changes: tuple[int, datetime], amended_at: datetime | None = None
) -> index_pb2.LicenceState:
    state = index_pb2.LicenceState(current_licence_id=V1)
    state.versions.add(licence_id=V1, version=1, recorded_at=lc.timestamp(T0), ledger_index=5)
    if amended_at is not None:
        state.versions.add(licence_id=V2, version=2, recorded_at=lc.timestamp(amended_at))
        state.current_licence_id = V2
    for status, at in changes:
        state.status_history.add(licence_id=V1, status=status, changed_at=lc.timestamp(at))
    return state


def _status(
    state: index_pb2.LicenceState, at: datetime, licence: lpb.Licence | None = None
) -> tuple[rp.Check, str]:
    checks = Checks()
    current = lc.check_status(checks, licence or _licence(), state, at)
    return checks.items[0], current


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (lpb.LICENCE_STATUS_SUSPENDED, "LICENCE_SUSPENDED"),
        (lpb.LICENCE_STATUS_WITHDRAWN, "LICENCE_WITHDRAWN"),
        (lpb.LICENCE_STATUS_CANCELLED, "LICENCE_CANCELLED"),
        (lpb.LICENCE_STATUS_EXPIRED, "LICENCE_EXPIRED"),
        (lpb.LICENCE_STATUS_TRANSFERRED_OUT, "LICENCE_TRANSFERRED_OUT"),
        (lpb.LICENCE_STATUS_REVOKED, "LICENCE_REVOKED"),
    ],
)
def test_each_status_fails_with_its_own_reason_but_only_after_it_was_set(
    status: int, code: str
) -> None:
    state = _state((status, T0 + timedelta(days=10)))
    check, _ = _status(state, T0 + timedelta(days=11))
    assert (check.result, check.reason_code) == (rp.CHECK_RESULT_FAILED, code)
    before, _ = _status(state, T0 + timedelta(days=9))
    assert before.result == rp.CHECK_RESULT_PASSED


def test_a_reinstated_licence_is_valid_again() -> None:
    state = _state(
        (lpb.LICENCE_STATUS_SUSPENDED, T0 + timedelta(days=1)),
        (lpb.LICENCE_STATUS_VALID, T0 + timedelta(days=2)),
    )
    assert _status(state, T0 + timedelta(days=1, hours=1))[0].reason_code == "LICENCE_SUSPENDED"
    assert _status(state, T0 + timedelta(days=3))[0].result == rp.CHECK_RESULT_PASSED


def test_a_superseded_version_names_the_current_one_from_the_amendment_on() -> None:
    state = _state(amended_at=T0 + timedelta(days=5))
    check, current = _status(state, T0 + timedelta(days=6))
    assert (check.reason_code, current) == ("LICENCE_SUPERSEDED", V2)
    assert _status(state, T0 + timedelta(days=4))[0].result == rp.CHECK_RESULT_PASSED
    assert _status(state, T0 + timedelta(days=6), _licence(V2))[0].result == rp.CHECK_RESULT_PASSED


def test_before_its_issuance_a_version_is_not_yet_valid() -> None:
    check, _ = _status(_state(), T0 - timedelta(days=1))
    assert (check.result, check.reason_code) == (
        rp.CHECK_RESULT_INDETERMINATE,
        "LICENCE_NOT_YET_VALID",
    )


def test_transferred_out_names_the_successor() -> None:
    state = _state((lpb.LICENCE_STATUS_TRANSFERRED_OUT, T0 + timedelta(days=1)))
    state.successor_licence_id = "1.2.156.3005.2.SPJY.X"
    assert _status(state, T0 + timedelta(days=2))[1] == "1.2.156.3005.2.SPJY.X"


def test_validity_window_is_closed_at_the_start_and_open_at_the_end() -> None:
    licence = _licence(valid_from=T0, valid_until=T0 + timedelta(days=30))
    results = []
    for at in (T0 - timedelta(seconds=1), T0, T0 + timedelta(days=30)):
        checks = Checks()
        lc.check_validity(checks, licence, at)
        results.append((checks.items[0].result, checks.items[0].reason_code))
    assert results == [
        (rp.CHECK_RESULT_INDETERMINATE, "LICENCE_NOT_YET_VALID"),
        (rp.CHECK_RESULT_PASSED, ""),
        (rp.CHECK_RESULT_FAILED, "LICENCE_EXPIRED"),
    ]


def test_holder_is_compared_only_when_expected() -> None:
    results = []
    for expected in ("", "91310000ma1k000010", "91310000MA1K00002X"):
        checks = Checks()
        lc.check_holder(checks, _licence(), expected)
        results.append((checks.items[0].result, checks.items[0].reason_code))
    assert results == [
        (rp.CHECK_RESULT_SKIPPED, ""),
        (rp.CHECK_RESULT_PASSED, ""),
        (rp.CHECK_RESULT_FAILED, "HOLDER_MISMATCH"),
    ]
