"""Figures, their JSON lines on stdout, and the stderr console for everything else."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console

# stdout carries only JSON lines; all human-readable output goes here.
console = Console(stderr=True)

Extra = dict[str, str | int | float | bool]
# A figure's, never its primitive's.
_GOAL_KEYS = frozenset({"goal", "goal_met", "goal_as_ratio", "goal_as_ratio_met"})


def tidy(x: float) -> float | int:
    """Round to a precision that the noise of this machine can justify."""
    if not math.isfinite(x):
        return x
    magnitude = abs(x)
    if magnitude >= 1000:
        return round(x)
    if magnitude >= 10:
        return round(x, 1)
    return round(x, 3)


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure and the raw primitive it is judged against."""

    name: str
    value: float
    unit: str
    baseline_name: str
    baseline_value: float
    baseline_unit: str
    higher_is_better: bool
    extra: Extra = field(default_factory=dict)

    @classmethod
    def primitive(
        cls, name: str, value: float, unit: str, *, higher_is_better: bool, extra: Extra
    ) -> Figure:
        """A raw primitive reported on its own line: its own baseline, ratio 1.

        It shares the context of the figure measured against it, but not that
        figure's goal: a primitive has none.
        """
        own = {key: value for key, value in extra.items() if key not in _GOAL_KEYS}
        return cls(name, value, unit, name, value, unit, higher_is_better, own)

    @property
    def ratio(self) -> float:
        return self.value / self.baseline_value if self.baseline_value else math.nan

    def to_json(self) -> str:
        record: dict[str, object] = {
            "name": self.name,
            "value": tidy(self.value),
            "unit": self.unit,
            "baseline_name": self.baseline_name,
            "baseline_value": tidy(self.baseline_value),
            "baseline_unit": self.baseline_unit,
            "ratio": round(self.ratio, 4),
            "ratio_meaning": "value/baseline",
            "better": "higher" if self.higher_is_better else "lower",
        }
        for key, value in self.extra.items():
            record[key] = tidy(value) if isinstance(value, float) else value
        return json.dumps(record, ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Selection:
    """Which figures to run and print (``--only`` prefixes; none means all)."""

    prefixes: tuple[str, ...] = ()

    def wants(self, *names: str) -> bool:
        if not self.prefixes:
            return True
        return any(name.startswith(p) for name in names for p in self.prefixes)

    def emit(self, figures: Sequence[Figure]) -> None:
        for figure in figures:
            if self.wants(figure.name):
                sys.stdout.write(figure.to_json() + "\n")
                sys.stdout.flush()
                console.print(
                    f"[bold green]{figure.name}[/] = {tidy(figure.value)} {figure.unit}"
                    f"  (baseline {figure.baseline_name} = {tidy(figure.baseline_value)}"
                    f" {figure.baseline_unit}, ratio {figure.ratio:.3f})"
                )
