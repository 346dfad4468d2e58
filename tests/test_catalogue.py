"""The licence type catalogue: what a type may declare, and what a licence's face fields must be."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from licenceledger.licence.v1 import licence_pb2
from licenceledger.registry.v1 import registry_pb2
from signer.catalogue import (
    GENERAL_MAX_VALUE,
    Violation,
    check_face_fields,
    check_licence_type,
)

STRING = registry_pb2.FACE_FIELD_FORMAT_STRING
DATE = registry_pb2.FACE_FIELD_FORMAT_DATE
INTEGER = registry_pb2.FACE_FIELD_FORMAT_INTEGER
DECIMAL = registry_pb2.FACE_FIELD_FORMAT_DECIMAL
REGEX = registry_pb2.FACE_FIELD_FORMAT_REGEX
ENUM = registry_pb2.FACE_FIELD_FORMAT_ENUM

BUSINESS_TYPES = ["食品销售经营者", "餐饮服务经营者", "单位食堂"]


def food_business_licence() -> registry_pb2.LicenceType:
    """食品经营许可证, shaped like the national one (a fresh message: tests modify it)."""
    spec = registry_pb2.FaceFieldSpec
    return registry_pb2.LicenceType(
        licence_type_code="JY",
        name="食品经营许可证",
        name_en="Food Business Licence",
        face_fields=[
            spec(
                name="business_scope",
                label_zh="经营项目",
                label_en="Business scope",
                required=True,
                format=STRING,
                max_length=200,
            ),
            spec(
                name="legal_representative",
                label_zh="法定代表人（负责人）",
                label_en="Legal representative",
                required=True,
                format=STRING,
            ),
            spec(name="residence", label_zh="住所", label_en="Residence", format=STRING),
            spec(
                name="registered_capital",
                label_zh="注册资本（万元）",
                label_en="Registered capital (10,000 yuan)",
                format=DECIMAL,
            ),
            spec(name="established_on", label_zh="成立日期", format=DATE),
            spec(name="employee_count", label_zh="从业人员数", format=INTEGER),
            spec(
                name="business_type",
                label_zh="主体业态",
                label_en="Business type",
                format=ENUM,
                allowed_values=BUSINESS_TYPES,
            ),
            spec(name="postcode", label_zh="邮政编码", format=REGEX, pattern="[0-9]{6}"),
        ],
    )


VALID_LICENCE = {
    "business_scope": "预包装食品（含冷藏冷冻食品）销售，散装食品（含熟食）销售",
    "legal_representative": "张伟",
    "residence": "上海市浦东新区世纪大道100号",
    "registered_capital": "500.00",
    "established_on": "2016-02-29",
    "employee_count": "42",
    "business_type": "食品销售经营者",
    "postcode": "200120",
}


def faces(values: dict[str, str]) -> list[licence_pb2.FaceField]:
    return [licence_pb2.FaceField(name=name, value=value) for name, value in values.items()]


def paths(violations: list[Violation]) -> list[str]:
    return [v.field for v in violations]


def with_field(
    allowed_values: Sequence[str] = (), **changes: str | int
) -> registry_pb2.LicenceType:
    """The food type with its first face field (business_scope, STRING, max_length 200)
    changed by `changes` (spec field name: value)."""
    licence_type = food_business_licence()
    first = licence_type.face_fields[0]
    first.allowed_values.extend(allowed_values)
    for name, value in changes.items():
        setattr(first, name, value)
    return licence_type


# --- check_licence_type -----------------------------------------------------------------


def test_a_realistic_type_passes() -> None:
    assert check_licence_type(food_business_licence()) == []


@pytest.mark.parametrize("code", ["JY", "0", "11100000MB01432345", "A" * 32])
def test_type_codes_that_pass(code: str) -> None:
    licence_type = food_business_licence()
    licence_type.licence_type_code = code
    assert check_licence_type(licence_type) == []


@pytest.mark.parametrize("code", ["", "jy", "JY-01", "JY ", "ＪＹ", "JY\n", "A" * 33])
def test_type_codes_that_fail(code: str) -> None:
    licence_type = food_business_licence()
    licence_type.licence_type_code = code
    assert paths(check_licence_type(licence_type)) == ["licence_type_code"]


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is empty"),
        ("食" * 65, "65 code points long; at most 64"),
        ("食品经营\n许可证", "control character U+000A"),
        ("食品经营\u202e许可证", "control character U+202E"),
        (" 食品经营许可证", "leading or trailing whitespace"),
        ("食品经营许可证\u3000", "leading or trailing whitespace"),
    ],
)
def test_type_names_that_fail(name: str, problem: str) -> None:
    licence_type = food_business_licence()
    licence_type.name = name
    [violation] = check_licence_type(licence_type)
    assert violation.field == "name"
    assert problem in violation.description


def test_names_count_code_points_not_bytes() -> None:
    licence_type = food_business_licence()
    licence_type.name = "食" * 64  # 192 bytes of UTF-8
    licence_type.face_fields[0].label_zh = "经" * 32
    assert check_licence_type(licence_type) == []


def test_english_name_is_optional_but_checked_when_given() -> None:
    licence_type = food_business_licence()
    licence_type.name_en = ""
    assert check_licence_type(licence_type) == []
    licence_type.name_en = "F" * 128
    assert check_licence_type(licence_type) == []
    licence_type.name_en = "F" * 129
    assert paths(check_licence_type(licence_type)) == ["name_en"]
    licence_type.name_en = "Food Business Licence\t"
    assert paths(check_licence_type(licence_type)) == ["name_en"]


def test_a_type_needs_one_to_64_face_fields() -> None:
    licence_type = food_business_licence()
    del licence_type.face_fields[:]
    assert check_licence_type(licence_type) == [
        Violation("face_fields", "a licence type needs 1 to 64 face fields, not 0")
    ]
    licence_type.face_fields.extend(
        registry_pb2.FaceFieldSpec(name=f"field_{i}", label_zh=f"项目{i}", format=STRING)
        for i in range(64)
    )
    assert check_licence_type(licence_type) == []
    licence_type.face_fields.add(name="one_too_many", label_zh="多余", format=STRING)
    assert paths(check_licence_type(licence_type)) == ["face_fields"]


@pytest.mark.parametrize("name", ["", "Scope", "1st_field", "business-scope", "经营项目", "a" * 65])
def test_face_field_names_that_fail(name: str) -> None:
    assert paths(check_licence_type(with_field(name=name))) == ["face_fields[0].name"]


@pytest.mark.parametrize("name", ["a", "scope_2", "a" * 64])
def test_face_field_names_that_pass(name: str) -> None:
    assert check_licence_type(with_field(name=name)) == []


def test_face_field_names_are_unique() -> None:
    licence_type = food_business_licence()
    licence_type.face_fields[5].name = "residence"
    assert check_licence_type(licence_type) == [
        Violation(
            "face_fields[5].name", "face field name 'residence' duplicates face_fields[2].name"
        )
    ]


def test_labels() -> None:
    assert paths(check_licence_type(with_field(label_zh=""))) == ["face_fields[0].label_zh"]
    assert paths(check_licence_type(with_field(label_zh="经" * 33))) == ["face_fields[0].label_zh"]
    assert check_licence_type(with_field(label_zh="经" * 32)) == []
    assert check_licence_type(with_field(label_en="")) == []
    assert paths(check_licence_type(with_field(label_en=" Scope"))) == ["face_fields[0].label_en"]


@pytest.mark.parametrize("fmt", [registry_pb2.FACE_FIELD_FORMAT_UNSPECIFIED, 99])
def test_format_must_be_a_known_one(fmt: int) -> None:
    assert paths(check_licence_type(with_field(format=fmt))) == ["face_fields[0].format"]


def test_max_length_is_capped() -> None:
    assert check_licence_type(with_field(max_length=4096)) == []
    assert paths(check_licence_type(with_field(max_length=4097))) == ["face_fields[0].max_length"]


@pytest.mark.parametrize(
    "pattern",
    [
        "[0-9]{6}",
        r"\d{6}",
        "(京|沪|粤)[A-Z][0-9]{5}",
        "(?:[A-Z]{2}[0-9]{4})+",  # a repeated group of fixed length cannot backtrack badly
        "[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}",  # unified social credit code
        r"\\1",  # an escaped backslash and a 1, not a backreference
        r"[\1]",  # an octal escape in a class
        r"\101[0-9]",  # an octal escape (A) outside a class
        "(?x) [0-9]{6} # ) in a verbose comment",
        "x" * 512,
    ],
)
def test_patterns_that_pass(pattern: str) -> None:
    assert check_licence_type(with_field(format=REGEX, pattern=pattern, max_length=0)) == []


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("", "required when format is REGEX"),
        ("x" * 513, "at most 512"),
        ("[0-9", "does not compile"),
        ("a{99999999999}", "does not compile"),
        (r"(?u)\d", "does not compile"),
        (r"([a-z])\1", "backreference \\1"),
        ("(?P<c>[a-z])(?P=c)", "named backreference"),
        ("[0-9]+(?=元)", "lookahead"),
        ("(?![0-9])[a-z]+", "negative lookahead"),
        ("(?<=¥)[0-9]+", "lookbehind"),
        ("(?<!-)[0-9]+", "negative lookbehind"),
        ("(a)?(?(1)b|c)", "conditional"),
        ("([a-z]+)*", "exponential"),
        ("(?:[0-9]+-?)+", "exponential"),
        ("((a+)b){2,}", "exponential"),
    ],
)
def test_patterns_that_fail(pattern: str, problem: str) -> None:
    [violation] = check_licence_type(with_field(format=REGEX, pattern=pattern, max_length=0))
    assert violation.field == "face_fields[0].pattern"
    assert problem in violation.description


def test_backreferences_and_lookaround_are_refused_as_unbounded_and_not_re2() -> None:
    [violation] = check_licence_type(with_field(format=REGEX, pattern=r"(a)\1"))
    assert violation.description == (
        "pattern uses the backreference \\1, "
        "which RE2 lacks because it makes matching time unbounded"
    )


def test_only_regex_fields_have_a_pattern() -> None:
    assert paths(check_licence_type(with_field(pattern="[0-9]+"))) == ["face_fields[0].pattern"]


@pytest.mark.parametrize(
    "values",
    [["个体"], [f"业态{i}" for i in range(256)], ["x" * GENERAL_MAX_VALUE]],
)
def test_enum_values_that_pass(values: list[str]) -> None:
    assert check_licence_type(with_field(format=ENUM, max_length=0, allowed_values=values)) == []


@pytest.mark.parametrize(
    ("values", "path"),
    [
        ([], "face_fields[0].allowed_values"),
        ([f"业态{i}" for i in range(257)], "face_fields[0].allowed_values"),
        (["个体", ""], "face_fields[0].allowed_values[1]"),
        (["个体", "企业", "个体"], "face_fields[0].allowed_values[2]"),
        (["个体 "], "face_fields[0].allowed_values[0]"),
        (["个体\n户"], "face_fields[0].allowed_values[0]"),
        (["x" * 201], "face_fields[0].allowed_values[0]"),  # over the field's max_length 200
    ],
)
def test_enum_values_that_fail(values: list[str], path: str) -> None:
    assert paths(check_licence_type(with_field(format=ENUM, allowed_values=values))) == [path]


def test_enum_fields_have_no_pattern_and_only_enum_fields_have_values() -> None:
    enum_with_pattern = with_field(format=ENUM, allowed_values=["个体"], pattern="个体")
    assert paths(check_licence_type(enum_with_pattern)) == ["face_fields[0].pattern"]
    string_with_values = with_field(allowed_values=["个体"])
    assert paths(check_licence_type(string_with_values)) == ["face_fields[0].allowed_values"]


def test_every_problem_of_a_type_is_reported_at_once() -> None:
    licence_type = food_business_licence()
    licence_type.licence_type_code = "jy"
    licence_type.name = ""
    licence_type.face_fields[1].name = "Legal"
    licence_type.face_fields[1].label_zh = ""
    licence_type.face_fields[3].pattern = "[0-9]+"
    licence_type.face_fields[6].allowed_values.append("单位食堂")
    licence_type.face_fields[7].pattern = r"(\d)\1"
    licence_type.face_fields[7].max_length = 5000
    licence_type.face_fields[7].name = "business_scope"
    assert paths(check_licence_type(licence_type)) == [
        "licence_type_code",
        "name",
        "face_fields[1].name",
        "face_fields[1].label_zh",
        "face_fields[3].pattern",
        "face_fields[6].allowed_values[3]",
        "face_fields[7].max_length",
        "face_fields[7].pattern",
        "face_fields[7].name",  # the duplicate
    ]


def test_field_paths_take_a_prefix() -> None:
    licence_type = food_business_licence()
    licence_type.licence_type_code = ""
    licence_type.face_fields[2].name = ""
    assert paths(check_licence_type(licence_type, field_prefix="licence_type")) == [
        "licence_type.licence_type_code",
        "licence_type.face_fields[2].name",
    ]


# --- check_face_fields ------------------------------------------------------------------


def test_a_complete_licence_passes() -> None:
    assert check_face_fields(food_business_licence(), faces(VALID_LICENCE)) == []


def test_optional_fields_may_be_left_out_and_any_order_is_accepted() -> None:
    required_only = {
        "legal_representative": VALID_LICENCE["legal_representative"],
        "business_scope": VALID_LICENCE["business_scope"],
    }
    assert check_face_fields(food_business_licence(), faces(required_only)) == []
    reversed_order = dict(reversed(VALID_LICENCE.items()))
    assert check_face_fields(food_business_licence(), faces(reversed_order)) == []


def test_a_missing_required_field_is_named() -> None:
    values = dict(VALID_LICENCE)
    del values["legal_representative"]
    assert check_face_fields(food_business_licence(), faces(values)) == [
        Violation("face_fields", "required face field 'legal_representative' is missing")
    ]


def test_unknown_empty_and_duplicate_names() -> None:
    fields = [*faces(VALID_LICENCE), *faces({"capital": "1", "": "x", "residence": "上海"})]
    assert check_face_fields(food_business_licence(), fields) == [
        Violation("face_fields[8].name", "licence type JY has no face field 'capital'"),
        Violation("face_fields[9].name", "face field name is empty"),
        Violation("face_fields[10].name", "face field 'residence' duplicates face_fields[2]"),
    ]


def test_an_optional_field_sent_empty_is_a_violation() -> None:
    values = {**VALID_LICENCE, "residence": ""}
    assert check_face_fields(food_business_licence(), faces(values)) == [
        Violation("face_fields[2].value", "value of 'residence' is empty")
    ]


@pytest.mark.parametrize(
    "value",
    ["张\n伟", "张\t伟", "张\r伟", "张\x00伟", "张\x7f伟", "张\x85伟", "张\u2028伟", "张\u202e伟"],
)
def test_values_have_no_control_characters(value: str) -> None:
    values = {**VALID_LICENCE, "legal_representative": value}
    [violation] = check_face_fields(food_business_licence(), faces(values))
    assert violation.field == "face_fields[1].value"
    assert f"control character U+{ord(value[1]):04X}" in violation.description


@pytest.mark.parametrize("value", [" 张伟", "张伟 ", "\u3000张伟", "张伟\u00a0"])
def test_values_have_no_surrounding_whitespace(value: str) -> None:
    values = {**VALID_LICENCE, "legal_representative": value}
    assert check_face_fields(food_business_licence(), faces(values)) == [
        Violation(
            "face_fields[1].value",
            "value of 'legal_representative' has leading or trailing whitespace",
        )
    ]


def test_inner_spaces_are_fine() -> None:
    values = {**VALID_LICENCE, "legal_representative": "Zhang Wei 张伟"}
    assert check_face_fields(food_business_licence(), faces(values)) == []


def test_value_length_counts_code_points_not_bytes() -> None:
    licence_type = food_business_licence()
    scope = "食" * 200  # 600 bytes of UTF-8, within max_length 200
    assert check_face_fields(licence_type, faces({**VALID_LICENCE, "business_scope": scope})) == []
    assert check_face_fields(
        licence_type, faces({**VALID_LICENCE, "business_scope": scope + "品"})
    ) == [
        Violation(
            "face_fields[0].value",
            "value of 'business_scope' is 201 code points long; at most 200 are allowed",
        )
    ]


def test_without_max_length_the_general_limit_applies() -> None:
    licence_type = food_business_licence()
    name = "张" * GENERAL_MAX_VALUE
    values = {**VALID_LICENCE, "legal_representative": name}
    assert check_face_fields(licence_type, faces(values)) == []
    values["legal_representative"] = name + "伟"
    assert paths(check_face_fields(licence_type, faces(values))) == ["face_fields[1].value"]


def check_one(name: str, value: str) -> list[Violation]:
    return check_face_fields(food_business_licence(), faces({**VALID_LICENCE, name: value}))


@pytest.mark.parametrize("value", ["2024-02-29", "2000-02-29", "0001-01-01", "9999-12-31"])
def test_dates_that_pass(value: str) -> None:
    assert check_one("established_on", value) == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2023-02-29", "is not a real calendar date"),
        ("1900-02-29", "is not a real calendar date"),
        ("2024-13-01", "is not a real calendar date"),
        ("0000-01-01", "is not a real calendar date"),
        ("2024-2-9", "YYYY-MM-DD"),
        ("2024/02/29", "YYYY-MM-DD"),
        ("20240229", "YYYY-MM-DD"),
        ("２０２４-02-29", "YYYY-MM-DD"),  # full-width digits
        ("2024-02-29T00:00", "YYYY-MM-DD"),
        ("2024年2月29日", "YYYY-MM-DD"),
    ],
)
def test_dates_that_fail(value: str, problem: str) -> None:
    [violation] = check_one("established_on", value)
    assert violation.field == "face_fields[4].value"
    assert problem in violation.description


@pytest.mark.parametrize("value", ["0", "7", "-12", "1200", "98765432109876543210"])
def test_integers_that_pass(value: str) -> None:
    assert check_one("employee_count", value) == []


@pytest.mark.parametrize("value", ["007", "+5", "1.0", "1e3", "1 000", "1,000", "-", "１２", "٣"])
def test_integers_that_fail(value: str) -> None:
    assert paths(check_one("employee_count", value)) == ["face_fields[5].value"]


@pytest.mark.parametrize("value", ["500.00", "0", "0.5", "-3", "-0.25", "1200"])
def test_decimals_that_pass(value: str) -> None:
    assert check_one("registered_capital", value) == []


@pytest.mark.parametrize(
    "value", [".5", "5.", "01.0", "+1.0", "1,000.00", "1e5", "５００.00", "500.00元", "NaN"]
)
def test_decimals_that_fail(value: str) -> None:
    assert paths(check_one("registered_capital", value)) == ["face_fields[3].value"]


def test_regex_values_must_match_whole() -> None:
    assert check_one("postcode", "200120") == []
    for value in ["20012", "2001200", "x200120", "２００１２０"]:
        assert check_one("postcode", value) == [
            Violation("face_fields[7].value", "value of 'postcode' must fully match [0-9]{6}")
        ]


def test_regex_digit_classes_are_ascii_as_in_re2() -> None:
    licence_type = food_business_licence()
    licence_type.face_fields[7].pattern = r"\d{6}"
    assert check_face_fields(licence_type, faces({**VALID_LICENCE, "postcode": "200120"})) == []
    full_width = faces({**VALID_LICENCE, "postcode": "２００１２０"})
    assert paths(check_face_fields(licence_type, full_width)) == ["face_fields[7].value"]


def test_a_pattern_that_does_not_compile_fails_closed() -> None:
    # A type stored without check_licence_type must not let values through unchecked.
    licence_type = food_business_licence()
    licence_type.face_fields[7].pattern = "[0-9"
    assert paths(check_face_fields(licence_type, faces(VALID_LICENCE))) == ["face_fields[7].value"]


def test_enum_values() -> None:
    assert check_one("business_type", "单位食堂") == []
    assert check_one("business_type", "食品生产者") == [
        Violation(
            "face_fields[6].value",
            "value of 'business_type' must be one of: 食品销售经营者, 餐饮服务经营者, 单位食堂",
        )
    ]


def test_every_problem_of_a_licence_is_reported_at_once() -> None:
    fields = faces(
        {
            "postcode": "20012",
            "residence": "上海市\n浦东新区",
            "registered_capital": "500.00",
            "established_on": "2023-02-29",
            "fax": "021-12345678",
            "employee_count": "042",
            "residence ": "上海",
            "business_type": "单位食堂 ",
        }
    )
    fields.append(licence_pb2.FaceField(name="postcode", value="200120"))
    assert check_face_fields(food_business_licence(), fields) == [
        Violation("face_fields[0].value", "value of 'postcode' must fully match [0-9]{6}"),
        Violation(
            "face_fields[1].value", "value of 'residence' contains the control character U+000A"
        ),
        Violation("face_fields[3].value", "value of 'established_on' is not a real calendar date"),
        Violation("face_fields[4].name", "licence type JY has no face field 'fax'"),
        Violation(
            "face_fields[5].value",
            "value of 'employee_count' must be a base-10 integer without leading zeros, e.g. -12",
        ),
        Violation("face_fields[6].name", "licence type JY has no face field 'residence '"),
        Violation(
            "face_fields[7].value", "value of 'business_type' has leading or trailing whitespace"
        ),
        Violation("face_fields[8].name", "face field 'postcode' duplicates face_fields[0]"),
        Violation("face_fields", "required face field 'business_scope' is missing"),
        Violation("face_fields", "required face field 'legal_representative' is missing"),
    ]


def test_face_field_paths_take_a_prefix() -> None:
    values = dict(VALID_LICENCE)
    del values["business_scope"]
    values["postcode"] = "1"
    violations = check_face_fields(
        food_business_licence(), faces(values), field_prefix="amendment.face_fields"
    )
    assert paths(violations) == ["amendment.face_fields[6].value", "amendment.face_fields"]


# --- properties -------------------------------------------------------------------------

# Printable text: no control characters, line separators or bidi controls, nothing to strip.
_BIDI_CONTROLS = "".join(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
_PRINTABLE = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Zl", "Zp"), exclude_characters=_BIDI_CONTROLS
)


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_PRINTABLE, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def _decimal() -> st.SearchStrategy[str]:
    whole = st.integers(-(10**12), 10**12).map(str)
    fraction = st.text("0123456789", min_size=1, max_size=4)
    return whole | st.builds(lambda w, f: f"{w}.{f}", whole, fraction)


_VALUES = {
    "business_scope": _text(200),
    "legal_representative": _text(60),
    "residence": _text(GENERAL_MAX_VALUE),
    "registered_capital": _decimal(),
    "established_on": st.dates().map(datetime.date.isoformat),
    "employee_count": st.integers().map(str),
    "business_type": st.sampled_from(BUSINESS_TYPES),
    "postcode": st.from_regex("[0-9]{6}", fullmatch=True),
}
_REQUIRED = ["business_scope", "legal_representative"]


@st.composite
def _licences(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Face fields satisfying the food type's schema, optional ones included at random."""
    values = draw(
        st.fixed_dictionaries(
            {name: _VALUES[name] for name in _REQUIRED},
            optional={name: s for name, s in _VALUES.items() if name not in _REQUIRED},
        )
    )
    return draw(st.permutations(list(values.items())))


@settings(max_examples=150, deadline=None)
@given(_licences())
def test_any_licence_that_satisfies_the_schema_passes(fields: list[tuple[str, str]]) -> None:
    assert check_face_fields(food_business_licence(), faces(dict(fields))) == []


@settings(max_examples=100, deadline=None)
@given(_licences(), st.sampled_from(_REQUIRED))
def test_dropping_a_required_field_is_exactly_one_violation(
    fields: list[tuple[str, str]], dropped: str
) -> None:
    values = {name: value for name, value in fields if name != dropped}
    assert check_face_fields(food_business_licence(), faces(values)) == [
        Violation("face_fields", f"required face field {dropped!r} is missing")
    ]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*_VALUES, "other"]), st.text(max_size=30)))
def test_arbitrary_values_give_violations_not_exceptions(values: dict[str, str]) -> None:
    for violation in check_face_fields(food_business_licence(), faces(values)):
        assert violation.field == "face_fields" or violation.field.startswith("face_fields[")
        assert violation.description


@pytest.mark.filterwarnings("ignore:Possible:FutureWarning")  # re on "[[" or "&&" in a set
@settings(max_examples=300, deadline=None)
@given(st.text("()[]{}?*+|\\^$.:=!<>#,-aP019x", max_size=24))
def test_arbitrary_patterns_give_violations_not_exceptions(pattern: str) -> None:
    licence_type = with_field(format=REGEX, pattern=pattern)
    for violation in check_licence_type(licence_type):
        assert violation.field == "face_fields[0].pattern"
