"""Tests of `signer.identifiers`: known answers, exact rejections, and error-detection properties.

The check characters are recomputed here by reference formulas written differently from
the module's (MOD 37,36 in the form python-stdnum uses, which starts the recurrence one
step earlier; GB 32100 and GB 11643 weights derived as powers rather than copied), so one
mistake would have to be made twice, in two shapes, to pass unnoticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from signer.identifiers import (
    LICENCE_ID_ROOT,
    MAX_VERSION,
    IdentifierError,
    LicenceId,
    make_uscc,
    mod37_36_check_char,
    mod37_36_is_valid,
    resident_id_check_char,
    uscc_check_char,
    validate_region_code,
    validate_resident_id,
    validate_uscc,
)

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
DIGITS = "0123456789"
TODAY = date(2025, 6, 30)  # fixed, so generated birth dates never drift into the future

# 91350100M000100Y43 by hand, GB 32100 weights 3**i mod 31 over values (M=21, Y=30):
#   9*1 + 1*3 + 3*9 + 5*27 + 0*19 + 1*26 + 0*16 + 0*17 + 21*20 + 0*29 + 0*25 + 0*13
#   + 1*8 + 0*24 + 0*10 + 30*30 + 4*28 = 1640;  1640 mod 31 = 28;  31 - 28 = 3.
USCC = "91350100M000100Y43"
# 11010519491231002X (the example of GB 11643 itself) by hand, weights 2**(17-i) mod 11:
#   1*7 + 1*9 + 0*10 + 1*5 + 0*8 + 5*4 + 1*2 + 9*1 + 4*6 + 9*3 + 1*7 + 2*9 + 3*10
#   + 1*5 + 0*8 + 0*4 + 2*2 = 167;  167 mod 11 = 2;  (12 - 2) mod 11 = 10, written X.
RESIDENT_ID = "11010519491231002X"


# --- reference formulas ---------------------------------------------------------------


def ref_mod37_36_checksum(text: str) -> int:
    """The running s after `text`, python-stdnum style; a valid string ends with 1."""
    s = 18  # so that the first doubling gives p = 36, as the standard starts
    for char in text:
        s = (((s or 36) * 2) % 37 + ALNUM.index(char)) % 36
    return s


def ref_mod37_36_check(data: str) -> str:
    return ALNUM[(1 - ((ref_mod37_36_checksum(data) or 36) * 2) % 37) % 36]


def ref_state_before(data: str, index: int) -> int:
    """The standard's p after data[:index]."""
    return ((ref_mod37_36_checksum(data[:index]) or 36) * 2) % 37


def ref_uscc_check(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def ref_resident_check(first17: str) -> str:
    total = sum(int(c) * pow(2, 17 - i, 11) for i, c in enumerate(first17))
    value = (12 - total % 11) % 11
    return "X" if value == 10 else str(value)


def in_blind_spot(p: int, a: int, b: int) -> bool:
    """Whether swapping values a, b after state p escapes MOD 37,36 (see the module doc)."""
    return any(
        second == (first + 1) % 36 and (p + first) % 36 == 18 for first, second in ((a, b), (b, a))
    )


def substitutions(text: str, alphabet_at: list[str]) -> Iterator[str]:
    for i, char in enumerate(text):
        for replacement in alphabet_at[i]:
            if replacement != char:
                yield text[:i] + replacement + text[i + 1 :]


# --- strategies -------------------------------------------------------------------------

mod37_36_data = st.text(ALNUM, min_size=1, max_size=16)
uscc_bodies = st.builds(
    lambda head, division, tail: head + division + tail,
    st.text(USCC_ALPHABET, min_size=2, max_size=2),
    st.text(DIGITS, min_size=6, max_size=6),
    st.text(USCC_ALPHABET, min_size=9, max_size=9),
)
usccs = uscc_bodies.map(make_uscc)
USCC_ALPHABET_AT = [USCC_ALPHABET] * 2 + [DIGITS] * 6 + [USCC_ALPHABET] * 10


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    address = draw(st.text(DIGITS, min_size=6, max_size=6))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.text(DIGITS, min_size=3, max_size=3))
    first17 = f"{address}{born:%Y%m%d}{sequence}"
    return first17 + resident_id_check_char(first17)


licence_ids = st.builds(
    LicenceId,
    type_code=st.text(ALNUM, min_size=1, max_size=32),
    issuer_code=usccs,
    serial=st.integers(0, 10**20 - 1),
    version=st.integers(1, MAX_VERSION),
)


# --- ISO/IEC 7064 MOD 37,36 ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "check"),
    [
        ("A12425GABC1234002", "M"),  # the GRid example, also python-stdnum's doctest
        ("B159D8FA01240000", "K"),  # xbib standardnumber's MOD3736 test
        ("188166C734200000", "3"),  # xbib standardnumber's MOD3736 test
        # By hand: p=36; I(18): s=54 mod 36=18, p=36; J(19): s=19, p=38 mod 37=1; (37-1) mod 36=0.
        ("IJ", "0"),
        ("JI", "0"),  # the transposition blind spot: the same check character as IJ
    ],
)
def test_mod37_36_known_answers(data: str, check: str) -> None:
    assert mod37_36_check_char(data) == check
    assert mod37_36_is_valid(data + check)
    assert ref_mod37_36_checksum(data + check) == 1


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a12425GABC1234002", r"lowercase 'a' at position 1: identifiers are upper case"),
        ("A1-2425G", r"'-' at position 3 is not an ASCII digit or upper-case letter"),
        ("A1２", r"full-width '２' at position 3"),
        ("", "empty"),
        (" A1", "whitespace"),
    ],
)
def test_mod37_36_rejects_bad_input(text: str, match: str) -> None:
    with pytest.raises(IdentifierError, match=match) as error:
        mod37_36_check_char(text)
    assert error.value.kind == "LICENCE_ID"


def test_mod37_36_validation_needs_data_and_check() -> None:
    with pytest.raises(IdentifierError, match="at least one data character"):
        mod37_36_is_valid("M")
    with pytest.raises(IdentifierError, match="must be a str, not bytes"):
        mod37_36_is_valid(b"A1M")  # type: ignore[arg-type]


@given(mod37_36_data)
def test_mod37_36_generation_agrees_with_verification_and_reference(data: str) -> None:
    check = mod37_36_check_char(data)
    assert check == ref_mod37_36_check(data)
    assert [c for c in ALNUM if mod37_36_is_valid(data + c)] == [check]


@settings(deadline=None)
@given(mod37_36_data)
def test_mod37_36_detects_every_single_substitution(data: str) -> None:
    valid = data + mod37_36_check_char(data)
    for changed in substitutions(valid, [ALNUM] * len(valid)):
        assert not mod37_36_is_valid(changed)


@given(mod37_36_data)
@example("IJ")  # "IJ0" -> "JI0" escapes, so the blind-spot branch is always exercised
def test_mod37_36_detects_adjacent_transpositions_outside_its_blind_spot(data: str) -> None:
    valid = data + mod37_36_check_char(data)
    for i in range(len(valid) - 1):
        a, b = ALNUM.index(valid[i]), ALNUM.index(valid[i + 1])
        if a == b:
            continue
        swapped = valid[:i] + valid[i + 1] + valid[i] + valid[i + 2 :]
        escapes = in_blind_spot(ref_state_before(valid, i), a, b)
        assert mod37_36_is_valid(swapped) == escapes


def test_mod37_36_transposition_blind_spot_is_exactly_one_pair_per_state() -> None:
    # Every state p in 1..36 occurs, and later characters map states one to one, so a
    # swap escapes exactly when both orders leave the same state right after the pair.
    def after(p: int, *values: int) -> int:
        for value in values:
            p = ((p + value) % 36 or 36) * 2 % 37
        return p

    pairs = {(p, a, b) for p in range(1, 37) for a in range(36) for b in range(a + 1, 36)}
    escaping = {(p, a, b) for p, a, b in pairs if after(p, a, b) == after(p, b, a)}
    assert escaping == {(p, a, b) for p, a, b in pairs if in_blind_spot(p, a, b)}
    assert len(escaping) == 36


# --- GB 32100 unified social credit code ----------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        USCC,  # checked by hand above
        "91110000600037341L",  # python-stdnum's doctest
    ],
)
def test_uscc_known_valid(code: str) -> None:
    assert validate_uscc(code) == code
    assert uscc_check_char(code[:17]) == code[17] == ref_uscc_check(code[:17])


@pytest.mark.parametrize(
    ("code", "match"),
    [
        ("91350100M000100Y4", "must be 18 characters, got 17"),
        ("91350100M000100Y433", "must be 18 characters, got 19"),
        ("91350100M000100Y44", "wrong check character: expected '3', got '4'"),
        ("9135A100M000100Y43", "'A' at position 5 is not an ASCII digit .positions 3-8"),
        ("91350100I000100Y43", "'I' at position 9 is not a GB 32100 character"),
        ("91350100M000100Z43", "'Z' at position 16 is not a GB 32100 character"),
        ("91350100m000100Y43", "lowercase 'm' at position 9: identifiers are upper case"),
        ("9135０100M000100Y43", "full-width '０' at position 5"),
        ("91350100M000100Y43\n", "whitespace"),
        ("\u300091350100M000100Y43", "whitespace"),  # the ideographic space
    ],
)
def test_uscc_rejections(code: str, match: str) -> None:
    with pytest.raises(IdentifierError, match=match) as error:
        validate_uscc(code)
    assert error.value.kind == "UNIFIED_SOCIAL_CREDIT_CODE"


def test_uscc_rejects_non_str() -> None:
    with pytest.raises(IdentifierError, match="must be a str, not int") as error:
        validate_uscc(91350100)  # type: ignore[arg-type]
    assert error.value.kind == "UNIFIED_SOCIAL_CREDIT_CODE"


def test_uscc_check_char_wants_exactly_the_body() -> None:
    with pytest.raises(IdentifierError, match="must be 17 characters, got 18"):
        uscc_check_char(USCC)


@given(uscc_bodies)
def test_made_usccs_validate(first17: str) -> None:
    code = make_uscc(first17)
    assert code[:17] == first17
    assert code[17] == ref_uscc_check(first17)
    assert validate_uscc(code) == code


@settings(deadline=None)
@given(usccs)
def test_every_single_substitution_of_a_uscc_is_rejected(code: str) -> None:
    for changed in substitutions(code, USCC_ALPHABET_AT):
        with pytest.raises(IdentifierError) as error:
            validate_uscc(changed)
        assert error.value.kind == "UNIFIED_SOCIAL_CREDIT_CODE"


# --- GB 11643 resident identity number ------------------------------------------------------


def resident_id(address: str, born: str, sequence: str = "001") -> str:
    """An identity number with a correct check character, so only the date can be wrong."""
    first17 = address + born + sequence
    return first17 + resident_id_check_char(first17)


def test_resident_id_known_valid() -> None:
    assert validate_resident_id(RESIDENT_ID, today=TODAY) == RESIDENT_ID
    assert resident_id_check_char(RESIDENT_ID[:17]) == "X" == ref_resident_check(RESIDENT_ID[:17])


@pytest.mark.parametrize(
    "born",
    [
        "19000101",  # the earliest accepted
        "20000229",  # a leap day (2000 is divisible by 400)
        f"{TODAY:%Y%m%d}",  # born today
    ],
)
def test_resident_id_birth_date_boundaries_accepted(born: str) -> None:
    number = resident_id("110105", born)
    assert validate_resident_id(number, today=TODAY) == number


@pytest.mark.parametrize(
    ("number", "match"),
    [
        ("11010519491231002", "must be 18 characters, got 17"),
        ("11010519491231002XX", "must be 18 characters, got 19"),
        (
            "11010519491231002x",
            "lowercase 'x' at position 18: identifiers are upper case, write 'X'",
        ),
        ("11010519491231002Y", "'Y' at position 18 is not 0-9 or X"),
        ("1101051949123100X2", "'X' at position 17 is not an ASCII digit"),
        ("１1010519491231002X", "full-width '１' at position 1"),
        ("110105194912310021", "wrong check character: expected 'X', got '1'"),
        (resident_id("110105", "19990230"), r"positions 7-14 are not a real birth date \(day"),
        (resident_id("110105", "19991301"), r"positions 7-14 are not a real birth date \(month"),
        (resident_id("110105", "19000229"), "not a real birth date"),  # 1900 was no leap year
        (resident_id("110105", "18991231"), "before 1900"),
        (resident_id("110105", "20250701"), "after today, 2025-06-30"),
        (" 11010519491231002X", "whitespace"),
    ],
)
def test_resident_id_rejections(number: str, match: str) -> None:
    with pytest.raises(IdentifierError, match=match) as error:
        validate_resident_id(number, today=TODAY)
    assert error.value.kind == "RESIDENT_IDENTITY_NUMBER"
    # Personal data: the number and its birth date must not reach logs through messages.
    assert number.strip()[:17] not in str(error.value)
    assert number[6:14] not in str(error.value)


def test_resident_id_rejects_non_str_and_defaults_to_the_real_today() -> None:
    with pytest.raises(IdentifierError, match="must be a str, not int"):
        validate_resident_id(110105194912310020)  # type: ignore[arg-type]
    with pytest.raises(IdentifierError, match="after today"):
        validate_resident_id(resident_id("110105", f"{date.today().year + 1}0101"))


@given(resident_ids())
def test_generated_resident_ids_validate(number: str) -> None:
    assert number[17] == ref_resident_check(number[:17])
    assert validate_resident_id(number, today=TODAY) == number


@given(resident_ids())
def test_every_single_substitution_of_a_resident_id_is_rejected(number: str) -> None:
    for changed in substitutions(number, [DIGITS] * 17 + [DIGITS + "X"]):
        with pytest.raises(IdentifierError) as error:
            validate_resident_id(changed, today=TODAY)
        assert error.value.kind == "RESIDENT_IDENTITY_NUMBER"


# --- GB/T 36904 licence identifier -----------------------------------------------------------

LICENCE = LicenceId("11100000000013338W011", USCC, 20230000403, 2)
LICENCE_TEXT = "1.2.156.3005.2.11100000000013338W011.91350100M000100Y43.20230000403.002.0"


def test_licence_id_known_answer() -> None:
    body = "121563005211100000000013338W01191350100M000100Y4320230000403002"
    assert ref_mod37_36_check(body) == LICENCE_TEXT[-1]
    assert str(LICENCE) == LICENCE.text == LICENCE_TEXT
    assert LicenceId.parse(LICENCE_TEXT) == LICENCE


def test_licence_id_parts() -> None:
    assert LICENCE_TEXT.startswith(LICENCE_ID_ROOT + ".")
    assert LICENCE.lineage == f"11100000000013338W011.{USCC}.20230000403"
    smallest = LicenceId("7", USCC, 0, 1).text  # serial 0 and version 001 are the minimum
    assert smallest.rsplit(".", 1)[0] == f"{LICENCE_ID_ROOT}.7.{USCC}.0.001"
    assert LicenceId.parse(smallest).serial == 0


def test_licence_id_versions_share_a_lineage() -> None:
    newest = LICENCE.with_version(MAX_VERSION)
    assert newest.version == MAX_VERSION
    assert newest.lineage == LICENCE.lineage
    assert newest.text.split(".")[8] == "999"
    assert newest != LICENCE
    with pytest.raises(IdentifierError, match="version 1000 is outside 1 to 999"):
        LICENCE.with_version(MAX_VERSION + 1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"type_code": ""}, "type code '': must be 1 to 32 characters, got 0"),
        ({"type_code": "A" * 33}, "must be 1 to 32 characters, got 33"),
        ({"type_code": "11a"}, "lowercase 'a' at position 3"),
        ({"type_code": "1.1"}, "'.' at position 2 is not an ASCII digit or upper-case letter"),
        ({"type_code": 11}, "type code must be a str, not int"),
        ({"issuer_code": "91350100M000100Y44"}, "issuer code: .* expected '3', got '4'"),
        ({"serial": -1}, "serial -1 is outside 0 to 99999999999999999999"),
        ({"serial": 10**20}, "serial 100000000000000000000 is outside"),
        ({"serial": True}, "serial must be an int, not bool"),
        ({"serial": "1"}, "serial must be an int, not str"),
        ({"version": 0}, "version 0 is outside 1 to 999"),
        ({"version": 1.0}, "version must be an int, not float"),
    ],
)
def test_invalid_licence_ids_cannot_be_constructed(kwargs: dict[str, object], match: str) -> None:
    fields: dict[str, object] = {
        "type_code": "11",
        "issuer_code": USCC,
        "serial": 1,
        "version": 1,
    } | kwargs
    with pytest.raises(IdentifierError, match=match) as error:
        LicenceId(**fields)  # type: ignore[arg-type]
    assert error.value.kind == "LICENCE_ID"


def test_licence_ids_of_str_subclasses_are_checked_alike() -> None:
    # Plain str codes take a cached path; anything else is checked afresh, the same way.
    class Code(str):
        pass

    same = LicenceId(Code(LICENCE.type_code), Code(USCC), LICENCE.serial, LICENCE.version)
    assert same.text == LICENCE_TEXT
    with pytest.raises(IdentifierError, match="lowercase 'a' at position 3"):
        LicenceId(Code("11a"), Code(USCC), 1, 1)
    with pytest.raises(IdentifierError, match=r"issuer code: .* expected '3', got '4'"):
        LicenceId("11", Code("91350100M000100Y44"), 1, 1)


def with_part(index: int, value: str) -> str:
    """LICENCE_TEXT with one dot-separated part replaced and the check char left as is."""
    parts = LICENCE_TEXT.split(".")
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (LICENCE_TEXT[:-1] + "A", "wrong check character: expected '0', got 'A'"),
        (LICENCE_TEXT + "0", "check character '00' is not one character"),
        (LICENCE_TEXT[:-2], "has 9 dot-separated parts, expected 10"),
        (LICENCE_TEXT + ".0", "has 11 dot-separated parts, expected 10"),
        (LICENCE_TEXT.replace("1.2.156.", "1.2.157.", 1), "root is '1.2.157.3005.2'"),
        (with_part(5, "11100000000013338w011"), "type code .*: lowercase 'w' at position 18"),
        (with_part(5, ""), "type code '': must be 1 to 32 characters"),
        (with_part(6, "91350100M000100Y4"), "issuer code: .* must be 18 characters"),
        (with_part(7, "020230000403"), "serial '020230000403': has a leading zero"),
        (with_part(7, "2023000040３"), "full-width '３' at position 11"),
        (with_part(7, "1" * 21), "must be 1 to 20 digits, got 21"),
        (with_part(7, ""), "must be 1 to 20 digits, got 0"),
        (with_part(8, "2"), "version '2': must be 3 characters, got 1"),
        (with_part(8, "000"), "versions run from 001 to 999"),
        (with_part(8, "0A2"), "'A' at position 2 is not an ASCII digit"),
        (with_part(9, "a"), "check character: lowercase 'a'"),
        (with_part(9, "-"), "check character: '-' at position 1"),
        (LICENCE_TEXT + " ", "whitespace"),
    ],
)
def test_licence_id_parse_rejections(text: str, match: str) -> None:
    with pytest.raises(IdentifierError, match=match) as error:
        LicenceId.parse(text)
    assert error.value.kind == "LICENCE_ID"


def test_licence_id_parse_rejects_non_str() -> None:
    with pytest.raises(IdentifierError, match="must be a str, not bytes"):
        LicenceId.parse(LICENCE_TEXT.encode())  # type: ignore[arg-type]


@given(licence_ids)
def test_licence_ids_round_trip(licence: LicenceId) -> None:
    text = str(licence)
    body = text.rsplit(".", 1)[0].replace(".", "")
    assert text[-1] == ref_mod37_36_check(body)
    assert LicenceId.parse(text) == licence
    assert LicenceId.parse(licence.with_version(1).text).lineage == licence.lineage


@settings(deadline=None, max_examples=50)
@given(licence_ids)
def test_every_single_substitution_of_a_licence_id_is_rejected(licence: LicenceId) -> None:
    text = licence.text
    for changed in substitutions(text, [ALNUM] * len(text)):
        with pytest.raises(IdentifierError) as error:
            LicenceId.parse(changed)
        assert error.value.kind == "LICENCE_ID"


# --- GB/T 2260 region code --------------------------------------------------------------------


@pytest.mark.parametrize("code", ["110000", "310115", "540000", "710000", "820000"])
def test_region_codes_accepted(code: str) -> None:
    assert validate_region_code(code) == code


@pytest.mark.parametrize(
    ("code", "match"),
    [
        ("11000", "must be 6 characters, got 5"),
        ("1100000", "must be 6 characters, got 7"),
        ("１１００００", "full-width '１' at position 1 is not an ASCII digit"),
        ("11000A", "'A' at position 6 is not an ASCII digit"),
        ("100000", "10 is not a GB/T 2260 province"),
        ("720000", "72 is not a GB/T 2260 province"),
        ("990000", "99 is not a GB/T 2260 province"),
        ("110000 ", "whitespace"),
    ],
)
def test_region_code_rejections(code: str, match: str) -> None:
    with pytest.raises(IdentifierError, match=match) as error:
        validate_region_code(code)
    assert error.value.kind == "REGION_CODE"


def test_region_code_rejects_non_str() -> None:
    with pytest.raises(IdentifierError, match="must be a str, not int") as error:
        validate_region_code(110000)  # type: ignore[arg-type]
    assert error.value.kind == "REGION_CODE"
