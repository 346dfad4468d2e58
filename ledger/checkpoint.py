"""C2SP tlog checkpoints: a log's signed commitment to its size and root hash.

Implements https://c2sp.org/tlog-checkpoint. A checkpoint body is the text of a
signed note (https://c2sp.org/signed-note, see `ledger.note`):

    <origin>\\n
    <tree size, ASCII decimal>\\n
    <root hash, standard base64>\\n
    [<extension line>\\n ...]

Size and root hash are signed together in one text, so a signature binds exactly
one (size, root) pair.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ledger.errors import CheckpointError, InvalidRequestError, NoteError
from ledger.note import NoteSigner, NoteVerifier, SignedNote, open_note, sign_note

HASH_SIZE = 32
# Go's tlog parses the size as a non-negative int64; staying within it keeps
# our checkpoints readable by Go verifiers.
MAX_TREE_SIZE = (1 << 63) - 1

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_CONTROL = re.compile(r"[\x00-\x1f]")


def _line_problem(what: str, line: str) -> str | None:
    if not line or line.isspace():
        return f"{what} is empty"
    if _CONTROL.search(line):
        return f"{what} contains a control character or newline"
    return None


def _field_problem(
    origin: str, size: int, root_hash: bytes, extensions: tuple[str, ...]
) -> str | None:
    """Describe why the fields cannot form a checkpoint, or return None."""
    if not isinstance(origin, str) or (problem := _line_problem("origin", origin)):
        return problem or "origin must be a string"
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= MAX_TREE_SIZE:
        return f"tree size must be an integer in [0, 2**63 - 1], not {size!r}"
    if not isinstance(root_hash, bytes) or len(root_hash) != HASH_SIZE:
        return f"root hash must be {HASH_SIZE} bytes"
    if not isinstance(extensions, tuple):
        return "extensions must be a tuple of strings"
    for extension in extensions:
        if not isinstance(extension, str) or not extension:
            return "extension lines must be non-empty strings"
        # Unlike the origin, an extension may be whitespace; only emptiness is banned.
        if _CONTROL.search(extension):
            return "extension line contains a control character or newline"
    return None


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problem = _field_problem(self.origin, self.size, self.root_hash, self.extensions)
        if problem:
            raise InvalidRequestError(problem)

    def to_text(self) -> str:
        root = base64.b64encode(self.root_hash).decode("ascii")
        lines = (self.origin, str(self.size), root, *self.extensions)
        return "".join(line + "\n" for line in lines)

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint needs origin, size and root hash lines")
        origin, size_text, root_text, *extensions = lines
        # Refuse "+1", " 1", "01", "1_0" and non-ASCII digits, all of which int() takes.
        if not _SIZE.fullmatch(size_text):
            raise CheckpointError(f"malformed tree size: {size_text!r}")
        try:
            root_hash = base64.b64decode(root_text, validate=True)
        except ValueError as exc:
            raise CheckpointError("malformed root hash encoding") from exc
        # Re-encoding rejects spellings that decode to the same bytes.
        if base64.b64encode(root_hash).decode("ascii") != root_text:
            raise CheckpointError("non-canonical root hash encoding")
        size = int(size_text)
        problem = _field_problem(origin, size, root_hash, tuple(extensions))
        if problem:
            raise CheckpointError(problem)
        return cls(origin, size, root_hash, tuple(extensions))


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    note: SignedNote

    def __post_init__(self) -> None:
        if self.note.text != self.checkpoint.to_text():
            raise InvalidRequestError("note text is not the checkpoint's text")

    def to_bytes(self) -> bytes:
        return self.note.to_bytes()


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> SignedCheckpoint:
    return SignedCheckpoint(checkpoint, sign_note(checkpoint.to_text(), signer))


def open_checkpoint(
    data: bytes,
    verifier: NoteVerifier,
    *,
    origin: str | None = None,
    extra_verifiers: Sequence[NoteVerifier] = (),
) -> SignedCheckpoint:
    """Verify a signed checkpoint; a valid signature by the log's `verifier` is mandatory.

    Signatures by `extra_verifiers` (witnesses) are checked if present but do not
    replace the log's own. The log key's name conventionally equals the origin; that
    is not enforced, because `origin` pins what the caller expects.
    """
    note, verified = open_note(data, (verifier, *extra_verifiers))
    log_key = (verifier.name, verifier.key_id)
    if not any((sig.name, sig.key_id) == log_key for sig in verified):
        raise NoteError(f"checkpoint is not signed by the log key {verifier.name!r}")
    checkpoint = Checkpoint.from_text(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return SignedCheckpoint(checkpoint, note)


def check_matches(checkpoint: Checkpoint, size: int, root_hash: bytes) -> None:
    """Raise CheckpointError unless the checkpoint commits to exactly this tree."""
    if checkpoint.size != size:
        raise CheckpointError(f"checkpoint size {checkpoint.size} is not {size}")
    if not hmac.compare_digest(checkpoint.root_hash, root_hash):
        raise CheckpointError("checkpoint root hash does not match")
