"""C2SP signed notes: text signed by one or more keys.

Implements https://c2sp.org/signed-note with Ed25519 (signature type 0x01) as the
only signing algorithm. Parsing follows Go's golang.org/x/mod/sumdb/note, so notes
exchanged with Go logs and witnesses parse identically; where Go is lenient about
encodings that do not change meaning (non-canonical base64), we are strict so that
one note has exactly one byte representation.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.errors import InvalidRequestError, NoteError

MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100  # Go's cap: bounds the work an untrusted note can demand.
KEY_ID_SIZE = 4
ED25519_TYPE = 0x01

_SIG_PREFIX = "— "
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}")


def _b64decode_canonical(text: str) -> bytes:
    """Decode standard padded base64, refusing any alternative spelling of the bytes."""
    raw = base64.b64decode(text, validate=True)  # raises binascii.Error, a ValueError
    # Unused trailing bits would let one signature be written several ways.
    if base64.b64encode(raw).decode("ascii") != text:
        raise ValueError("non-canonical base64")
    return raw


def is_valid_key_name(name: str) -> bool:
    """Key names are non-empty, without Unicode whitespace or "+" (the vkey separator)."""
    return (
        bool(name)
        and "+" not in name
        and not any(ch.isspace() for ch in name)
        # Control characters would make the signature line itself unparseable.
        and _CONTROL.search(name) is None
    )


def ed25519_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The C2SP key id: SHA-256(name || 0x0A || 0x01 || public key)[:4]."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    material = name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + raw
    return hashlib.sha256(material).digest()[:KEY_ID_SIZE]


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes  # without the key id prefix

    def to_line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class SignedNote:
    text: str
    signatures: tuple[NoteSignature, ...]

    def __post_init__(self) -> None:
        # Guarantees that to_bytes() always yields a note parse_note() accepts.
        if not self.text.endswith("\n") or _CONTROL.search(self.text):
            raise InvalidRequestError("note text must end in a newline, without controls")
        if not 1 <= len(self.signatures) <= MAX_SIGNATURES:
            raise InvalidRequestError(f"a note needs 1 to {MAX_SIGNATURES} signatures")
        for sig in self.signatures:
            if (
                not is_valid_key_name(sig.name)
                or len(sig.key_id) != KEY_ID_SIZE
                or not sig.signature
            ):
                raise InvalidRequestError(f"malformed signature by {sig.name!r}")
        if len(self.to_bytes()) > MAX_NOTE_BYTES:
            raise InvalidRequestError("signed note exceeds 1 MiB")

    def to_bytes(self) -> bytes:
        return self._bytes

    @functools.cached_property
    def _bytes(self) -> bytes:
        # Every proof handed out carries the latest checkpoint's note: encode it once.
        lines = "".join(sig.to_line() for sig in self.signatures)
        return (self.text + "\n" + lines).encode("utf-8")


class NoteSigner(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def key_id(self) -> bytes: ...
    def sign(self, message: bytes) -> bytes: ...


class NoteVerifier(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def key_id(self) -> bytes: ...
    def verify(self, message: bytes, signature: bytes) -> bool: ...


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not is_valid_key_name(name):
        raise InvalidRequestError(f"invalid key name: {name!r}")


@dataclass(frozen=True)
class Ed25519NoteVerifier:
    name: str
    public_key: Ed25519PublicKey = field(repr=False, compare=False)
    key_id: bytes = field(init=False)
    # Equality and hashing go through the raw bytes: the key object is unhashable.
    raw_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.public_key, Ed25519PublicKey):
            raise InvalidRequestError("public_key must be an Ed25519PublicKey")
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        object.__setattr__(self, "raw_key", raw)
        object.__setattr__(self, "key_id", ed25519_key_id(self.name, self.public_key))

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def vkey(self) -> str:
        blob = base64.b64encode(bytes([ED25519_TYPE]) + self.raw_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{blob}"

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519NoteVerifier:
        """Parse `<name>+<hex key id>+<base64(0x01 || key)>`; a bad vkey is a bad argument."""
        # maxsplit=2 because the base64 part may itself contain "+".
        parts = vkey.split("+", 2) if isinstance(vkey, str) else []
        if len(parts) != 3 or not _KEY_ID_HEX.fullmatch(parts[1]):
            raise InvalidRequestError("malformed verifier key")
        name, key_id_hex, blob = parts
        try:
            material = _b64decode_canonical(blob)
        except ValueError as exc:
            raise InvalidRequestError("malformed verifier key encoding") from exc
        if len(material) != 33 or material[0] != ED25519_TYPE:
            raise InvalidRequestError("verifier key is not a 32-byte Ed25519 key")
        verifier = cls(name, Ed25519PublicKey.from_public_bytes(material[1:]))
        # The id is redundant with name and key; a mismatch means a corrupted vkey.
        if verifier.key_id.hex() != key_id_hex:
            raise InvalidRequestError("verifier key id does not match its name and key")
        return verifier


@dataclass(frozen=True, eq=False)
class Ed25519NoteSigner:
    name: str
    private_key: Ed25519PrivateKey = field(repr=False)
    key_id: bytes = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise InvalidRequestError("private_key must be an Ed25519PrivateKey")
        object.__setattr__(self, "key_id", self.verifier().key_id)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def verifier(self) -> Ed25519NoteVerifier:
        return Ed25519NoteVerifier(self.name, self.private_key.public_key())

    def vkey(self) -> str:
        return self.verifier().vkey()


def _signature_from(signer: NoteSigner, text: str) -> NoteSignature:
    name, key_id = signer.name, signer.key_id
    _check_name(name)
    if not isinstance(key_id, bytes) or len(key_id) != KEY_ID_SIZE:
        raise InvalidRequestError(f"signer {name!r} has no 4-byte key id")
    signature = signer.sign(text.encode("utf-8"))
    if not isinstance(signature, bytes) or not signature:
        raise InvalidRequestError(f"signer {name!r} returned no signature")
    return NoteSignature(name, key_id, signature)


def sign_note(text: str, *signers: NoteSigner) -> SignedNote:
    """Sign `text`, which must be non-empty newline-terminated lines, none of them blank."""
    if not isinstance(text, str) or not text.endswith("\n") or _CONTROL.search(text):
        raise InvalidRequestError("note text must end in a newline and have no controls")
    # Go splits at the last blank line, but other parsers may take the first one;
    # refusing blank lines means every parser agrees on what was signed.
    if text.startswith("\n") or "\n\n" in text:
        raise InvalidRequestError("note text contains a blank line")
    return _sign(text, (), signers)


def _sign(
    text: str, existing: tuple[NoteSignature, ...], signers: Sequence[NoteSigner]
) -> SignedNote:
    if not signers:
        raise InvalidRequestError("no signers given")
    new = [_signature_from(signer, text) for signer in signers]
    replaced = {(sig.name, sig.key_id) for sig in new}
    # As in Go, a fresh signature by a key replaces that key's old one.
    kept = [sig for sig in existing if (sig.name, sig.key_id) not in replaced]
    return SignedNote(text, (*kept, *new))


def add_signatures(note: SignedNote, *signers: NoteSigner) -> SignedNote:
    """Cosign: add signatures over the same text, replacing any older ones by the same keys."""
    return _sign(note.text, note.signatures, signers)


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(_SIG_PREFIX):
        raise NoteError("malformed signature line")
    name, sep, blob = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep or not is_valid_key_name(name):
        raise NoteError("malformed signature line")
    try:
        raw = _b64decode_canonical(blob)
    except ValueError as exc:
        raise NoteError("malformed signature encoding") from exc
    if len(raw) <= KEY_ID_SIZE:
        raise NoteError("signature too short")
    return NoteSignature(name, raw[:KEY_ID_SIZE], raw[KEY_ID_SIZE:])


def parse_note(data: bytes) -> SignedNote:
    """Parse a signed note's syntax; nothing is verified."""
    if len(data) > MAX_NOTE_BYTES:
        raise NoteError("note exceeds 1 MiB")
    try:
        message = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoteError("note is not valid UTF-8") from exc
    if _CONTROL.search(message):
        raise NoteError("note contains a control character")
    split = message.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = message[: split + 1], message[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("note has no signature lines")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("note has too many signatures")
    signatures = tuple(_parse_signature_line(line) for line in lines)
    return SignedNote(text, signatures)


def open_note(
    data: bytes, verifiers: Sequence[NoteVerifier]
) -> tuple[SignedNote, tuple[NoteSignature, ...]]:
    """Parse and verify a note; return it with the signatures from known keys.

    Every signature by a known key must verify: per C2SP, one bad signature from a
    trusted key rejects the whole note. Signatures by unknown keys are ignored.
    """
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for verifier in verifiers:
        slot = (verifier.name, verifier.key_id)
        if known.setdefault(slot, verifier) != verifier:
            raise InvalidRequestError(f"two different verifiers share name and id {slot!r}")
    note = parse_note(data)
    message = note.text.encode("utf-8")
    verified: dict[tuple[str, bytes], NoteSignature] = {}
    for sig in note.signatures:
        slot = (sig.name, sig.key_id)
        match = known.get(slot)
        if match is None:
            continue
        if not match.verify(message, sig.signature):
            raise NoteError(f"invalid signature by trusted key {sig.name!r}")
        verified.setdefault(slot, sig)
    if not verified:
        raise NoteError("no signature from a trusted key")
    return note, tuple(verified.values())
