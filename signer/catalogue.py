"""The licence type catalogue (证照目录): checking types and the face fields of licences.

`check_licence_type` checks a catalogue entry before it is registered;
`FaceFieldSchema` checks a licence's face fields against its type on every
issuance, so it stays cheap: the type's rules read out of its message once, a few
precompiled regular expressions per value, and patterns cached once compiled
(`check_face_fields` does the same for a one-off check). Both return every problem
found, as `Violation`s that name the request field at fault, and know nothing about
gRPC.

Decisions a reader needs to know:

* **Text** (names, labels, values) is printed one line per field, so it may not
  contain C0/C1 control characters (``\\n`` and ``\\t`` included), the Unicode
  line and paragraph separators, or bidirectional embedding, override and
  isolate controls (which make printed text read differently from what was
  signed). Leading or trailing whitespace, full-width U+3000 included, is
  refused rather than stripped: the signed value is the printed value. Lengths
  count Unicode code points, so 经营范围 is 4 long, not 12.
* **Patterns** are compiled with Python's `re`, but the proto promises RE2
  syntax, so RE2's semantics are kept where they differ cheaply: ``re.ASCII``
  makes ``\\d``, ``\\w`` and ``\\s`` ASCII-only as in RE2 (``\\d{6}`` must not
  accept full-width digits). RE2 matches in linear time; Python backtracks. So
  constructs RE2 lacks and that make matching unbounded (backreferences,
  lookaround, conditionals) are refused, and so is a repeated group containing
  a variable repetition, such as ``([a-z]+)*``, the usual shape of exponential
  backtracking. That check is a heuristic: ``(a|a)*`` still passes, and values
  being at most a few thousand code points long bounds polynomial cases only.
"""

from __future__ import annotations

import datetime
import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from licenceledger.licence.v1 import licence_pb2
from licenceledger.registry.v1 import registry_pb2

GENERAL_MAX_VALUE = 1024
"""Longest face field value, in code points, when the field's `max_length` is 0."""

MAX_FIELD_MAX_LENGTH = 4096
MAX_FACE_FIELDS = 64
MAX_ALLOWED_VALUES = 256
MAX_PATTERN_LENGTH = 512
MAX_CODE_LENGTH = 32
MAX_NAME = 64
MAX_NAME_EN = 128
MAX_LABEL_ZH = 32
MAX_LABEL_EN = 64  # twice the Chinese label, as for names: English takes more letters

_STRING = registry_pb2.FACE_FIELD_FORMAT_STRING
_DATE = registry_pb2.FACE_FIELD_FORMAT_DATE
_INTEGER = registry_pb2.FACE_FIELD_FORMAT_INTEGER
_DECIMAL = registry_pb2.FACE_FIELD_FORMAT_DECIMAL
_REGEX = registry_pb2.FACE_FIELD_FORMAT_REGEX
_ENUM = registry_pb2.FACE_FIELD_FORMAT_ENUM
_KNOWN_FORMATS = frozenset((_STRING, _DATE, _INTEGER, _DECIMAL, _REGEX, _ENUM))

# Explicit [0-9] rather than \d, which also matches non-ASCII digits; fullmatch rather
# than $, which also matches before a trailing newline.
_CODE = re.compile(r"[0-9A-Z]+")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_DATE_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_INTEGER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)")
_DECIMAL_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")
_FORBIDDEN_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class Violation:
    """One problem with a request, e.g. ``face_fields[2].value``: what is wrong with it."""

    field: str
    description: str


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _text_problem(text: str, max_length: int) -> str | None:
    """What makes `text` unfit to print as one field, if anything (`text` is not echoed:
    face field values may be personal data, and violations end up in logs)."""
    if not text:
        return "is empty"
    forbidden = _FORBIDDEN_CHAR.search(text)
    if forbidden:
        return f"contains the control character U+{ord(forbidden.group()):04X}"
    if text != text.strip():
        return "has leading or trailing whitespace"
    if len(text) > max_length:
        return f"is {len(text)} code points long; at most {max_length} are allowed"
    return None


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.ASCII)


_QUANTIFIER = re.compile(r"[*+?]|\{([0-9]*)(?:(,)([0-9]*))?\}")
# Python reads a 1-prefixed run of three octal digits as a character, not a group number.
_OCTAL_ESCAPE = re.compile(r"[1-7][0-7]{2}")
_NAMED_CHARACTER = re.compile(r"N\{[^}]*\}")
# What follows "(" before a group's content: "(?:", "(?P<name>", "(?i:", "(?>", ...
_GROUP_OPENING = re.compile(r"\((?:\?(?:P<\w+>|>|[aiLmsux-]*:?))?")
_UNBOUNDED_GROUPS = {
    "(?=": "lookahead (?=",
    "(?!": "negative lookahead (?!",
    "(?<=": "lookbehind (?<=",
    "(?<!": "negative lookbehind (?<!",
    "(?P=": "the named backreference (?P=",
    "(?(": "the conditional group (?(",
}
_UNBOUNDED = ", which RE2 lacks because it makes matching time unbounded"
_NESTED = (
    "repeats a group that contains a repetition of variable length, as in ([a-z]+)*, "
    "which a backtracking matcher can take exponential time to match; rewrite it unnested"
)


def _class_end(pattern: str, start: int) -> int:
    """Index just past the character class opening at `start`, by Python's rules
    (a ``]`` first in the class, after an optional ``^``, is a literal)."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1


def _quantifier_bounds(quantifier: re.Match[str]) -> tuple[int, int | None]:
    """Least and most repetitions (None: unbounded) of a quantifier `_QUANTIFIER` found."""
    text, low, comma, high = quantifier.group(), *quantifier.groups()
    if text in ("*", "+", "?"):
        return (1 if text == "+" else 0), (1 if text == "?" else None)
    least = int(low or 0)
    if not comma:
        return least, least
    return least, int(high) if high else None


def _backtracking_hazard(pattern: str) -> str | None:
    """Why matching `pattern` could take unbounded time, if it could.

    Only called on patterns that compile, so the syntax is valid Python `re`.
    """
    # For each open group: does it contain a repetition of variable length?
    variable_inside = [False]
    after_variable_group = False  # the atom just read is a group containing one
    i = 0
    while i < len(pattern):
        quantifier = _QUANTIFIER.match(pattern, i)
        if quantifier and quantifier.group() != "{}":  # Python reads "{}" as literal
            least, most = _quantifier_bounds(quantifier)
            if after_variable_group and (most is None or most > 1):
                return _NESTED
            if most != least:
                variable_inside[-1] = True
            i = quantifier.end()
            if pattern.startswith(("?", "+"), i):  # lazy or possessive, not another repeat
                i += 1
            after_variable_group = False
            continue
        after_variable_group = False
        char = pattern[i]
        if char == "\\":
            following = pattern[i + 1 : i + 2]
            if _OCTAL_ESCAPE.match(pattern, i + 1):
                i += 4
            elif "1" <= following <= "9":
                return f"uses the backreference \\{following}{_UNBOUNDED}"
            else:
                named = _NAMED_CHARACTER.match(pattern, i + 1)
                i = named.end() if named else i + 2
        elif char == "[":
            i = _class_end(pattern, i)
        elif pattern.startswith("(?#", i):  # a comment, which holds anything but ")"
            i = pattern.index(")", i) + 1
        elif char == "(":
            for opening, what in _UNBOUNDED_GROUPS.items():
                if pattern.startswith(opening, i):
                    return f"uses {what}{_UNBOUNDED}"
            variable_inside.append(False)
            opening_match = _GROUP_OPENING.match(pattern, i)
            i = opening_match.end() if opening_match else i + 1
        elif char == ")" and len(variable_inside) > 1:  # in verbose mode, ")" may be a comment
            after_variable_group = variable_inside.pop()
            variable_inside[-1] = variable_inside[-1] or after_variable_group
            i += 1
        else:
            i += 1
    return None


def _pattern_problem(pattern: str) -> str | None:
    if not pattern:
        return "is required when format is REGEX"
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH} are allowed"
    try:
        _compiled(pattern)
    # Not only re.error: an oversized repeat count raises OverflowError, "(?u)" ValueError.
    except (re.error, OverflowError, ValueError) as error:
        return f"does not compile: {error}"
    return _backtracking_hazard(pattern)


def _check_spec(spec: registry_pb2.FaceFieldSpec, path: str) -> list[Violation]:
    found: list[Violation] = []

    def add(field: str, description: str) -> None:
        found.append(Violation(f"{path}.{field}", description))

    if not _FIELD_NAME.fullmatch(spec.name):
        add("name", "face field name must be lower snake case: [a-z][a-z0-9_]{0,63}")
    problem = _text_problem(spec.label_zh, MAX_LABEL_ZH)
    if problem:
        add("label_zh", f"Chinese label {problem}")
    problem = _text_problem(spec.label_en, MAX_LABEL_EN) if spec.label_en else None
    if problem:
        add("label_en", f"English label {problem}")
    if spec.format == registry_pb2.FACE_FIELD_FORMAT_UNSPECIFIED:
        add("format", "format is required")
    elif spec.format not in _KNOWN_FORMATS:
        add("format", f"format {spec.format} is not a known FaceFieldFormat")
    if spec.max_length > MAX_FIELD_MAX_LENGTH:
        add("max_length", f"max_length must be at most {MAX_FIELD_MAX_LENGTH}")

    if spec.format == _REGEX:
        problem = _pattern_problem(spec.pattern)
        if problem:
            add("pattern", f"pattern {problem}")
    elif spec.pattern:
        add("pattern", "pattern must be empty unless format is REGEX")

    if spec.format != _ENUM:
        if spec.allowed_values:
            add("allowed_values", "allowed_values must be empty unless format is ENUM")
        return found
    count = len(spec.allowed_values)
    if not 1 <= count <= MAX_ALLOWED_VALUES:
        add("allowed_values", f"ENUM needs 1 to {MAX_ALLOWED_VALUES} allowed values, not {count}")
    # Each allowed value must itself pass check_face_fields, or it could never be issued.
    longest = spec.max_length or GENERAL_MAX_VALUE
    first_index: dict[str, int] = {}
    for j, value in enumerate(spec.allowed_values):
        problem = _text_problem(value, longest)
        if problem:
            add(f"allowed_values[{j}]", f"allowed value {problem}")
        elif value in first_index:
            add(f"allowed_values[{j}]", f"duplicates allowed_values[{first_index[value]}]")
        else:
            first_index[value] = j
    return found


def check_licence_type(
    licence_type: registry_pb2.LicenceType, *, field_prefix: str = ""
) -> list[Violation]:
    """Every problem with a catalogue entry about to be registered.

    Field paths are those of RegisterLicenceTypeRequest (``face_fields[3].name``),
    after `field_prefix` and a dot when the type is nested in another message.
    """
    found: list[Violation] = []
    code = licence_type.licence_type_code
    if not (len(code) <= MAX_CODE_LENGTH and _CODE.fullmatch(code)):
        found.append(
            Violation(
                _join(field_prefix, "licence_type_code"),
                f"licence type code must be 1 to {MAX_CODE_LENGTH} characters of ASCII 0-9 and A-Z",
            )
        )
    problem = _text_problem(licence_type.name, MAX_NAME)
    if problem:
        found.append(Violation(_join(field_prefix, "name"), f"Chinese name {problem}"))
    problem = _text_problem(licence_type.name_en, MAX_NAME_EN) if licence_type.name_en else None
    if problem:
        found.append(Violation(_join(field_prefix, "name_en"), f"English name {problem}"))

    fields_path = _join(field_prefix, "face_fields")
    count = len(licence_type.face_fields)
    if not 1 <= count <= MAX_FACE_FIELDS:
        found.append(
            Violation(
                fields_path, f"a licence type needs 1 to {MAX_FACE_FIELDS} face fields, not {count}"
            )
        )
    first_index: dict[str, int] = {}
    for i, spec in enumerate(licence_type.face_fields):
        path = f"{fields_path}[{i}]"
        found.extend(_check_spec(spec, path))
        if spec.name in first_index:
            found.append(
                Violation(
                    f"{path}.name",
                    f"face field name {spec.name!r} duplicates "
                    f"{fields_path}[{first_index[spec.name]}].name",
                )
            )
        else:
            first_index[spec.name] = i
    return found


def _value_problem(
    spec: registry_pb2.FaceFieldSpec, value: str, max_length: int, fmt: int
) -> str | None:
    """What is wrong with `value` for the field `spec` describes, if anything.

    `max_length` and `fmt` are the spec's own, read out of it once per schema.
    """
    problem = _text_problem(value, max_length)
    if problem:
        return problem
    if fmt == _STRING:
        return None
    if fmt == _DATE:
        parts = _DATE_TEXT.fullmatch(value)
        if not parts:
            return "must be a date written YYYY-MM-DD"
        try:
            datetime.date(int(parts[1]), int(parts[2]), int(parts[3]))
        except ValueError:
            return "is not a real calendar date"
        return None
    if fmt == _INTEGER:
        ok = _INTEGER_TEXT.fullmatch(value)
        return None if ok else "must be a base-10 integer without leading zeros, e.g. -12"
    if fmt == _DECIMAL:
        ok = _DECIMAL_TEXT.fullmatch(value)
        return None if ok else "must be a decimal number without leading zeros, e.g. 500.00"
    if fmt == _ENUM:
        if value in spec.allowed_values:
            return None
        allowed = spec.allowed_values
        if len(allowed) <= 8:
            return "must be one of: " + ", ".join(allowed)
        return f"must be one of the {len(allowed)} allowed values"
    if fmt == _REGEX:
        try:
            matcher = _compiled(spec.pattern)
        except (re.error, OverflowError, ValueError):
            # Fail closed: a type registered before its pattern was checked cannot vouch
            # for any value.
            return "cannot be checked: the licence type's pattern does not compile"
        return None if matcher.fullmatch(value) else f"must fully match {spec.pattern}"
    return f"cannot be checked: the licence type gives the field format {fmt}"


class FaceFieldSchema:
    """A licence type's face-field rules, read out of its message once.

    Issuance checks every request against one of a few types; reading each spec's
    attributes out of the protobuf message every time cost more than the checks.
    The type message must not change while the schema is in use.
    """

    __slots__ = ("_required", "_rules", "_type_code")

    def __init__(self, licence_type: registry_pb2.LicenceType) -> None:
        self._type_code = licence_type.licence_type_code
        self._rules = {
            spec.name: (spec, spec.max_length or GENERAL_MAX_VALUE, spec.format)
            for spec in licence_type.face_fields
        }
        self._required = tuple(spec.name for spec in licence_type.face_fields if spec.required)

    def problems(
        self, fields: Sequence[licence_pb2.FaceField], field_prefix: str = "face_fields"
    ) -> list[Violation]:
        """Every problem with a licence's face fields under this schema.

        Fields may come in any order (the request's order is the printing order and
        is kept); optional fields may be left out, but not sent empty.
        """
        rules = self._rules
        found: list[Violation] = []
        first_index: dict[str, int] = {}
        for i, field in enumerate(fields):
            name = field.name
            rule = rules.get(name)
            if rule is None:
                description = (
                    "face field name is empty"
                    if not name
                    else f"licence type {self._type_code} has no face field {name!r}"
                )
                found.append(Violation(f"{field_prefix}[{i}].name", description))
                continue
            if name in first_index:
                found.append(
                    Violation(
                        f"{field_prefix}[{i}].name",
                        f"face field {name!r} duplicates {field_prefix}[{first_index[name]}]",
                    )
                )
            else:
                first_index[name] = i
            problem = _value_problem(rule[0], field.value, rule[1], rule[2])
            if problem:
                found.append(
                    Violation(f"{field_prefix}[{i}].value", f"value of {name!r} {problem}")
                )
        for name in self._required:
            if name not in first_index:
                found.append(Violation(field_prefix, f"required face field {name!r} is missing"))
        return found


def check_face_fields(
    licence_type: registry_pb2.LicenceType,
    fields: Sequence[licence_pb2.FaceField],
    *,
    field_prefix: str = "face_fields",
) -> list[Violation]:
    """Every problem with a licence's face fields under its type's schema (see
    `FaceFieldSchema`, which a caller checking many licences of one type keeps)."""
    return FaceFieldSchema(licence_type).problems(fields, field_prefix)
