"""Tokens of Entra's attribute-mapping expression language.

The language is small and VBA-like: function calls, ``[attribute]`` references, double-quoted
strings with backslash escapes, numbers (``&HF7`` hexadecimal as in VBA), the names ``True``,
``False``, ``vbTextCompare`` and ``vbBinaryCompare``, and the comparison operators that
Entra documents for IIF conditions (``= <> > >= < <=``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from include.provisioning.expressions.errors import ExpressionSyntaxError

MAX_EXPRESSION_LENGTH = 10_000
"""Entra caps an expression at 10,000 characters; longer ones are rejected, not truncated."""


class Kind(Enum):
    NAME = "name"
    STRING = "string"
    NUMBER = "number"
    ATTRIBUTE = "attribute"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    OPERATOR = "operator"
    END = "end of expression"


@dataclass(frozen=True)
class Token:
    kind: Kind
    text: str
    """The source text of the token (for messages)."""
    value: object
    position: int
    """1-based position of the token's first character."""

    def describe(self) -> str:
        """How a message names this token: ``'x'``, ``end of expression``."""
        if self.kind is Kind.END:
            return "end of expression"
        text = self.text if len(self.text) <= 30 else self.text[:27] + "..."
        return repr(text) if self.kind is not Kind.STRING else text


_OPERATORS = ("<>", "<=", ">=", "=", "<", ">")
_WHITESPACE = " \t\r\n"


def _read_string(source: str, start: int) -> tuple[str, int]:
    r"""Read a double-quoted string from ``start`` (the opening quote); return value and end.

    ``\"`` and ``\\`` are the documented escapes. Any other backslash is kept as written, so a
    regular expression such as ``"\d+"`` means what its author meant whether or not they
    doubled the backslash (Entra's examples double it: ``"\\d+"``).
    """
    out: list[str] = []
    i = start + 1
    while i < len(source):
        char = source[i]
        if char == "\\" and i + 1 < len(source) and source[i + 1] in '"\\':
            out.append(source[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(out), i + 1
        out.append(char)
        i += 1
    raise ExpressionSyntaxError(
        start + 1,
        "string opened here is not closed: expected '\"', found end of expression",
        expected="'\"'",
        found="end of expression",
    )


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, ending with an END token."""
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionSyntaxError(
            MAX_EXPRESSION_LENGTH + 1,
            f"expression is {len(source):,} characters long; Entra's limit is {MAX_EXPRESSION_LENGTH:,}",
        )
    tokens: list[Token] = []
    i = 0
    n = len(source)
    while i < n:
        char = source[i]
        pos = i + 1
        if char in _WHITESPACE:
            i += 1
        elif char == "(":
            tokens.append(Token(Kind.LPAREN, char, None, pos))
            i += 1
        elif char == ")":
            tokens.append(Token(Kind.RPAREN, char, None, pos))
            i += 1
        elif char == ",":
            tokens.append(Token(Kind.COMMA, char, None, pos))
            i += 1
        elif char == '"':
            value, end = _read_string(source, i)
            tokens.append(Token(Kind.STRING, source[i:end], value, pos))
            i = end
        elif char == "[":
            end = source.find("]", i + 1)
            newline = min((p for p in (source.find("\n", i + 1), source.find("[", i + 1)) if p != -1), default=-1)
            if end == -1 or (newline != -1 and newline < end):
                raise ExpressionSyntaxError(
                    pos,
                    "attribute name opened here is not closed: expected ']'",
                    expected="']'",
                    found="end of expression" if end == -1 else repr(source[newline]),
                )
            name = source[i + 1 : end].strip()
            if not name:
                raise ExpressionSyntaxError(pos, "empty attribute name '[]'", expected="an attribute name")
            tokens.append(Token(Kind.ATTRIBUTE, source[i : end + 1], name, pos))
            i = end + 1
        elif char.isdigit() or (char == "-" and i + 1 < n and source[i + 1].isdigit()):
            j = i + 1
            while j < n and source[j].isdigit():
                j += 1
            is_float = j + 1 < n and source[j] == "." and source[j + 1].isdigit()
            if is_float:
                j += 1
                while j < n and source[j].isdigit():
                    j += 1
            text = source[i:j]
            tokens.append(Token(Kind.NUMBER, text, float(text) if is_float else int(text), pos))
            i = j
        elif char == "&" and source[i + 1 : i + 2] in ("H", "h"):
            j = i + 2
            while j < n and source[j] in "0123456789abcdefABCDEF":
                j += 1
            if j == i + 2:
                raise ExpressionSyntaxError(pos, "expected hexadecimal digits after '&H'", expected="hex digits")
            tokens.append(Token(Kind.NUMBER, source[i:j], int(source[i + 2 : j], 16), pos))
            i = j
        elif char.isalpha() or char == "_":
            j = i + 1
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            tokens.append(Token(Kind.NAME, source[i:j], source[i:j], pos))
            i = j
        else:
            for op in _OPERATORS:
                if source.startswith(op, i):
                    tokens.append(Token(Kind.OPERATOR, op, op, pos))
                    i += len(op)
                    break
            else:
                raise ExpressionSyntaxError(pos, f"unexpected character {char!r}", found=repr(char))
    tokens.append(Token(Kind.END, "", None, n + 1))
    return tokens
