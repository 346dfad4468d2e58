"""Tests of C2SP signed notes (ledger.note) and tlog checkpoints (ledger.checkpoint)."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    check_matches,
    open_checkpoint,
    sign_checkpoint,
)
from ledger.errors import (
    CheckpointError,
    InvalidRequestError,
    NoteError,
    VerificationError,
)
from ledger.note import (
    Ed25519NoteSigner,
    Ed25519NoteVerifier,
    NoteSignature,
    SignedNote,
    add_signatures,
    ed25519_key_id,
    open_note,
    parse_note,
    sign_note,
)

ORIGIN = "example.com/log"
ROOT = hashlib.sha256(b"licence-ledger").digest()


def _private(seed: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _signer(name: str = ORIGIN, seed: int = 1) -> Ed25519NoteSigner:
    return Ed25519NoteSigner(name, _private(seed))


LOG = _signer()
WITNESS = _signer("witness.example", 2)
CHECKPOINT = Checkpoint(ORIGIN, 42, ROOT, ("extension line",))


def _signed_bytes(text: str, signer: Ed25519NoteSigner = LOG) -> bytes:
    """A note over arbitrary text, bypassing sign_note's checks, to test parsers."""
    sig = NoteSignature(signer.name, signer.key_id, signer.sign(text.encode()))
    return text.encode() + b"\n" + sig.to_line().encode()


# --- interoperability vectors ---------------------------------------------------

# golang.org/x/mod/sumdb/note's documented example: an implementation made elsewhere.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1F"
    "FYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
).encode()


def test_go_reference_note_signs_and_opens_identically() -> None:
    seed = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert seed[0] == 0x01
    signer = Ed25519NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed[1:]))
    assert signer.vkey() == GO_VKEY
    assert sign_note(GO_TEXT, signer).to_bytes() == GO_NOTE
    note, verified = open_note(GO_NOTE, [Ed25519NoteVerifier.from_vkey(GO_VKEY)])
    assert note.text == GO_TEXT
    assert [sig.name for sig in verified] == ["PeterNeumann"]


# A fixed checkpoint from seed 0x01 * 32; Ed25519 is deterministic, so any change to
# the body format, key id or signature line changes these bytes.
VECTOR_VKEY = "example.com/log+9be5d3c6+AYqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c"
VECTOR_TEXT = "example.com/log\n42\nMc+PKhcbIyWN936bZWxgDPdx6Eywe78Olgibni7768k=\nextension line\n"
VECTOR_BLOB = (
    "m+XTxmnOOqTZObx2bsITMTKGqsDp6L2UeITD4Ulh6NTVWjt4RUaSB9Lc8tDiqX/K7oZe2xd6s0FD8LIR7rvIb9UOEQU="
)
VECTOR_NOTE = f"{VECTOR_TEXT}\n— example.com/log {VECTOR_BLOB}\n".encode()


def test_fixed_checkpoint_vector() -> None:
    blob = base64.b64decode(VECTOR_BLOB)
    assert blob[:4] == bytes.fromhex("9be5d3c6")
    # The signature is plain Ed25519 over the text, newline included.
    assert blob[4:] == _private(1).sign(VECTOR_TEXT.encode())
    assert CHECKPOINT.to_text() == VECTOR_TEXT
    assert LOG.vkey() == VECTOR_VKEY
    assert sign_checkpoint(CHECKPOINT, LOG).to_bytes() == VECTOR_NOTE
    opened = open_checkpoint(VECTOR_NOTE, Ed25519NoteVerifier.from_vkey(VECTOR_VKEY))
    assert opened.checkpoint == CHECKPOINT


# --- keys -----------------------------------------------------------------------


def test_key_id_is_the_c2sp_formula() -> None:
    raw = _private(1).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    expected = hashlib.sha256(ORIGIN.encode() + b"\x0a\x01" + raw).digest()[:4]
    assert ed25519_key_id(ORIGIN, _private(1).public_key()) == expected
    assert LOG.key_id == expected
    assert LOG.verifier().key_id == expected


def test_vkey_round_trip() -> None:
    verifier = Ed25519NoteVerifier.from_vkey(LOG.vkey())
    assert verifier == LOG.verifier()
    assert verifier.vkey() == LOG.vkey()
    assert verifier.name == ORIGIN
    assert verifier.key_id == LOG.key_id


def _vkey_with(name: str = ORIGIN, key_id: str | None = None, material: bytes | None = None) -> str:
    raw = _private(1).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    blob = base64.b64encode(b"\x01" + raw if material is None else material).decode()
    return f"{name}+{LOG.key_id.hex() if key_id is None else key_id}+{blob}"


@pytest.mark.parametrize(
    "vkey",
    [
        pytest.param(_vkey_with(key_id="00000000"), id="key-id-mismatch"),
        pytest.param(_vkey_with(name="other.example"), id="name-not-in-key-id"),
        pytest.param(_vkey_with(key_id=LOG.key_id.hex().upper()), id="uppercase-hex"),
        pytest.param(_vkey_with(key_id=LOG.key_id.hex()[:7]), id="short-hex"),
        pytest.param(_vkey_with(material=b"\x02" + bytes(32)), id="wrong-type"),
        pytest.param(_vkey_with(material=b"\x01" + bytes(31)), id="short-key"),
        pytest.param(_vkey_with(material=b"\x01" + bytes(33)), id="long-key"),
        pytest.param(_vkey_with(name="a b"), id="space-in-name"),
        pytest.param(_vkey_with(name=""), id="empty-name"),
        pytest.param(_vkey_with()[:-1], id="truncated-base64"),
        pytest.param(_vkey_with()[:-1] + "d", id="non-canonical-base64"),
        pytest.param(ORIGIN, id="no-separators"),
        pytest.param("", id="empty"),
    ],
)
def test_vkey_rejects(vkey: str) -> None:
    with pytest.raises(InvalidRequestError):
        Ed25519NoteVerifier.from_vkey(vkey)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0x", "ctl\x01"])
def test_invalid_key_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidRequestError):
        Ed25519NoteSigner(name, _private(1))
    with pytest.raises(InvalidRequestError):
        Ed25519NoteVerifier(name, _private(1).public_key())


# --- signing and opening --------------------------------------------------------


def test_round_trip() -> None:
    signed = sign_checkpoint(CHECKPOINT, LOG)
    opened = open_checkpoint(signed.to_bytes(), LOG.verifier(), origin=ORIGIN)
    assert opened == signed
    assert opened.to_bytes() == signed.to_bytes()
    assert parse_note(signed.to_bytes()) == signed.note


def test_wrong_key_rejects() -> None:
    data = sign_checkpoint(CHECKPOINT, LOG).to_bytes()
    impostor = _signer(ORIGIN, 3).verifier()
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_checkpoint(data, impostor)


def test_unknown_extra_signature_is_ignored() -> None:
    note = add_signatures(sign_checkpoint(CHECKPOINT, LOG).note, WITNESS)
    _, verified = open_note(note.to_bytes(), [LOG.verifier()])
    assert [sig.name for sig in verified] == [ORIGIN]
    assert open_checkpoint(note.to_bytes(), LOG.verifier()).note == note


def test_cosignature_is_verified_when_known() -> None:
    note = add_signatures(sign_checkpoint(CHECKPOINT, LOG).note, WITNESS)
    _, verified = open_note(note.to_bytes(), [LOG.verifier(), WITNESS.verifier()])
    assert {sig.name for sig in verified} == {ORIGIN, WITNESS.name}
    # Re-signing by a key already present replaces, not duplicates, its signature.
    assert add_signatures(note, WITNESS) == note


def _with_forged(note: SignedNote, signer: Ed25519NoteSigner) -> bytes:
    forged = NoteSignature(signer.name, signer.key_id, bytes(64))
    return SignedNote(note.text, (*note.signatures, forged)).to_bytes()


def test_bad_signature_by_known_key_rejects_whole_note() -> None:
    good = sign_checkpoint(CHECKPOINT, LOG).note
    data = _with_forged(good, WITNESS)
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(data, LOG.verifier(), extra_verifiers=[WITNESS.verifier()])
    # Unknown to this caller, the same forged line is merely ignored.
    assert open_checkpoint(data, LOG.verifier()).checkpoint == CHECKPOINT


def test_log_signature_is_mandatory() -> None:
    by_witness = sign_note(CHECKPOINT.to_text(), WITNESS).to_bytes()
    with pytest.raises(NoteError, match="log key"):
        open_checkpoint(by_witness, LOG.verifier(), extra_verifiers=[WITNESS.verifier()])
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(by_witness, [LOG.verifier()])


def test_origin_mismatch_rejects() -> None:
    data = sign_checkpoint(CHECKPOINT, LOG).to_bytes()
    with pytest.raises(CheckpointError):
        open_checkpoint(data, LOG.verifier(), origin="example.com/other")


def test_ambiguous_verifiers_are_refused() -> None:
    data = sign_checkpoint(CHECKPOINT, LOG).to_bytes()
    lookalike = _signer(seed=1).verifier()
    assert open_note(data, [LOG.verifier(), lookalike])[1]  # equal keys are fine

    class Clash:
        name, key_id = LOG.name, LOG.key_id

        def verify(self, message: bytes, signature: bytes) -> bool:
            return True

    with pytest.raises(InvalidRequestError):
        open_note(data, [LOG.verifier(), Clash()])


def test_every_bit_flip_is_rejected() -> None:
    data = sign_checkpoint(CHECKPOINT, LOG).to_bytes()
    verifier = LOG.verifier()
    for index in range(len(data)):
        for bit in range(8):
            flipped = bytearray(data)
            flipped[index] ^= 1 << bit
            try:
                open_checkpoint(bytes(flipped), verifier)
            except VerificationError:
                continue
            pytest.fail(f"flip of bit {bit} of byte {index} still verifies")


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param(Checkpoint(ORIGIN, 43, ROOT, CHECKPOINT.extensions), id="size"),
        pytest.param(Checkpoint(ORIGIN, 42, bytes(32), CHECKPOINT.extensions), id="root"),
    ],
)
def test_signature_binds_size_and_root_together(changed: Checkpoint) -> None:
    original = sign_checkpoint(CHECKPOINT, LOG).note
    replayed = SignedNote(changed.to_text(), original.signatures).to_bytes()
    with pytest.raises(NoteError):
        open_checkpoint(replayed, LOG.verifier())


def test_duplicate_signature_lines_verify_once() -> None:
    note = sign_checkpoint(CHECKPOINT, LOG).note
    doubled = SignedNote(note.text, note.signatures * 2).to_bytes()
    assert len(open_note(doubled, [LOG.verifier()])[1]) == 1


# --- malformed notes ------------------------------------------------------------

_GOOD = sign_checkpoint(CHECKPOINT, LOG).to_bytes()
_TEXT, _, _LINE = _GOOD.decode().rpartition("\n\n")
_LINE = _LINE[:-1]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_GOOD.replace(b"\n\n", b"\n"), id="missing-blank-line"),
        pytest.param(_TEXT.encode() + b"\n\n", id="no-signature-lines"),
        pytest.param(_GOOD[:-1], id="no-final-newline"),
        pytest.param(_GOOD.replace("—".encode(), b"--"), id="ascii-dash"),
        pytest.param(_GOOD.replace(b"=\n", b"\n"), id="unpadded-base64"),
        pytest.param(_GOOD.replace(b"=\n", b"E=\n"), id="bad-base64"),
        pytest.param(_GOOD.replace(b"m+XT", b"m+X!"), id="base64-alphabet"),
        pytest.param(_GOOD.replace(b"QU=\n", b"QV=\n"), id="non-canonical-base64"),
        pytest.param(_TEXT.encode() + b"\n\n\xe2\x80\x94 log AAAAAA==\n", id="key-id-only"),
        pytest.param(_GOOD.replace(b"log m+", b"log  m+"), id="double-space"),
        pytest.param(_GOOD.replace(b"log m+", b"log"), id="no-signature-field"),
        pytest.param(_GOOD.replace(b"42", b"4\r"), id="carriage-return"),
        pytest.param(_GOOD.replace(b"42", b"4\x00"), id="nul"),
        pytest.param(_GOOD.replace(b"line", b"lin\xff"), id="invalid-utf8"),
        pytest.param(_GOOD.replace(b"\xe2\x80\x94", b"\xe2\x80"), id="truncated-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(_GOOD + b"\n", id="trailing-blank-line"),
        pytest.param(_TEXT.encode() + b"\n\n" + (_LINE + "\n").encode() * 101, id="101-signatures"),
        pytest.param(_GOOD + b"x" * (1 << 20), id="over-1MiB"),
    ],
)
def test_malformed_notes_raise_note_error(data: bytes) -> None:
    with pytest.raises(NoteError):
        parse_note(data)
    with pytest.raises(NoteError):
        open_checkpoint(data, LOG.verifier())


def test_concatenated_notes_parse_as_one_text_and_fail_to_verify() -> None:
    # As in Go, the last blank line splits text from signatures, so the first note's
    # signature lines become text that the second signature does not cover.
    assert parse_note(_GOOD + _GOOD).text == _GOOD.decode() + _TEXT + "\n"
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(_GOOD + _GOOD, LOG.verifier())


def test_one_hundred_signatures_are_allowed() -> None:
    data = _TEXT.encode() + b"\n\n" + (_LINE + "\n").encode() * 100
    assert len(parse_note(data).signatures) == 100
    assert open_checkpoint(data, LOG.verifier()).checkpoint == CHECKPOINT


_B64_ROOT = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"{ORIGIN}\n042\n{_B64_ROOT}\n", id="leading-zero-size"),
        pytest.param(f"{ORIGIN}\n00\n{_B64_ROOT}\n", id="double-zero-size"),
        pytest.param(f"{ORIGIN}\n-1\n{_B64_ROOT}\n", id="negative-size"),
        pytest.param(f"{ORIGIN}\n+1\n{_B64_ROOT}\n", id="signed-size"),
        pytest.param(f"{ORIGIN}\n 1\n{_B64_ROOT}\n", id="space-in-size"),
        pytest.param(f"{ORIGIN}\n1_0\n{_B64_ROOT}\n", id="underscore-size"),
        pytest.param(f"{ORIGIN}\n١\n{_B64_ROOT}\n", id="arabic-digit-size"),
        pytest.param(f"{ORIGIN}\n\n{_B64_ROOT}\n", id="empty-size"),
        pytest.param(f"{ORIGIN}\n{1 << 63}\n{_B64_ROOT}\n", id="size-2**63"),
        pytest.param(f"{ORIGIN}\n{10**30}\n{_B64_ROOT}\n", id="huge-size"),
        pytest.param(f"{ORIGIN}\n1\n{base64.b64encode(bytes(31)).decode()}\n", id="31-byte-root"),
        pytest.param(f"{ORIGIN}\n1\n{base64.b64encode(bytes(33)).decode()}\n", id="33-byte-root"),
        pytest.param(f"{ORIGIN}\n1\n{_B64_ROOT.rstrip('=')}\n", id="unpadded-root"),
        pytest.param(f"{ORIGIN}\n1\n{_B64_ROOT[:-2]}l=\n", id="non-canonical-root"),
        pytest.param(f"{ORIGIN}\n1\n{ROOT.hex()}\n", id="hex-root"),
        pytest.param(f"{ORIGIN}\n1\nM€\n", id="non-ascii-root"),
        pytest.param(f"\n1\n{_B64_ROOT}\n", id="empty-origin"),
        pytest.param(f" \n1\n{_B64_ROOT}\n", id="blank-origin"),
        pytest.param(f"{ORIGIN}\n1\n{_B64_ROOT}\n\n", id="empty-extension"),
        pytest.param(f"{ORIGIN}\n1\n{_B64_ROOT}\nok\n\nok\n", id="empty-middle-extension"),
        pytest.param(f"{ORIGIN}\n1\n", id="no-root"),
        pytest.param(f"{ORIGIN}\n", id="origin-only"),
    ],
)
def test_malformed_checkpoint_bodies_raise_checkpoint_error(text: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.from_text(text)
    with pytest.raises(CheckpointError):
        open_checkpoint(_signed_bytes(text), LOG.verifier())


@pytest.mark.parametrize("text", ["", "no newline", "x\n\ty\n", "\x1f\n"])
def test_checkpoint_from_text_rejects_non_notes(text: str) -> None:
    with pytest.raises(CheckpointError):
        Checkpoint.from_text(text)


def test_checkpoint_edge_values_are_valid() -> None:
    for size in (0, (1 << 63) - 1):
        checkpoint = Checkpoint("origin with spaces", size, bytes(32), (" ",))
        assert Checkpoint.from_text(checkpoint.to_text()) == checkpoint


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        (" ", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        (ORIGIN, -1, ROOT, ()),
        (ORIGIN, 1 << 63, ROOT, ()),
        (ORIGIN, True, ROOT, ()),
        (ORIGIN, 1, ROOT[:31], ()),
        (ORIGIN, 1, ROOT + b"\0", ()),
        (ORIGIN, 1, ROOT, ("",)),
        (ORIGIN, 1, ROOT, ("a\nb",)),
    ],
)
def test_checkpoint_constructor_refuses_bad_fields(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidRequestError):
        Checkpoint(origin, size, root, extensions)


@pytest.mark.parametrize("text", ["", "no newline", "a\n\nb\n", "\nb\n", "\n", "c\x07\n"])
def test_sign_note_refuses_bad_text(text: str) -> None:
    with pytest.raises(InvalidRequestError):
        sign_note(text, LOG)


def test_signing_needs_a_signer() -> None:
    with pytest.raises(InvalidRequestError):
        sign_note("text\n")
    with pytest.raises(InvalidRequestError):
        add_signatures(sign_note("text\n", LOG))


def test_signed_checkpoint_must_match_its_note() -> None:
    other = sign_checkpoint(Checkpoint(ORIGIN, 1, ROOT), LOG).note
    with pytest.raises(InvalidRequestError):
        SignedCheckpoint(CHECKPOINT, other)


def test_check_matches() -> None:
    check_matches(CHECKPOINT, 42, ROOT)
    with pytest.raises(CheckpointError):
        check_matches(CHECKPOINT, 41, ROOT)
    with pytest.raises(CheckpointError):
        check_matches(CHECKPOINT, 42, bytes(32))


# --- properties -----------------------------------------------------------------

_NAME_CHARS = st.characters(
    blacklist_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), blacklist_characters="+"
)
_names = st.text(_NAME_CHARS, min_size=1, max_size=40).filter(
    lambda s: not any(ch.isspace() for ch in s)
)
_extensions = st.lists(
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30),
    max_size=3,
).map(tuple)


@settings(max_examples=200)
@given(
    origin=_names,
    size=st.integers(0, (1 << 63) - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=_extensions,
)
def test_sign_open_round_trips(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    signer = Ed25519NoteSigner(origin, _private(7))
    checkpoint = Checkpoint(origin, size, root, extensions)
    signed = sign_checkpoint(checkpoint, signer)
    verifier = Ed25519NoteVerifier.from_vkey(signer.vkey())
    opened = open_checkpoint(signed.to_bytes(), verifier, origin=origin)
    assert opened == signed
    assert opened.checkpoint == checkpoint
    check_matches(opened.checkpoint, size, root)
