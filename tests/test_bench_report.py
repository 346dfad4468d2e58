"""How `make bench` reports a figure against its goal (the measuring itself is `bench`)."""

from __future__ import annotations

import json

import pytest

from bench.report import Figure
from bench.suite import ISSUE_GOAL, Goal


def test_a_goal_is_judged_absolutely_and_as_a_ratio_to_the_baseline() -> None:
    goal = Goal(1_500.0, 4_200.0, "grpc.aio echo")
    slow_machine = goal.fields(1_400.0, 3_500.0)  # 0.40 of the echo, but under 1,500/s
    assert slow_machine["goal_met"] is False
    assert slow_machine["goal_as_ratio_met"] is True
    assert str(slow_machine["goal_as_ratio"]).startswith(">= 0.357 (1,500 against")
    fast_machine = goal.fields(1_600.0, 5_000.0)  # over 1,500/s, but 0.32 of the echo
    assert fast_machine["goal_met"] is True
    assert fast_machine["goal_as_ratio_met"] is False


@pytest.mark.parametrize("value", [1_500.0, 1_499.0])
def test_the_goal_line_is_inclusive(value: float) -> None:
    fields = ISSUE_GOAL.fields(value, value / (1_500.0 / 4_200.0))
    assert fields["goal_met"] is (value >= 1_500.0)
    assert fields["goal_as_ratio_met"] is True


def test_a_primitive_shares_the_figures_context_but_not_its_goal() -> None:
    extra = {"in_flight": 64, **ISSUE_GOAL.fields(1_600.0, 4_000.0)}
    figure = json.loads(
        Figure("licence.issue_per_s", 1_600.0, "/s", "echo", 4_000.0, "/s", True, extra).to_json()
    )
    primitive = json.loads(
        Figure.primitive("echo", 4_000.0, "/s", higher_is_better=True, extra=extra).to_json()
    )
    assert figure["goal_met"] is True
    assert primitive["in_flight"] == 64
    assert "goal" not in primitive
    assert "goal_met" not in primitive
    assert "goal_as_ratio_met" not in primitive
