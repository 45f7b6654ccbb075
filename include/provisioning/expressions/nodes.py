"""The syntax tree of an expression.

Every node knows its 1-based position (for messages) and renders back to canonical text,
which is what the mapping fingerprint hashes: re-formatting an expression (spaces, line
breaks) is not a mapping change and does not force a full resync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class Attribute:
    name: str
    position: int

    def canonical(self) -> str:
        return f"[{self.name}]"


@dataclass(frozen=True)
class Literal:
    value: Any
    """str, int, float or bool; ``vbTextCompare`` / ``vbBinaryCompare`` are strings."""
    position: int
    text: str = ""
    """How it was written, for enum names (``vbBinaryCompare``)."""

    def canonical(self) -> str:
        if isinstance(self.value, bool):
            return "True" if self.value else "False"
        if isinstance(self.value, str):
            return self.text if self.text.startswith("vb") else _quote(self.value)
        return repr(self.value)


@dataclass(frozen=True)
class Omitted:
    """An empty optional argument, as in ``Replace([x], "-", , , "_", , )``."""

    position: int

    def canonical(self) -> str:
        return ""


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    position: int

    def canonical(self) -> str:
        return f"{self.name}({', '.join(a.canonical() for a in self.args)})"


@dataclass(frozen=True)
class Compare:
    """``left op right``; Entra documents these inside IIF conditions and CBool."""

    op: str
    left: Node
    right: Node
    position: int

    def canonical(self) -> str:
        return f"{self.left.canonical()} {self.op} {self.right.canonical()}"


Node = Attribute | Literal | Omitted | Call | Compare


def attributes(node: Node) -> list[str]:
    """Attribute names referenced anywhere in ``node``, in order of first appearance."""
    seen: dict[str, None] = {}

    def walk(n: Node) -> None:
        if isinstance(n, Attribute):
            seen.setdefault(n.name, None)
        elif isinstance(n, Call):
            for a in n.args:
                walk(a)
        elif isinstance(n, Compare):
            walk(n.left)
            walk(n.right)

    walk(node)
    return list(seen)
