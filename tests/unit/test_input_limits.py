"""application/limits.py: the byte scanner agrees with the document, and decode refuses exactly
what breaks a limit, naming where."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from application import limits
from application.limits import MAX_DEPTH, MAX_ITEMS, MAX_STRING_CHARS, BadInputError

# strings full of what a byte scanner could mistake for structure
TRICKY = st.text(alphabet='[]{}"\\:,ab\u00e9\U0001f600 ', max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TRICKY
)


def documents(max_leaves: int = 30) -> st.SearchStrategy[Any]:
    return st.recursive(
        SCALARS,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TRICKY, inner, max_size=4),
        max_leaves=max_leaves,
    )


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def wrapped(value: Any, levels: int) -> Any:
    for n in range(levels):
        value = [value] if n % 2 else {"k": value}
    return value


@settings(max_examples=300, deadline=None)
@given(documents(), st.integers(0, 70))
def test_the_depth_found_on_the_bytes_is_the_depth_of_the_document(document, extra):
    document = wrapped(document, extra)
    raw = json.dumps(document, ensure_ascii=False).encode()
    try:
        limits.decode(raw)
        refused = False
    except BadInputError as error:
        refused = "max_depth" in error.details
    assert refused == (depth(document) > MAX_DEPTH)


@settings(max_examples=200, deadline=None)
@given(documents())
def test_a_document_within_the_limits_decodes_as_msgspec_decodes_it(document):
    raw = json.dumps(document).encode()
    if depth(document) <= MAX_DEPTH:
        assert limits.decode(raw) == msgspec.json.decode(raw)


def refusal(raw: bytes | str) -> BadInputError:
    with pytest.raises(BadInputError) as caught:
        limits.decode(raw.encode() if isinstance(raw, str) else raw)
    return caught.value


def test_depth_is_refused_at_the_first_container_past_the_limit():
    raw = '{"a": [1, {"b c": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}]}"
    error = refusal(raw)
    assert error.code == "VALIDATION_INVALID_FORMAT"
    assert error.details == {"field": '$.a[1]["b c"]' + "[0]" * (MAX_DEPTH - 3), "max_depth": 64}


def test_text_that_opens_thousands_of_containers_and_never_closes_them_is_refused():
    assert refusal("[" * 100_000).code == "VALIDATION_INVALID_FORMAT"
    assert refusal('{"a": ' * 50_000).code == "VALIDATION_INVALID_FORMAT"


@pytest.mark.parametrize(
    ("document", "code", "field"),
    [
        ({"a": ["x", "y\x00"]}, "VALIDATION_INVALID_FORMAT", "$.a[1]"),
        ({"a": {"\x00": 1}}, "VALIDATION_INVALID_FORMAT", '$.a["\\u0000"]'),
        ({"a": "x" * (MAX_STRING_CHARS + 1)}, "VALIDATION_VALUE_TOO_LONG", "$.a"),
        ({"k" * (MAX_STRING_CHARS + 1): 1}, "VALIDATION_VALUE_TOO_LONG", "$"),
        ({"a": list(range(MAX_ITEMS + 1))}, "VALIDATION_VALUE_TOO_LONG", "$.a"),
        ({"a": [2**63]}, "VALIDATION_ERROR", "$.a[0]"),
        ({"a": [-(2**63) - 1]}, "VALIDATION_ERROR", "$.a[0]"),
    ],
)
def test_a_value_past_a_limit_is_refused_with_its_path(document, code, field):
    error = refusal(json.dumps(document))
    assert (error.code, error.details["field"]) == (code, field), error.details


def test_the_largest_values_within_the_limits_pass():
    document = {
        "s": "x" * MAX_STRING_CHARS,
        "list": list(range(MAX_ITEMS)),
        "ints": [2**63 - 1, -(2**63)],
        "escaped": "\\u0000 is six characters here",
    }
    assert limits.decode(json.dumps(document).encode()) == document


def test_a_number_msgspec_cannot_hold_is_refused_with_its_path():
    error = refusal('{"a": {"b": [1, 1' + "0" * 5_000 + "]}}")
    assert (error.code, error.details["field"]) == ("VALIDATION_ERROR", "$.a.b[1]")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ('{"a": "x\\ud800"}', "$.a"),
        ('{"a": ["\\udc00 and more text"]}', "$.a[0]"),
        ('{"a": {"b": [1 2]}}', "$.a.b[0]"),
        ('{"a": [1, 2', "$.a[1]"),
    ],
)
def test_malformed_json_is_refused_with_where_it_breaks(raw, field):
    error = refusal(raw)
    assert (error.code, error.details["field"]) == ("VALIDATION_INVALID_FORMAT", field)


def test_a_typed_decode_keeps_msgspecs_own_validation_error():
    class Shape(msgspec.Struct):
        n: int

    with pytest.raises(msgspec.ValidationError):
        limits.decode(b'{"n": "x"}', Shape)


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"a": ('x\\"' * 40_000)[: MAX_STRING_CHARS + 1]}, "$.a"),  # escaped quotes inside
        ({"a": {f"k{n}": [n, {"b": "[,]"}] for n in range(MAX_ITEMS + 1)}}, "$.a"),
        ({"a": [[], [[","] * 3, [0] * (MAX_ITEMS + 1)]]}, "$.a[1][1]"),
    ],
)
def test_a_string_or_container_too_large_is_found_whatever_surrounds_it(document, field):
    error = refusal(json.dumps(document))
    assert (error.code, error.details["field"]) == ("VALIDATION_VALUE_TOO_LONG", field)


def test_commas_brackets_and_multibyte_characters_inside_strings_do_not_count():
    document = {
        "a": ["[,{,},]" * 3] * MAX_ITEMS,
        "b": "\u00e9" * MAX_STRING_CHARS,  # twice as many bytes as characters
        "c": '\\"' * (MAX_STRING_CHARS // 2),
    }
    assert limits.decode(json.dumps(document, ensure_ascii=False).encode()) == document
