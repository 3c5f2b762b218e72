from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.search import And, Not, Or, SearchSyntaxError, Term, index_text, parse


def test_a_word_is_a_term_in_every_field():
    assert parse("authentication") == Term(("authentication",))


def test_words_are_lower_cased():
    assert parse("Authentication") == Term(("authentication",))


def test_juxtaposed_words_are_joined_by_and():
    assert parse("user auth") == And((Term(("user",)), Term(("auth",))))


def test_a_quoted_phrase_keeps_its_words_together():
    assert parse('"user authentication"') == Term(("user", "authentication"))


def test_a_trailing_star_makes_a_prefix():
    assert parse("auth*") == Term(("auth",), prefix=True)


def test_and_binds_tighter_than_or():
    assert parse("a OR b AND c") == Or((Term(("a",)), And((Term(("b",)), Term(("c",))))))


def test_not_binds_tightest():
    assert parse("NOT a b") == And((Not(Term(("a",))), Term(("b",))))


def test_parentheses_group():
    assert parse("(a OR b) c") == And((Or((Term(("a",)), Term(("b",)))), Term(("c",))))


def test_explicit_and_equals_implicit_and():
    assert parse("auth* AND security") == parse("auth* security")


def test_lower_case_operators_are_plain_words():
    assert parse("a and b") == And((Term(("a",)), Term(("and",)), Term(("b",))))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("title:auth", "title"),
        ("description:auth", "description"),
        ("tag:auth", "tags"),
        ("tags:auth", "tags"),
        ("TITLE:auth", "title"),
    ],
)
def test_a_field_restricts_a_term(text, field):
    assert parse(text) == Term(("auth",), field=field)


def test_a_field_takes_a_phrase():
    assert parse('title:"user login"') == Term(("user", "login"), field="title")


def test_a_field_takes_a_prefix():
    assert parse("title:auth*") == Term(("auth",), field="title", prefix=True)


def test_an_unknown_field_is_just_text():
    assert parse("owner:bob") == Term(("owner", "bob"))


def test_punctuation_inside_a_word_makes_a_phrase():
    assert parse("front-end") == Term(("front", "end"))


@pytest.mark.parametrize("text", ["", "   ", "!!!", "NOT ***", "(!!)"])
def test_a_search_without_letters_or_digits_asks_for_nothing(text):
    assert parse(text) is None


def test_none_asks_for_nothing():
    assert parse(None) is None


def test_a_term_without_letters_is_dropped_from_a_combination():
    assert parse("auth AND !!!") == Term(("auth",))


@pytest.mark.parametrize(
    "text",
    [
        '"open',
        'title:"open',
        "(a OR b",
        "a)",
        ")",
        "()",
        "AND",
        "OR",
        "NOT",
        "a AND",
        "OR a",
        "a OR",
        "a AND OR b",
        "NOT AND a",
        "(a) )",
        "a ( )",
    ],
)
def test_malformed_searches_are_refused(text):
    with pytest.raises(SearchSyntaxError):
        parse(text)


def test_a_search_nested_too_deep_is_refused():
    with pytest.raises(SearchSyntaxError):
        parse("(" * 40 + "a" + ")" * 40)


def test_a_search_too_long_is_refused():
    with pytest.raises(SearchSyntaxError):
        parse("a " * 600)


def test_the_error_carries_its_message():
    with pytest.raises(SearchSyntaxError) as caught:
        parse('"open')
    assert "quote" in caught.value.message


def test_indexed_text_uses_the_same_tokens_as_queries():
    assert index_text("Fix the Login-Page, v2!") == "fix the login page v2"


ALPHABET = st.sampled_from(list('ab "()*:-_!') + ["AND", "OR", "NOT", "title:", "tag:", "é"])


@given(st.lists(ALPHABET, max_size=30).map("".join))
def test_random_searches_parse_or_raise_only_syntax_errors(text):
    try:
        parse(text)
    except SearchSyntaxError:
        pass


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_only_syntax_errors(text):
    try:
        parse(text)
    except SearchSyntaxError:
        pass


@given(st.lists(st.sampled_from(["(", "NOT "]), max_size=400).map("".join))
def test_deep_nesting_never_overflows_the_stack(text):
    try:
        parse(text + "a")
    except SearchSyntaxError:
        pass
