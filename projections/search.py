"""Seed 000's search syntax, parsed into a small AST that each view compiles to SQL.

Syntax: words, ``"exact phrase"``, ``prefix*``, ``AND``/``OR``/``NOT`` (upper case; juxtaposed
terms are joined by AND; NOT binds tightest, then AND, then OR), parentheses, and ``field:value``
where the field is ``title``, ``description`` or ``tag`` (also ``tags``); the value may be a phrase.

Text is split into tokens of letters and digits and lower-cased here, in one place, and the views
index the same tokens, so SQLite (FTS5) and Postgres (tsvector, ``simple``) answer identically. A
term with no letters or digits (``!!!``) is dropped; a query of nothing but those means no filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FIELDS = {"title": "title", "description": "description", "tag": "tags", "tags": "tags"}
OPERATORS = frozenset({"AND", "OR", "NOT"})
MAX_LENGTH = 1_000
MAX_DEPTH = 32
_TOKEN = re.compile(r"[^\W_]+")
_FIELD = re.compile(r"^(title|description|tags?):", re.IGNORECASE)


class SearchSyntaxError(ValueError):
    """The search text is malformed: unbalanced quote or parenthesis, or a lone operator."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def tokens(text: str) -> list[str]:
    """The searchable tokens of a text: runs of letters and digits, lower-cased."""
    return _TOKEN.findall(text.lower())


def index_text(text: str) -> str:
    """What the views index for a field: its tokens separated by single spaces."""
    return " ".join(tokens(text))


@dataclass(frozen=True)
class Term:
    """Adjacent ``words`` (one word or a phrase); the last one a prefix if ``prefix``.

    ``field`` is ``title``, ``description``, ``tags`` or None for all three.
    """

    words: tuple[str, ...]
    field: str | None = None
    prefix: bool = False


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Term | And | Or | Not


@dataclass(frozen=True)
class _Lexeme:
    kind: str  # "word", "phrase", "op", "(", ")"
    text: str
    field: str | None = None


def parse(text: str | None) -> Node | None:
    """The AST of a search text, or None when it asks for nothing. Raises SearchSyntaxError."""
    if text is None:
        return None
    if len(text) > MAX_LENGTH:
        raise SearchSyntaxError(f"search is longer than {MAX_LENGTH} characters")
    lexemes = _lex(text)
    if not lexemes:
        return None
    parser = _Parser(lexemes)
    node = parser.or_expr()
    if parser.peek() is not None:
        raise SearchSyntaxError("unbalanced parenthesis: unexpected ')'")
    return node


def _lex(text: str) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            out.append(_Lexeme(char, char))
            i += 1
        elif char == '"':
            phrase, i = _phrase(text, i)
            out.append(_Lexeme("phrase", phrase))
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in '()"':
                i += 1
            chunk = text[start:i]
            field = _FIELD.match(chunk)
            if field and len(field.group(0)) == len(chunk) and i < n and text[i] == '"':
                phrase, i = _phrase(text, i)
                out.append(_Lexeme("phrase", phrase, FIELDS[field.group(1).lower()]))
            elif chunk in OPERATORS:
                out.append(_Lexeme("op", chunk))
            else:
                out.append(_Lexeme("word", chunk))
    return out


def _phrase(text: str, i: int) -> tuple[str, int]:
    """The text between the quote at ``i`` and its partner, and the index after the partner."""
    end = text.find('"', i + 1)
    if end < 0:
        raise SearchSyntaxError("unbalanced quote: a phrase is not closed")
    return text[i + 1 : end], end + 1


def _word(text: str) -> Term | None:
    field = None
    match = _FIELD.match(text)
    if match:
        field = FIELDS[match.group(1).lower()]
        text = text[match.end() :]
    prefix = text.endswith("*")
    words = tuple(tokens(text.rstrip("*")))
    return Term(words, field, prefix) if words else None


class _Parser:
    def __init__(self, lexemes: list[_Lexeme]) -> None:
        self._lexemes = lexemes
        self._at = 0
        self._depth = 0

    def peek(self) -> _Lexeme | None:
        return self._lexemes[self._at] if self._at < len(self._lexemes) else None

    def _nest(self) -> None:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise SearchSyntaxError(f"search nests deeper than {MAX_DEPTH} levels")

    def _take(self) -> _Lexeme:
        lexeme = self._lexemes[self._at]
        self._at += 1
        return lexeme

    def or_expr(self) -> Node | None:
        items = [self.and_expr()]
        while (ahead := self.peek()) is not None and ahead.text == "OR" and ahead.kind == "op":
            self._take()
            items.append(self.and_expr())
        return _combine(Or, items)

    def and_expr(self) -> Node | None:
        items = [self.not_expr()]
        while (ahead := self.peek()) is not None and ahead.kind != ")" and ahead.text != "OR":
            if ahead.kind == "op" and ahead.text == "AND":
                self._take()
            items.append(self.not_expr())
        return _combine(And, items)

    def not_expr(self) -> Node | None:
        ahead = self.peek()
        if ahead is not None and ahead.kind == "op" and ahead.text == "NOT":
            self._take()
            self._nest()
            inner = self.not_expr()
            self._depth -= 1
            return Not(inner) if inner is not None else None
        return self.primary()

    def primary(self) -> Node | None:
        ahead = self.peek()
        if ahead is None:
            raise SearchSyntaxError("the search ends where a term was expected")
        if ahead.kind == "op":
            raise SearchSyntaxError(f"{ahead.text} needs a term on each side")
        if ahead.kind == ")":
            raise SearchSyntaxError("unbalanced parenthesis or empty group")
        self._take()
        if ahead.kind == "(":
            self._nest()
            inner = self.or_expr()
            self._depth -= 1
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise SearchSyntaxError("unbalanced parenthesis: '(' is not closed")
            self._take()
            return inner
        if ahead.kind == "phrase":
            words = tuple(tokens(ahead.text))
            return Term(words, ahead.field) if words else None
        return _word(ahead.text)


def _combine(kind: type[And] | type[Or], items: list[Node | None]) -> Node | None:
    kept = tuple(item for item in items if item is not None)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else kind(kept)
