"""Shared fixtures: ledgers in temporary data directories, built through the real API."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from service.datadir import DataDir, default_origin
from signer.keystore import PASSPHRASE_ENV

TEST_PASSPHRASE = "test passphrase, not a secret"  # noqa: S105


@pytest.fixture(autouse=True)
def _key_passphrase(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests must not depend on the developer's environment.
    monkeypatch.setenv(PASSPHRASE_ENV, TEST_PASSPHRASE)


def entry(i: int) -> bytes:
    return f"entry number {i} ".encode() * 3


def build_data_dir(root: Path, count: int) -> DataDir:
    """A data directory whose ledger holds `count` entries, appended in several commits."""
    data = DataDir(root)
    ledger = data.create(default_origin())

    async def fill() -> None:
        try:
            for start in range(0, count, 97):  # uneven groups exercise many tree shapes
                await ledger.append_many([entry(i) for i in range(start, min(count, start + 97))])
        finally:
            await ledger.aclose()

    asyncio.run(fill())
    return data
