"""SIGKILL in the middle of concurrent appends loses nothing that was acknowledged."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

from ledger import audit_storage
from service.datadir import DataDir, default_origin

WRITER = Path(__file__).with_name("crash_writer.py")


def _run_and_kill(root: Path, acks_before_kill: int) -> dict[int, bytes]:
    child = subprocess.Popen(
        [sys.executable, str(WRITER), str(root), "32"],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])},
    )
    assert child.stdout is not None
    acked: dict[int, bytes] = {}
    try:
        for raw in child.stdout:
            index, _, entry = raw.decode().rstrip("\n").partition(" ")
            acked[int(index)] = entry.encode()
            if len(acked) >= acks_before_kill:
                break
    finally:
        child.send_signal(signal.SIGKILL)  # no chance to flush or close anything
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= acks_before_kill, "the writer stopped before it was killed"
    return acked


def test_acknowledged_entries_survive_sigkill(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.create(default_origin()).close()
    rng = random.Random(6962)
    acked: dict[int, bytes] = {}
    for _ in range(3):  # kill at a different moment each round, reopening in between
        acked.update(_run_and_kill(tmp_path, rng.randrange(500, 3000)))

        reader = data.open_reader()
        try:
            assert reader.size >= max(acked) + 1
            for start in range(0, max(acked) + 1, 1000):
                for leaf in reader.leaves(start, min(start + 1000, max(acked) + 1)):
                    if leaf.index in acked:
                        assert leaf.entry == acked[leaf.index], f"entry {leaf.index} changed"
        finally:
            reader.close()
        report = audit_storage(data.ledger_path)
        assert report.ok, report.problem

    # The killed writer left no lock behind: a new writer opens and continues the chain.
    ledger = data.open()

    async def append_more() -> int:
        try:
            return await ledger.append(b"after the crashes")
        finally:
            await ledger.aclose()

    index = asyncio.run(append_more())
    assert index >= max(acked) + 1
    assert audit_storage(data.ledger_path).ok


def test_killed_right_after_first_ack_with_appends_in_flight(tmp_path: Path) -> None:
    data = DataDir(tmp_path)
    data.create(default_origin()).close()
    acked = _run_and_kill(tmp_path, 1)
    reader = data.open_reader()
    try:
        # Whatever was in flight is either wholly there or wholly absent.
        assert reader.size >= 1
        ((index, entry),) = acked.items()
        assert reader.leaf(index).entry == entry
    finally:
        reader.close()
    assert audit_storage(data.ledger_path).ok
