"""Proof bundles: an entry's offline proof of being in the ledger (C2SP tlog-proof).

Text form (https://c2sp.org/tlog-proof)::

    c2sp.org/tlog-proof@v1
    extra <base64 of the predecessor leaf hash>
    index <leaf index>
    <base64 inclusion path hash, one per line>

    <signed checkpoint>

The ``extra`` line carries the chain link: the leaf is ``prev_hash || entry``, so
whoever holds the entry and the bundle can recompute the leaf hash, walk the path to
the checkpoint's root and check the checkpoint's signature, with no network.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ledger.checkpoint import SignedCheckpoint, open_checkpoint
from ledger.errors import ProofError
from ledger.hashing import HASH_SIZE, leaf_hash
from ledger.note import NoteVerifier
from ledger.proof import InclusionProof

HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True, slots=True)
class ProofBundle:
    prev_hash: bytes
    proof: InclusionProof
    checkpoint: SignedCheckpoint

    def to_text(self) -> str:
        lines = [
            HEADER,
            f"extra {base64.b64encode(self.prev_hash).decode()}",
            f"index {self.proof.leaf_index}",
            *(base64.b64encode(h).decode() for h in self.proof.path),
            "",
        ]
        return "\n".join(lines) + "\n" + self.checkpoint.to_bytes().decode()

    @classmethod
    def from_text(
        cls, text: str, verifier: NoteVerifier, *, origin: str | None = None
    ) -> ProofBundle:
        """Parse a bundle and verify its checkpoint's signature (not yet the entry)."""
        head, sep, note = text.partition("\n\n")
        if not sep:
            raise ProofError("proof bundle has no checkpoint after a blank line")
        lines = head.split("\n")
        if len(lines) < 3 or lines[0] != HEADER:
            raise ProofError(f"proof bundle does not start with {HEADER!r}")
        prev_hash = _b64_hash(_field(lines[1], "extra"))
        index = _decimal(_field(lines[2], "index"))
        path = tuple(_b64_hash(line) for line in lines[3:])
        try:
            note_bytes = note.encode()
        except UnicodeEncodeError as exc:
            raise ProofError("proof bundle's checkpoint is not valid text") from exc
        signed = open_checkpoint(note_bytes, verifier, origin=origin)
        proof = InclusionProof(index, signed.checkpoint.size, path)
        return cls(prev_hash, proof, signed)

    def verify(self, entry: bytes) -> None:
        """Raise ProofError unless `entry` is the bundled leaf under the checkpoint."""
        leaf = leaf_hash(self.prev_hash + entry)
        cp = self.checkpoint.checkpoint
        if self.proof.tree_size != cp.size:
            raise ProofError("proof is for a different tree size than its checkpoint")
        self.proof.verify(leaf, cp.root_hash)


def _field(line: str, name: str) -> str:
    key, sep, value = line.partition(" ")
    if key != name or not sep:
        raise ProofError(f"proof bundle line {line!r} is not '{name} <value>'")
    return value


def _decimal(text: str) -> int:
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ProofError(f"{text!r} is not a decimal index")
    return int(text)


def _b64_hash(text: str) -> bytes:
    try:
        value = base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or non-ASCII text
        raise ProofError(f"{text!r} is not base64") from exc
    if len(value) != HASH_SIZE:
        raise ProofError(f"{text!r} is not a {HASH_SIZE}-byte hash")
    # b64decode ignores the unused low bits of the last character: refuse every other
    # spelling of the same hash, so that one proof has one text.
    if base64.b64encode(value).decode("ascii") != text:
        raise ProofError(f"{text!r} is not canonical base64")
    return value
