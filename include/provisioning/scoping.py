"""Entra's scoping filters: which assigned users are in scope, by attribute values.

A filter is a list of clauses that must all hold (AND); a user is in scope when any filter
holds (OR); no filters means everyone assigned is in scope. Operators and their null rule
follow "Scoping users or groups to be provisioned with scoping filters" (Entra docs): every
clause is false on a null or empty attribute, except IS NULL, which is true there. Users
that fall out of scope are deactivated like unassigned ones (``scopeReason`` "out-of-scope").

The YAML section (in the mapping table file)::

    scoping:
      - name: Sales in New York          # optional; shown in messages
        clauses:
          - {attribute: department, operator: EQUALS, value: Sales}
          - {attribute: jobTitle, operator: IS NOT NULL}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from include.provisioning.errors import ConfigurationError
from include.provisioning.expressions import dotnet
from include.provisioning.expressions.evaluate import column_vec, read_attribute
from include.provisioning.expressions.values import to_text
from include.provisioning.expressions.vector import Vec, text_array

OPERATORS = (
    "EQUALS",
    "NOT EQUALS",
    "IS TRUE",
    "IS FALSE",
    "IS NULL",
    "IS NOT NULL",
    "REGEX MATCH",
    "NOT REGEX MATCH",
    "Greater_Than",
    "Greater_Than_OR_EQUALS",
    "Includes",
    "ENDS_WITH",
    "&",
    "!&",
)
"""Entra's operator names, as its portal shows them."""

_NO_VALUE = frozenset(("IS TRUE", "IS FALSE", "IS NULL", "IS NOT NULL"))
_INTEGER_VALUE = frozenset(("Greater_Than", "Greater_Than_OR_EQUALS", "&", "!&"))
_INTEGER_TEXT = re.compile(r"^[+-]?[0-9]+$")


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", " ", name.strip()).upper()


_BY_KEY = {_key(op): op for op in OPERATORS}


class ScopingError(ConfigurationError, ValueError):
    """A scoping section that cannot be used; the message names the filter and clause."""


@dataclass(frozen=True)
class Clause:
    attribute: str
    operator: str
    value: str | int | None
    regex: re.Pattern[str] | None = None

    def canonical(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "operator": self.operator, "value": self.value}


@dataclass(frozen=True)
class ScopingFilter:
    name: str
    clauses: tuple[Clause, ...]


def _parse_clause(raw: Any, where: str) -> Clause:
    if not isinstance(raw, Mapping):
        raise ScopingError(f"{where}: a clause is a mapping with attribute, operator and value, found {raw!r}")
    unknown = set(raw) - {"attribute", "operator", "value"}
    if unknown:
        raise ScopingError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; a clause has attribute, "
            "operator and value"
        )
    attribute = raw.get("attribute")
    if not isinstance(attribute, str) or not attribute.strip():
        raise ScopingError(f"{where}: 'attribute' is required (a Graph user attribute name such as department)")
    attribute = attribute.strip().strip("[]")
    where = f"{where} ({attribute})"
    operator_raw = raw.get("operator")
    if not isinstance(operator_raw, str) or _key(operator_raw) not in _BY_KEY:
        raise ScopingError(f"{where}: unknown operator {operator_raw!r}; valid operators: {', '.join(OPERATORS)}")
    operator = _BY_KEY[_key(operator_raw)]
    has_value = "value" in raw and raw["value"] is not None
    if operator in _NO_VALUE:
        if has_value:
            raise ScopingError(f"{where}: {operator} takes no value, found {raw['value']!r}")
        return Clause(attribute, operator, None)
    if not has_value:
        raise ScopingError(f"{where}: {operator} needs a value")
    value = raw["value"]
    if operator in _INTEGER_VALUE:
        if isinstance(value, bool) or not (
            isinstance(value, int) or (isinstance(value, str) and _INTEGER_TEXT.match(value.strip()))
        ):
            raise ScopingError(f"{where}: {operator} needs a whole number, found {value!r}")
        return Clause(attribute, operator, int(value))
    text = to_text(value)
    assert text is not None
    if operator in ("REGEX MATCH", "NOT REGEX MATCH"):
        try:
            compiled = dotnet.compile_regex(text)
        except re.error as exc:
            raise ScopingError(f"{where}: {text!r} is not a valid regular expression: {exc}") from None
        return Clause(attribute, operator, text, compiled)
    if operator in ("Includes", "ENDS_WITH") and text == "":
        raise ScopingError(f"{where}: {operator} needs a non-empty value")
    return Clause(attribute, operator, text)


class ScopingFilters:
    """Parsed scoping filters; ``evaluate`` gives True for users in scope."""

    def __init__(self, filters: list[ScopingFilter]):
        self.filters = filters

    @classmethod
    def load(cls, section: Any, where: str = "scoping") -> ScopingFilters:
        """Parse the ``scoping`` section (a list of filters); raises ScopingError."""
        if section is None:
            return cls([])
        if not isinstance(section, list):
            raise ScopingError(f"{where}: expected a list of filters, found {type(section).__name__}")
        filters = []
        for f_index, raw in enumerate(section, start=1):
            label = f"{where} filter {f_index}"
            if not isinstance(raw, Mapping):
                raise ScopingError(f"{label}: a filter is a mapping with 'clauses' (and an optional 'name')")
            unknown = set(raw) - {"name", "clauses"}
            if unknown:
                raise ScopingError(
                    f"{label}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; a filter has name and clauses"
                )
            name = str(raw.get("name") or f"filter {f_index}")
            if raw.get("name"):
                label = f"{label} ({name})"
            clauses_raw = raw.get("clauses")
            if not isinstance(clauses_raw, list) or not clauses_raw:
                raise ScopingError(f"{label}: 'clauses' must be a non-empty list")
            clauses = tuple(
                _parse_clause(c, f"{label} clause {c_index}") for c_index, c in enumerate(clauses_raw, start=1)
            )
            filters.append(ScopingFilter(name, clauses))
        return cls(filters)

    def __bool__(self) -> bool:
        return bool(self.filters)

    def attributes(self) -> list[str]:
        """Attributes the clauses read, in order of first use (for Graph's ``$select``)."""
        return list(dict.fromkeys(c.attribute for f in self.filters for c in f.clauses))

    def canonical(self) -> list[dict[str, Any]]:
        return [{"name": f.name, "clauses": [c.canonical() for c in f.clauses]} for f in self.filters]

    def evaluate(self, users: pd.DataFrame) -> pd.Series:
        """True for every row in scope. Vectorised; a missing column is an error, not a null."""
        n = len(users)
        if not self.filters:
            return pd.Series(np.ones(n, dtype=bool), index=users.index)
        missing = [a for a in self.attributes() if a not in users.columns]
        if missing:
            raise KeyError(f"the USERS frame has no column(s) {', '.join(missing)}, which the scoping filters use")
        columns: dict[str, Vec] = {}
        result = np.zeros(n, dtype=bool)
        for flt in self.filters:
            passed = np.ones(n, dtype=bool)
            for clause in flt.clauses:
                if clause.attribute not in columns:
                    columns[clause.attribute] = column_vec(users[clause.attribute])
                passed &= _clause_mask(clause, columns[clause.attribute], n)
            result |= passed
        return pd.Series(result, index=users.index)

    def evaluate_row(self, record: Mapping[str, Any]) -> bool:
        """The same decision for one record (provisioning on demand)."""
        frame = pd.DataFrame([{a: record.get(a) for a in self.attributes()}])
        return bool(self.evaluate(frame).iloc[0])


def _np(arr: pa.Array) -> np.ndarray:
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False)


def _integers(vec: Vec, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(values, valid) for an integer view of the attribute; non-integers are not valid."""
    if vec.kind == "int":
        valid = ~pc.is_null(vec.data).to_numpy(zero_copy_only=False)
        return pc.fill_null(vec.data, 0).to_numpy(zero_copy_only=False).astype(np.int64), valid
    values = np.zeros(n, dtype=np.int64)
    valid = np.zeros(n, dtype=bool)
    if vec.kind == "bool":
        return values, valid
    raw = vec.data.to_pylist() if vec.kind == "text" else list(vec.data)
    for i, item in enumerate(raw):
        if isinstance(item, int) and not isinstance(item, bool):
            values[i], valid[i] = item, True
        elif isinstance(item, str) and _INTEGER_TEXT.match(item.strip()):
            number = int(item.strip())
            if -(2**63) <= number < 2**63:
                values[i], valid[i] = number, True
    return values, valid


def _clause_mask(clause: Clause, vec: Vec, n: int) -> np.ndarray:
    op = clause.operator
    if op in _INTEGER_VALUE:
        values, valid = _integers(vec, n)
        target = int(clause.value)  # type: ignore[arg-type]
        if op == "Greater_Than":
            return valid & (values > target)
        if op == "Greater_Than_OR_EQUALS":
            return valid & (values >= target)
        anded = np.bitwise_and(values, target) != 0
        return valid & (anded if op == "&" else ~anded)
    if op in ("IS TRUE", "IS FALSE"):
        wanted = op == "IS TRUE"
        if vec.kind == "bool":
            return _np(pc.equal(vec.data, wanted))
        if vec.kind == "text":
            return _np(pc.equal(pc.utf8_lower(vec.data), "true" if wanted else "false"))
        return (
            np.array([read_attribute(v) is wanted for v in vec.data], dtype=bool)
            if vec.kind == "obj"
            else (np.zeros(n, dtype=bool))
        )
    text = text_array(vec, n)
    if text is None:
        # Multi-valued or mixed values: Entra does not filter on multi-valued attributes;
        # single values are compared by their text.
        text = pa.array([_single_text(v) for v in vec.data], type=pa.string())
    present = _np(pc.invert(pc.or_(pc.is_null(text), pc.fill_null(pc.equal(text, ""), False))))
    if op == "IS NULL":
        return ~present
    if op == "IS NOT NULL":
        return present
    value = str(clause.value)
    if op == "EQUALS":
        return present & _np(pc.equal(text, value))
    if op == "NOT EQUALS":
        return present & _np(pc.not_equal(text, value))
    if op == "Includes":
        return present & _np(pc.match_substring(text, value))
    if op == "ENDS_WITH":
        return present & _np(pc.ends_with(text, value))
    assert clause.regex is not None
    search = clause.regex.search
    matches = np.array([v is not None and search(v) is not None for v in text.to_pylist()], dtype=bool)
    return present & (matches if op == "REGEX MATCH" else ~matches)


def _single_text(value: Any) -> str | None:
    if isinstance(value, list):
        return None
    return to_text(value)
