"""The RFC 6962 vectors in ../shared/vectors/rfc6962, loaded from there as data."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import ProofError
from ledger.proof import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "rfc6962"


def _load(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [pytest.param(json.loads(f.read_text()), id=str(f.relative_to(VECTORS))) for f in files]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def test_vectors_are_present() -> None:
    # A missing directory must fail loudly instead of parametrizing zero cases.
    assert len(_load("inclusion")) > 50
    assert len(_load("consistency")) > 50


@pytest.mark.parametrize("vector", _load("inclusion"))
def test_inclusion_vector(vector: dict[str, Any]) -> None:
    def run() -> None:
        verify_inclusion(
            vector["leafIdx"],
            vector["treeSize"],
            _b64(vector["leafHash"]),
            [_b64(p) for p in vector["proof"] or []],
            _b64(vector["root"]),
        )

    if vector["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()


@pytest.mark.parametrize("vector", _load("consistency"))
def test_consistency_vector(vector: dict[str, Any]) -> None:
    def run() -> None:
        verify_consistency(
            vector["size1"],
            vector["size2"],
            [_b64(p) for p in vector["proof"] or []],
            _b64(vector["root1"]),
            _b64(vector["root2"]),
        )

    if vector["wantErr"]:
        with pytest.raises(ProofError):
            run()
    else:
        run()
