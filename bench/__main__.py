"""``python -m bench``: run the figures, one JSON line each on stdout."""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.report import Selection, console
from bench.suite import Options, figure_names, run_all


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Ledger benchmarks; JSON lines on stdout, progress on stderr.",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME_PREFIX",
        help="run only figures whose name starts with this (repeatable)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=5.0,
        metavar="N",
        help="duration of each throughput measurement (default 5)",
    )
    parser.add_argument(
        "--ten-million",
        action="store_true",
        help="also time proofs at 10,000,000 entries (slow, several GB)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="scratch space (a run directory is made in it and removed after)",
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="leave the scratch databases in place"
    )
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    names = figure_names(args.ten_million)
    if not Selection(tuple(args.only)).wants(*names):
        parser.error("--only matches no figure; figures are: " + ", ".join(names))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    if args.data is not None:
        args.data.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="ledger-bench-", dir=args.data))
    console.print(f"scratch space: {scratch}")
    try:
        opts = Options(seconds=args.seconds, ten_million=args.ten_million, scratch=scratch)
        run_all(opts, Selection(tuple(args.only)))
    finally:
        if args.keep_data:
            console.print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    console.print(f"total {time.perf_counter() - started:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
