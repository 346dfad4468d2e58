"""`make run` for now: a guided tour of a ledger in a data directory.

Creates the ledger on first run, appends a few entries in one group commit, then
shows what a client does with them: a signed checkpoint, an offline proof bundle
verified with nothing but the verifier key, a consistency proof from the previous
checkpoint, and a full audit.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from rich.console import Console

from ledger import ProofBundle, audit_storage
from ledger.note import Ed25519NoteVerifier
from service.datadir import DataDir, default_origin


def _sample_entries(start: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return [
        json.dumps(
            {"kind": "demo", "sequence": start + i, "recorded_at": now}, sort_keys=True
        ).encode()
        for i in range(5)
    ]


def run_demo(data: DataDir, console: Console) -> int:
    if not data.exists():
        data.create(default_origin()).close()
        console.print(f"[bold]created[/] a ledger in {data.ledger_path}")
    ledger = data.open()
    old_size, old_root = ledger.size, ledger.root_hash
    entries = _sample_entries(old_size)

    async def append() -> list[int]:
        try:
            return list(await asyncio.gather(*(ledger.append(e) for e in entries)))
        finally:
            await ledger.aclose()

    indexes = asyncio.run(append())
    console.print(f"appended entries {indexes[0]}..{indexes[-1]} (one synced group commit)")

    reader = data.open_reader()
    try:
        console.print("\n[bold]latest signed checkpoint[/] (C2SP tlog-checkpoint):")
        console.out(reader.checkpoint.to_bytes().decode())
        bundle_text = reader.proof_bundle(indexes[-1]).to_text()
        console.print(f"[bold]proof bundle for entry {indexes[-1]}[/] (C2SP tlog-proof):")
        console.out(bundle_text)
        verifier = Ed25519NoteVerifier.from_vkey(data.vkey_path.read_text().strip())
        ProofBundle.from_text(bundle_text, verifier).verify(entries[-1])
        console.print("[green]✓[/] bundle verified offline with only the verifier key")
        if old_size:
            proof = reader.consistency_proof(old_size)
            proof.verify(old_root, reader.root_hash)
            console.print(
                f"[green]✓[/] size {old_size} → {reader.size} is append-only "
                f"(consistency proof of {len(proof.path)} hashes)"
            )
    finally:
        reader.close()

    report = audit_storage(data.ledger_path)
    if not report.ok:
        console.print(f"[red]audit failed[/] at index {report.first_bad_index}: {report.problem}")
        return 1
    console.print(f"[green]✓[/] audit passed over {report.size} entries")
    console.out(f"\nnext: licence-ledger ledger audit {data.root}")
    console.out(f"      licence-ledger ledger proof {data.root} --index 0")
    return 0
