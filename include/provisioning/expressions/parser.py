"""Recursive-descent parser: text → syntax tree, with messages a person can act on.

Grammar (Entra's, as documented, plus the comparisons its IIF examples use)::

    expression := argument END
    argument   := operand [ ("=" | "<>" | "<" | "<=" | ">" | ">=") operand ]
    operand    := "[" name "]" | string | number | True | False | vbTextCompare
                | vbBinaryCompare | Name "(" [ slot { "," slot } ] ")"
    slot       := argument | (nothing: an omitted optional argument)

Every call is checked against its function's signature while parsing, so unknown functions,
wrong argument counts, a missing required argument, a bad regex or date format literal are
all load-time errors with the 1-based position of the offending token.
"""

from __future__ import annotations

from include.provisioning.expressions.errors import ExpressionSyntaxError
from include.provisioning.expressions.functions import Static, check_call, lookup
from include.provisioning.expressions.lexer import Kind, Token, tokenize
from include.provisioning.expressions.nodes import Attribute, Call, Compare, Literal, Node, Omitted

_CONSTANTS = {"True": True, "False": False, "vbTextCompare": "vbTextCompare", "vbBinaryCompare": "vbBinaryCompare"}


class ParsedExpression:
    """A parsed expression: its tree and the per-call static facts the evaluators need."""

    def __init__(self, source: str, root: Node, statics: dict[int, Static]):
        self.source = source
        self.root = root
        self.statics = statics
        """``id(call node)`` → Static."""


class _Parser:
    def __init__(self, source: str):
        self.tokens = tokenize(source)
        self.index = 0
        self.statics: dict[int, Static] = {}

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def error(self, expected: str, context: str = "") -> ExpressionSyntaxError:
        found = self.current.describe()
        where = f" {context}" if context else ""
        return ExpressionSyntaxError(
            self.current.position, f"expected {expected}{where}, found {found}", expected=expected, found=found
        )

    def parse(self) -> Node:
        if self.current.kind is Kind.END:
            raise self.error("an expression")
        node = self.argument()
        if self.current.kind is not Kind.END:
            if self.current.kind is Kind.OPERATOR:
                raise self.error("end of expression", "(comparisons do not chain)")
            raise self.error("end of expression")
        return node

    def argument(self) -> Node:
        left = self.operand()
        if self.current.kind is Kind.OPERATOR:
            op = self.advance()
            right = self.operand()
            return Compare(str(op.value), left, right, op.position)
        return left

    def operand(self) -> Node:
        token = self.current
        if token.kind is Kind.ATTRIBUTE:
            self.advance()
            return Attribute(str(token.value), token.position)
        if token.kind in (Kind.STRING, Kind.NUMBER):
            self.advance()
            return Literal(token.value, token.position, token.text)
        if token.kind is Kind.NAME:
            self.advance()
            if self.current.kind is Kind.LPAREN:
                return self.call(token)
            if token.text in _CONSTANTS:
                return Literal(_CONSTANTS[token.text], token.position, token.text)
            raise ExpressionSyntaxError(
                token.position,
                f"unknown name {token.text!r}: attributes go in square brackets ([{token.text}]), "
                f'text in double quotes ("{token.text}"), functions need parentheses ({token.text}(...))',
                found=repr(token.text),
            )
        raise self.error("an attribute, a string, a number or a function call")

    def call(self, name: Token) -> Call:
        spec = lookup(name.text, name.position)
        self.advance()  # "("
        args: list[Node] = []
        if self.current.kind is Kind.RPAREN:
            self.advance()
        else:
            while True:
                if self.current.kind in (Kind.COMMA, Kind.RPAREN):
                    args.append(Omitted(self.current.position))
                else:
                    args.append(self.argument())
                if self.current.kind is Kind.COMMA:
                    self.advance()
                    continue
                if self.current.kind is Kind.RPAREN:
                    self.advance()
                    break
                raise self.error("',' or ')'", f"after argument {len(args)} of {spec.name}")
        call = Call(spec.name, tuple(args), name.position)
        self.statics[id(call)] = check_call(spec, call)
        return call


def parse(source: str) -> ParsedExpression:
    """Parse ``source``; raises ExpressionSyntaxError with a 1-based position."""
    parser = _Parser(source)
    root = parser.parse()
    return ParsedExpression(source, root, parser.statics)
