"""The identifiers a licence carries: licence ids, credit codes, identity numbers, regions.

Every identifier is checked here before it is signed into a licence or a ledger entry.
Nothing is normalised (no upper-casing, no stripping, no full-width folding): a licence
is signed byte for byte, so a silently repaired spelling would be a second, different
identifier for the same thing. Messages name the failing position, because the person
reading a rejected request cannot be expected to recompute a checksum by hand.

ISO/IEC 7064 MOD 37,36 (the licence identifier's check character) detects every single
substitution but not every adjacent transposition: characters of values v and v + 1
(mod 36: ``HI``, ``01``, ``Z0`` ...) swap unnoticed where the running state p before
them has p + v = 18 (mod 36); ``IJ`` and ``JI`` share the check character ``0``. That
is one pair in 630 at each state, a property of the standard, not of this code.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from datetime import date
from typing import Final, Literal

IdentifierKind = Literal[
    "UNIFIED_SOCIAL_CREDIT_CODE", "RESIDENT_IDENTITY_NUMBER", "LICENCE_ID", "REGION_CODE"
]

_USCC: Final = "UNIFIED_SOCIAL_CREDIT_CODE"
_RESIDENT: Final = "RESIDENT_IDENTITY_NUMBER"
_LICENCE: Final = "LICENCE_ID"
_REGION: Final = "REGION_CODE"

_DIGITS: Final = "0123456789"  # ASCII only: str.isdigit() and \d admit full-width digits


class IdentifierError(ValueError):
    """An identifier is malformed; `kind` names which one (ErrorInfo reason ``<kind>_INVALID``)."""

    def __init__(self, kind: IdentifierKind, message: str) -> None:
        super().__init__(message)
        self.kind: IdentifierKind = kind


def _text(value: object, kind: IdentifierKind, name: str, *, echo: bool = True) -> str:
    if not isinstance(value, str):
        raise IdentifierError(kind, f"{name} must be a str, not {type(value).__name__}")
    if value != value.strip():
        shown = f" {value!r}" if echo else ""
        raise IdentifierError(kind, f"{name}{shown} has leading or trailing whitespace")
    return value


def _scan(
    text: str, allowed: str, expected: str, *, kind: IdentifierKind, subject: str, first: int = 1
) -> None:
    """Reject the first character of `text` outside `allowed`; positions count from `first`."""
    for position, char in enumerate(text, start=first):
        if char in allowed:
            continue
        if char.isascii() and char.islower() and char.upper() in allowed:
            problem = (
                f"lowercase {char!r} at position {position}: identifiers are upper case, "
                f"write {char.upper()!r}"
            )
        elif "\uff01" <= char <= "\uff5e":  # the full-width forms of ASCII '!' to '~'
            problem = f"full-width {char!r} at position {position} is not {expected}; use ASCII"
        else:
            problem = f"{char!r} at position {position} is not {expected}"
        raise IdentifierError(kind, f"{subject}: {problem}")


def _length(text: str, expected: int, *, kind: IdentifierKind, subject: str) -> None:
    if len(text) != expected:
        raise IdentifierError(kind, f"{subject}: must be {expected} characters, got {len(text)}")


# --- ISO/IEC 7064 hybrid MOD 37,36 ---------------------------------------------------

MOD37_36_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_M: Final = 36  # M + 1 = 37 is prime, which is what makes every substitution visible
_MOD37_36_VALUE: Final = {char: value for value, char in enumerate(MOD37_36_ALPHABET)}
_ALNUM: Final = "an ASCII digit or upper-case letter"


def _mod37_36_values(text: str, name: str) -> list[int]:
    # The only MOD 37,36 identifier here is the licence id, so its errors are LICENCE_ID.
    text = _text(text, _LICENCE, name)
    _scan(text, MOD37_36_ALPHABET, _ALNUM, kind=_LICENCE, subject=f"{name} {text!r}")
    return [_MOD37_36_VALUE[char] for char in text]


def _mod37_36_state(values: list[int], p: int = _M) -> int:
    """The running state p after `values`, starting from `p` (the standard starts at M)."""
    for value in values:
        s = (p + value) % _M or _M
        p = s * 2 % (_M + 1)
    return p


def mod37_36_check_char(data: str) -> str:
    """The ISO/IEC 7064 MOD 37,36 check character to append to `data`."""
    values = _mod37_36_values(data, "MOD 37,36 data")
    if not values:
        raise IdentifierError(_LICENCE, "MOD 37,36 data is empty: there is nothing to protect")
    return _mod37_36_check_of(_mod37_36_state(values))


def _mod37_36_check_of(state: int) -> str:
    return MOD37_36_ALPHABET[(_M + 1 - state) % _M]


def mod37_36_is_valid(data_with_check: str) -> bool:
    """Whether the last character is the MOD 37,36 check character of the ones before it."""
    values = _mod37_36_values(data_with_check, "MOD 37,36 input")
    if len(values) < 2:
        raise IdentifierError(
            _LICENCE, "MOD 37,36 input needs at least one data character and the check character"
        )
    # The standard's verification form, not a recomputation of the check character, so
    # that tests comparing the two compare two different formulas: the last s must be 1.
    return (_mod37_36_state(values[:-1]) + values[-1]) % _M == 1


# --- GB 32100-2015 unified social credit code ----------------------------------------

_USCC_ALPHABET: Final = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # no I, O, S, V, Z
_USCC_VALUE: Final = {char: value for value, char in enumerate(_USCC_ALPHABET)}
# 3**i mod 31: all non-zero modulo the prime 31, so any single substitution changes the sum.
_USCC_WEIGHTS: Final = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_CHARS: Final = "a GB 32100 character (0-9 and A-Z without I, O, S, V, Z)"


def _scan_uscc(code: str, subject: str) -> None:
    # The registration authority (1) and category (2) codes are not checked against the
    # GB 32100 tables: authorities are added to them, and a stale table rejects real codes.
    _scan(code[:2], _USCC_ALPHABET, _USCC_CHARS, kind=_USCC, subject=subject)
    _scan(
        code[2:8],
        _DIGITS,
        "an ASCII digit (positions 3-8 are the administrative division code)",
        kind=_USCC,
        subject=subject,
        first=3,
    )
    _scan(code[8:], _USCC_ALPHABET, _USCC_CHARS, kind=_USCC, subject=subject, first=9)


def _uscc_check(first17: str) -> str:
    total = sum(_USCC_VALUE[c] * w for c, w in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_ALPHABET[-total % 31]  # 31 - (total mod 31), with 31 written as 0


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character of the first 17 characters of a credit code."""
    first17 = _text(first17, _USCC, "unified social credit code body")
    subject = f"unified social credit code body {first17!r}"
    _length(first17, 17, kind=_USCC, subject=subject)
    _scan_uscc(first17, subject)
    return _uscc_check(first17)


def make_uscc(first17: str) -> str:
    """A complete credit code: `first17` with its check character appended."""
    return first17 + uscc_check_char(first17)


def validate_uscc(code: str) -> str:
    """`code` if it is a well-formed unified social credit code with a correct check."""
    return _valid_uscc(_text(code, _USCC, "unified social credit code"))


# Issuance checks the same few department and holder codes again and again; a refusal
# raises, so only valid codes are kept.
@functools.lru_cache(maxsize=4096)
def _valid_uscc(code: str) -> str:
    subject = f"unified social credit code {code!r}"
    _length(code, 18, kind=_USCC, subject=subject)
    _scan_uscc(code, subject)
    expected = _uscc_check(code[:17])
    if code[17] != expected:
        raise IdentifierError(
            _USCC, f"{subject}: wrong check character: expected {expected!r}, got {code[17]!r}"
        )
    return code


# --- GB 11643-1999 citizen (resident) identity number --------------------------------

# 2**(17 - i) mod 11, and the check character that brings the weighted sum to 1 mod 11.
_RESIDENT_WEIGHTS: Final = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_RESIDENT_CHECK: Final = "10X98765432"
_EARLIEST_BIRTH: Final = date(1900, 1, 1)
# Identity numbers are personal data and these messages end up in logs and gRPC error
# details, so they name positions and never repeat the number or its birth date.
_NUMBER: Final = "resident identity number"


def _resident_check(first17: str) -> str:
    total = sum(int(c) * w for c, w in zip(first17, _RESIDENT_WEIGHTS, strict=True))
    return _RESIDENT_CHECK[total % 11]


def resident_id_check_char(first17: str) -> str:
    """The GB 11643 check character (0-9 or X) of the first 17 digits of an identity number."""
    first17 = _text(first17, _RESIDENT, f"{_NUMBER} body", echo=False)
    _length(first17, 17, kind=_RESIDENT, subject=f"{_NUMBER} body")
    _scan(first17, _DIGITS, "an ASCII digit", kind=_RESIDENT, subject=f"{_NUMBER} body")
    return _resident_check(first17)


def validate_resident_id(number: str, *, today: date | None = None) -> str:
    """`number` if it is a well-formed identity number of someone already born.

    Only the address code's form is checked, not its province: the 2023 foreigners'
    permanent residence card uses this number format with a leading 9.
    """
    number = _text(number, _RESIDENT, _NUMBER, echo=False)
    _length(number, 18, kind=_RESIDENT, subject=_NUMBER)
    _scan(number[:17], _DIGITS, "an ASCII digit", kind=_RESIDENT, subject=_NUMBER)
    check = number[17]
    _scan(check, _DIGITS + "X", "0-9 or X", kind=_RESIDENT, subject=_NUMBER, first=18)
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError as exc:
        raise IdentifierError(
            _RESIDENT, f"{_NUMBER}: positions 7-14 are not a real birth date ({exc})"
        ) from None
    if born < _EARLIEST_BIRTH:
        raise IdentifierError(_RESIDENT, f"{_NUMBER}: birth date (positions 7-14) is before 1900")
    today = date.today() if today is None else today
    if born > today:
        raise IdentifierError(
            _RESIDENT, f"{_NUMBER}: birth date (positions 7-14) is after today, {today.isoformat()}"
        )
    expected = _resident_check(number[:17])
    if check != expected:
        raise IdentifierError(
            _RESIDENT, f"{_NUMBER}: wrong check character: expected {expected!r}, got {check!r}"
        )
    return number


# --- GB/T 36904 licence identifier ---------------------------------------------------

LICENCE_ID_ROOT: Final = "1.2.156.3005.2"
MAX_VERSION: Final = 999
_MAX_TYPE_CODE: Final = 32
_MAX_SERIAL_DIGITS: Final = 20
_PARTS: Final = "root 1.2.156.3005.2, type code, issuer code, serial, version, check character"


def _check_type_code(type_code: str) -> None:
    type_code = _text(type_code, _LICENCE, "type code")
    subject = f"type code {type_code!r}"
    if not 1 <= len(type_code) <= _MAX_TYPE_CODE:
        raise IdentifierError(
            _LICENCE, f"{subject}: must be 1 to {_MAX_TYPE_CODE} characters, got {len(type_code)}"
        )
    _scan(type_code, MOD37_36_ALPHABET, _ALNUM, kind=_LICENCE, subject=subject)


def _check_issuer_code(issuer_code: str) -> None:
    try:
        validate_uscc(issuer_code)
    except IdentifierError as exc:  # the licence id is what is wrong, so report it as such
        raise IdentifierError(_LICENCE, f"issuer code: {exc}") from None


def _check_number(value: int, name: str, low: int, high: int) -> None:
    # bool is an int, but True as a serial is a caller's bug, not serial 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise IdentifierError(_LICENCE, f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise IdentifierError(_LICENCE, f"{name} {value} is outside {low} to {high}")


def _check_serial_text(serial: str) -> None:
    subject = f"serial {serial!r}"
    if not 1 <= len(serial) <= _MAX_SERIAL_DIGITS:
        raise IdentifierError(
            _LICENCE, f"{subject}: must be 1 to {_MAX_SERIAL_DIGITS} digits, got {len(serial)}"
        )
    _scan(serial, _DIGITS, "an ASCII digit", kind=_LICENCE, subject=subject)
    if len(serial) > 1 and serial[0] == "0":  # one serial, one spelling
        raise IdentifierError(_LICENCE, f"{subject}: has a leading zero")


def _check_version_text(version: str) -> None:
    subject = f"version {version!r}"
    _length(version, 3, kind=_LICENCE, subject=subject)
    _scan(version, _DIGITS, "an ASCII digit", kind=_LICENCE, subject=subject)
    if version == "000":
        raise IdentifierError(_LICENCE, f"{subject}: versions run from 001 to {MAX_VERSION}")


@dataclass(frozen=True, slots=True)
class LicenceId:
    """A GB/T 36904 licence identifier; construction validates, so every instance is valid.

    The check character covers the root too: MOD 37,36 over ``1215630052`` + type +
    issuer + serial + version, without the dots, which are outside its alphabet.
    """

    type_code: str
    issuer_code: str  # the issuing department's unified social credit code
    serial: int
    version: int

    def __post_init__(self) -> None:
        _check_codes(self.type_code, self.issuer_code)
        _check_number(self.serial, "serial", 0, 10**_MAX_SERIAL_DIGITS - 1)
        _check_number(self.version, "version", 1, MAX_VERSION)

    @property
    def text(self) -> str:
        """The identifier as written on the licence, check character included."""
        state = _check_codes(self.type_code, self.issuer_code)
        check = _mod37_36_check_of(_digits_state(f"{self.serial}{self.version:03d}", state))
        return f"{LICENCE_ID_ROOT}.{self.lineage}.{self.version:03d}.{check}"

    def __str__(self) -> str:
        return self.text

    @property
    def lineage(self) -> str:
        """What every version of one licence shares: type, issuer and serial."""
        return f"{self.type_code}.{self.issuer_code}.{self.serial}"

    def with_version(self, version: int) -> LicenceId:
        return dataclasses.replace(self, version=version)

    @classmethod
    def parse(cls, text: str) -> LicenceId:
        """The identifier `text` spells; anything but its one canonical spelling is refused."""
        return _parse_licence_id(_text(text, _LICENCE, "licence identifier"))


def _check_codes(type_code: str, issuer_code: str) -> int:
    """Refuse a bad type or issuer code; else the MOD 37,36 state after root, type, issuer."""
    if type(type_code) is str and type(issuer_code) is str:  # exactly: hashable, cacheable
        return _codes_state(type_code, issuer_code)
    return _codes_state.__wrapped__(type_code, issuer_code)  # checked, and not kept


# Every id of one type and department shares the root, type and issuer: they are
# validated, and the check character's running state over them computed, once. Only
# valid pairs are kept (a refusal raises). The state depends on the characters alone,
# so resuming from it gives the same check character as a pass over the whole body,
# which the tests compare with the plain `mod37_36_check_char`.
@functools.lru_cache(maxsize=1024)
def _codes_state(type_code: str, issuer_code: str) -> int:
    _check_type_code(type_code)
    _check_issuer_code(issuer_code)
    prefix = LICENCE_ID_ROOT.replace(".", "") + type_code + issuer_code
    return _mod37_36_state([_MOD37_36_VALUE[char] for char in prefix])


def _digits_state(digits: str, state: int) -> int:
    return _mod37_36_state([ord(char) - 48 for char in digits], state)


# A licence id is parsed wherever a request or record names one, often the same few;
# instances are immutable, and a refusal raises, so only valid ids are kept.
@functools.lru_cache(maxsize=4096)
def _parse_licence_id(text: str) -> LicenceId:
    subject = f"licence identifier {text!r}"
    parts = text.split(".")
    if len(parts) != 10:
        raise IdentifierError(
            _LICENCE, f"{subject}: has {len(parts)} dot-separated parts, expected 10 ({_PARTS})"
        )
    root = ".".join(parts[:5])
    if root != LICENCE_ID_ROOT:
        raise IdentifierError(_LICENCE, f"{subject}: root is {root!r}, not {LICENCE_ID_ROOT}")
    type_code, issuer_code, serial, version, check = parts[5:]
    try:
        state = _check_codes(type_code, issuer_code)
        _check_serial_text(serial)
        _check_version_text(version)
        if len(check) != 1:
            raise IdentifierError(_LICENCE, f"check character {check!r} is not one character")
        _scan(check, MOD37_36_ALPHABET, _ALNUM, kind=_LICENCE, subject="check character")
    except IdentifierError as exc:
        raise IdentifierError(_LICENCE, f"{subject}: {exc}") from None
    expected = _mod37_36_check_of(_digits_state(serial + version, state))
    if check != expected:
        raise IdentifierError(
            _LICENCE, f"{subject}: wrong check character: expected {expected!r}, got {check!r}"
        )
    return LicenceId(type_code, issuer_code, int(serial), int(version))


# --- GB/T 2260 administrative division (region) code ---------------------------------

# Province-level prefixes (incl. Taiwan 71, Hong Kong 81, Macao 82). The lower four
# digits change with every revision of GB/T 2260, so a full table would go stale.
_PROVINCE: Final = re.compile(r"1[1-5]|2[1-3]|3[1-7]|4[1-6]|5[0-4]|6[1-5]|71|8[12]")


def validate_region_code(code: str) -> str:
    """`code` if it is six ASCII digits under a GB/T 2260 province."""
    code = _text(code, _REGION, "region code")
    subject = f"region code {code!r}"
    _length(code, 6, kind=_REGION, subject=subject)
    _scan(code, _DIGITS, "an ASCII digit", kind=_REGION, subject=subject)
    if not _PROVINCE.fullmatch(code[:2]):
        raise IdentifierError(_REGION, f"{subject}: {code[:2]} is not a GB/T 2260 province")
    return code
