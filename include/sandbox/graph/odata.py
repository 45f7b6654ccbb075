"""The OData query options Graph accepts on directory collections, and its opaque tokens.

Only what the emulated endpoints need: ``$select`` (case-insensitive property names, unknown
ones rejected like Graph does), ``$top`` (1..999), a ``$filter`` subset (``eq``/``ne``
comparisons, ``in (...)``, ``startswith``, bare GUID literals, ``and``/``or``, parentheses) with Graph's limit of
15 ``or`` clauses, and skip/delta tokens. Tokens are base64url JSON: opaque to clients, and
they carry the query options so that next/delta links need nothing else (as in Graph).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from include.sandbox.graph import exceptions as errors

MAX_PAGE_SIZE = 999
MAX_OR_CLAUSES = 15


def normalise_query(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Query options by lower-case name without ``$`` (Graph v1.0 also accepts them bare)."""
    options: dict[str, str] = {}
    for key, value in pairs:
        name = key.lower()
        options[name[1:] if name.startswith("$") else name] = value
    return options


def parse_top(options: Mapping[str, str], default: int, maximum: int = MAX_PAGE_SIZE) -> int:
    raw = options.get("top")
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f"Invalid value '{raw}' for $top query option found.", "BadRequest") from None
    if not 1 <= value <= maximum:
        raise errors.invalid_page_size(raw, maximum)
    return value


class PropertyResolver:
    """Maps selected names to the canonical property names of one resource type."""

    def __init__(self, type_name: str, known: Iterable[str], *, strict: bool = True) -> None:
        self.type_name = type_name
        self.strict = strict
        self._by_lower: dict[str, str] = {}
        self.add(known)

    def add(self, names: Iterable[str]) -> None:
        for name in names:
            self._by_lower.setdefault(name.lower(), name)

    def resolve(self, name: str) -> str:
        canonical = self._by_lower.get(name.lower())
        if canonical is not None:
            return canonical
        # Directory extension properties (extension_{appId}_{name}) are always selectable.
        if not self.strict or name.lower().startswith("extension_"):
            return name
        raise errors.unknown_property(name, self.type_name)


def parse_select(options: Mapping[str, str], resolver: PropertyResolver) -> list[str] | None:
    raw = options.get("select")
    if raw is None or not raw.strip():
        return None
    selected: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        if name == "*":
            return None
        canonical = resolver.resolve(name)
        if canonical not in selected:
            selected.append(canonical)
    return selected or None


def project(record: Mapping[str, Any], properties: Iterable[str], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The record with exactly these properties; absent ones come back as null (or their default)."""
    return {name: record.get(name, defaults.get(name)) for name in properties}


# --- $filter --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|"
    r"(?P<guid>[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![\w-]))|"
    r"(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w./]*))"
)

Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass
class Filter:
    """A parsed ``$filter``: a predicate, and the id set when the filter only names ids."""

    predicate: Predicate
    ids: list[str] | None
    or_clauses: int


class _Parser:
    def __init__(self, text: str, resolver: PropertyResolver) -> None:
        self.text = text
        self.resolver = resolver
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if not match or match.end() == pos:
                self.fail(pos)
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            pos = match.end()
        self.index = 0
        self.or_clauses = 1

    def fail(self, position: int | None = None) -> None:
        if position is None:
            position = self.tokens[self.index][2] if self.index < len(self.tokens) else len(self.text)
        raise errors.bad_request(
            f"Invalid filter clause: Syntax error at position {position} in '{self.text}'.", "BadRequest"
        )

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str | None = None, word: str | None = None) -> tuple[str, str, int]:
        token = self.peek()
        if token is None or (kind and token[0] != kind) or (word and token[1].lower() != word):
            self.fail()
        assert token is not None
        self.index += 1
        return token

    def at_word(self, word: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() == word

    def parse(self) -> tuple[Predicate, list[str] | None]:
        predicate, ids = self.parse_or()
        if self.peek() is not None:
            self.fail()
        return predicate, ids

    def parse_or(self) -> tuple[Predicate, list[str] | None]:
        predicate, ids = self.parse_and()
        parts = [(predicate, ids)]
        while self.at_word("or"):
            self.take()
            self.or_clauses += 1
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        predicates = [p for p, _ in parts]
        all_ids = None if any(i is None for _, i in parts) else [x for _, i in parts for x in (i or [])]
        return (lambda record: any(p(record) for p in predicates)), all_ids

    def parse_and(self) -> tuple[Predicate, list[str] | None]:
        predicate, ids = self.parse_term()
        parts = [predicate]
        while self.at_word("and"):
            self.take()
            parts.append(self.parse_term()[0])
            ids = None
        if len(parts) == 1:
            return predicate, ids
        return (lambda record: all(p(record) for p in parts)), None

    def parse_term(self) -> tuple[Predicate, list[str] | None]:
        token = self.peek()
        if token is None:
            self.fail()
        assert token is not None
        if token[0] == "lp":
            self.take()
            result = self.parse_or()
            self.take("rp")
            return result
        if token[0] == "word" and token[1].lower() == "not":
            self.take()
            inner, _ = self.parse_term()
            return (lambda record: not inner(record)), None
        if token[0] == "word" and token[1].lower() == "startswith":
            self.take()
            self.take("lp")
            name = self.resolver.resolve(self.take("word")[1])
            self.take("comma")
            prefix = self.literal()
            self.take("rp")
            if not isinstance(prefix, str):
                self.fail()
            lowered = str(prefix).lower()
            return (lambda record: str(record.get(name) or "").lower().startswith(lowered)), None
        name = self.resolver.resolve(self.take("word")[1])
        operator = self.take("word")[1].lower()
        if operator == "in":
            self.take("lp")
            values = [self.literal()]
            while self.peek() is not None and self.peek()[0] == "comma":  # type: ignore[index]
                self.take()
                values.append(self.literal())
            self.take("rp")
            # `in` is shorthand for chained `or`s and counts against the same limit.
            self.or_clauses += len(values) - 1
            wanted = {_fold(v) for v in values}
            ids = [str(v) for v in values] if name == "id" else None
            return (lambda record: _fold(record.get(name)) in wanted), ids
        value = self.literal()
        if operator == "eq":
            folded = _fold(value)
            return (lambda record: _fold(record.get(name)) == folded), ([str(value)] if name == "id" else None)
        if operator == "ne":
            folded = _fold(value)
            return (lambda record: _fold(record.get(name)) != folded), None
        raise errors.unsupported_query(
            f"Unsupported or invalid query filter clause specified for property '{name}' of resource "
            f"'{self.resolver.type_name.rsplit('.', 1)[-1].capitalize()}'."
        )

    def literal(self) -> Any:
        kind, text, _ = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "guid":  # an Edm.Guid literal is written bare (resourceId eq 8e881353-...)
            return text
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "word" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        if kind == "word" and text.lower() == "null":
            return None
        self.fail()
        return None


def _fold(value: Any) -> Any:
    """Directory string comparisons are case-insensitive."""
    return value.lower() if isinstance(value, str) else value


def parse_filter(options: Mapping[str, str], resolver: PropertyResolver, max_or: int = MAX_OR_CLAUSES) -> Filter | None:
    raw = options.get("filter")
    if raw is None or not raw.strip():
        return None
    parser = _Parser(raw, resolver)
    predicate, ids = parser.parse()
    if parser.or_clauses > max_or:
        raise errors.too_many_or_clauses(parser.or_clauses, max_or)
    return Filter(predicate, ids, parser.or_clauses)


# --- opaque tokens --------------------------------------------------------------------------


def encode_token(payload: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode("ascii").rstrip("=")


def decode_token(token: str) -> Any:
    """Raises ``ValueError`` for anything that is not a token this emulator issued."""
    try:
        padded = token + "=" * (-len(token) % 4)
        return orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, orjson.JSONDecodeError, UnicodeEncodeError) as exc:
        raise ValueError(f"not a valid token: {exc}") from None
