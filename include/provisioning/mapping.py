"""The mapping table: Salesforce User fields from Entra user attributes.

The table is a YAML file a person edits and reviews in a pull request
(``include/mappings/salesforce_user.yaml``; ``include/mappings/README.md`` explains the
keys). Each row names a target field, a source expression in Entra's language, an optional
default, when it applies and whether it is a matching attribute, like a row of Entra's
"Attribute Mapping" page. An optional ``scoping`` section holds Entra-style scoping filters.

Entra's rules kept here: a default is used only on create and only when the value is null;
null values are not sent (unless the row says ``clear_when_null``); matching attributes are
tried in precedence order; a change to the table or the scoping filters forces a full
resync (``fingerprint``).

Which writes each rule guards (``model.Guard``; Entra's "Apply this mapping: Always / Only
during object creation"):

* a row's value, and an error evaluating it: ``apply: always`` both, ``apply: on_create`` create
  only (the field is never compared or sent on update, so its error must not hold an existing
  user: ``MappingResult.blocks_create``);
* ``default``: create only (a null on update is not sent: the user keeps the value they have);
* ``clear_when_null``: update only (a create sends no null);
* the profile rules (only the default access role; no role and no default): both. The role
  decides the user's access, so a role that names no profile is held with the reason rather
  than leaving an existing user's profile, possibly System Administrator, silently as it is.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml

from include.provisioning.errors import ConfigurationError
from include.provisioning.expressions import Expression, ExpressionSyntaxError, compile_expression
from include.provisioning.expressions.values import to_text
from include.provisioning.expressions.vector import Vec
from include.provisioning.graph.user_attributes import (
    EXTENSION_ATTRIBUTES,
    GRAPH_USER_ATTRIBUTES,
    graph_attribute_problem,
    is_custom_data_name,
)
from include.provisioning.model import DEFAULT_ACCESS_ROLE_VALUE, Guard
from include.provisioning.scoping import ScopingError, ScopingFilters
from include.provisioning.settings import DEFAULT_MAPPING_PATH

DERIVED_ATTRIBUTES = ("IsSoftDeleted", "appRoleAssignments", "assignedVia", "scopeReason")
"""Columns the extract computes (model.py); expressions may use them, Graph cannot select them."""

ALWAYS_SELECTED = ("id", "userPrincipalName", "accountEnabled")
"""What the extract needs whatever the table says (identity, matching fallback, IsSoftDeleted)."""

_TARGET = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ROW_KEYS = ("target", "source", "default", "apply", "match_precedence", "clear_when_null")
_TOP_KEYS = ("fields", "scoping")
APPLY_VALUES = ("always", "on_create")
BOOLEAN_TARGETS = frozenset(("IsActive",))
"""Salesforce User checkbox fields a table is likely to map; their defaults become booleans."""
PROFILE_FIELD = "ProfileName"

DEFAULT_ACCESS_ERROR = "only the default access role is assigned; Salesforce needs an app role that names a profile"
NO_ROLE_ERROR = (
    "no app role assigned and no default profile: assign the user (or a group) an app role that names a "
    "Salesforce profile"
)


@dataclass(frozen=True)
class Problem:
    row: int | None
    field: str | None
    reason: str
    line: int | None = None

    def render(self, file: str) -> str:
        where = file
        if self.row is not None:
            where = f"{file} row {self.row}" + (f" ({self.field})" if self.field else "")
        line = f" (line {self.line})" if self.line else ""
        return f"{where}: {self.reason}{line}"


class MappingError(ConfigurationError, ValueError):
    """The mapping table cannot be used. Names the file, row, field and reason of every problem."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems
        first = problems[0]
        self.row = first.row
        self.field = first.field
        self.reason = first.reason
        super().__init__("\n".join(p.render(file) for p in problems))


@dataclass
class FieldMapping:
    target: str
    source: str | None
    default: str | bool | None
    apply: Literal["always", "on_create"]
    match_precedence: int | None
    clear_when_null: bool
    row: int = 0
    """1-based row number in the file (for messages)."""
    expression: Expression | None = field(default=None, repr=False, compare=False)

    def canonical(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "source": self.expression.canonical() if self.expression else None,
            "default": self.default,
            "apply": self.apply,
            "match_precedence": self.match_precedence,
            "clear_when_null": self.clear_when_null,
        }


@dataclass
class MappingResult:
    mapped: pd.DataFrame
    """MAPPED frame: ``id`` plus one column per target (Python str/bool/None); failed rows absent."""
    errors: dict[str, list[str]]
    """Entra id → reasons ("LastName: ..."), every failing field of the row."""
    blocks_create: dict[str, list[str]] = field(default_factory=dict)
    """Entra id → reasons of rows (kept in ``mapped``, the field null) whose only failures are in
    ``apply: on_create`` fields: they stop a create, never an update (the diff decides which)."""


def _suggest(name: str, candidates: Iterable[str], *, close_matches: bool = True) -> str:
    pool = list(candidates)
    lowered = {c.lower(): c for c in pool}
    if name.lower() in lowered:
        return f"; did you mean {lowered[name.lower()]}? (names are case-sensitive)"
    if not close_matches:
        return ""
    close = difflib.get_close_matches(name, pool, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def check_attribute(name: str) -> str | None:
    """None if ``name`` is a source attribute expressions may use, else the reason.

    Allowed: Graph user properties, ``extensionAttribute1``..``15``, directory extensions
    ``extension_<32 hex>_<name>`` (graph/user_attributes.py says where each comes from) and the
    extract's derived columns."""
    if name in DERIVED_ATTRIBUTES:
        return None
    reason = graph_attribute_problem(name)
    if reason is None:
        return None
    # "extensionAttribute16" is not a misspelt "extensionAttribute6": the reason says what is allowed.
    pool = [*GRAPH_USER_ATTRIBUTES, *EXTENSION_ATTRIBUTES, *DERIVED_ATTRIBUTES]
    return reason + _suggest(name, pool, close_matches=not is_custom_data_name(name))


def _line_numbers(text: str) -> list[int]:
    """Line of each item of the ``fields`` list (for messages), best effort."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "fields" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


class MappingTable:
    """A loaded, checked mapping table."""

    def __init__(self, fields: list[FieldMapping], scoping: ScopingFilters | None = None, name: str = "mapping"):
        self.fields = fields
        self.scoping = scoping
        self.name = name

    # --- loading -------------------------------------------------------------------------------

    @classmethod
    def default(cls) -> MappingTable:
        """The repository's table, ``include/mappings/salesforce_user.yaml``."""
        return cls.load(DEFAULT_MAPPING_PATH)

    @classmethod
    def load(cls, path: Path | str) -> MappingTable:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MappingError(path.name, [Problem(None, None, f"cannot read the mapping table: {exc}")]) from exc
        return cls.loads(text, path.name)

    @classmethod
    def loads(cls, text: str, name: str = "mapping.yaml") -> MappingTable:
        """Parse a table from YAML text; raises MappingError listing every problem found."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            reason = getattr(exc, "problem", None) or str(exc)
            raise MappingError(name, [Problem(None, None, f"not valid YAML{where}: {reason}")]) from exc
        if not isinstance(data, dict):
            raise MappingError(name, [Problem(None, None, "expected a mapping with 'fields' (and optional 'scoping')")])
        problems: list[Problem] = []
        unknown = [str(k) for k in data if k not in _TOP_KEYS]
        if unknown:
            problems.append(
                Problem(None, None, f"unknown top-level key(s) {', '.join(unknown)}; allowed: {', '.join(_TOP_KEYS)}")
            )
        rows = data.get("fields")
        if not isinstance(rows, list) or not rows:
            problems.append(Problem(None, None, "'fields' must be a non-empty list of rows"))
            raise MappingError(name, problems)
        lines = _line_numbers(text)
        fields: list[FieldMapping] = []
        seen_targets: dict[str, int] = {}
        seen_precedence: dict[int, str] = {}
        for index, raw in enumerate(rows, start=1):
            line = lines[index - 1] if index - 1 < len(lines) else None
            row_problems: list[Problem] = []
            mapping = _parse_row(raw, index, line, row_problems)
            problems.extend(row_problems)
            if mapping is None:
                continue
            if mapping.target in seen_targets:
                problems.append(
                    Problem(
                        index,
                        mapping.target,
                        f"duplicate target: row {seen_targets[mapping.target]} already maps it",
                        line,
                    )
                )
                continue
            seen_targets[mapping.target] = index
            if mapping.match_precedence is not None:
                other = seen_precedence.get(mapping.match_precedence)
                if other:
                    problems.append(
                        Problem(
                            index,
                            mapping.target,
                            f"match_precedence {mapping.match_precedence} is also given to {other}",
                            line,
                        )
                    )
                seen_precedence[mapping.match_precedence] = mapping.target
            fields.append(mapping)
        if not seen_precedence and not any(p.row is not None for p in problems):
            problems.append(
                Problem(
                    None,
                    None,
                    "no matching attribute: give one row match_precedence: 1 "
                    "(Entra's default matches Username on userPrincipalName)",
                )
            )
        scoping: ScopingFilters | None = None
        if data.get("scoping") is not None:
            try:
                scoping = ScopingFilters.load(data["scoping"])
            except ScopingError as exc:
                problems.append(Problem(None, None, str(exc)))
            else:
                for attribute in scoping.attributes():
                    reason = check_attribute(attribute)
                    if reason:
                        problems.append(Problem(None, None, f"scoping: {reason}"))
                if not scoping:
                    scoping = None
        if problems:
            raise MappingError(name, problems)
        return cls(fields, scoping, name)

    # --- what the other stages ask ---------------------------------------------------------------

    def targets(self) -> list[str]:
        return [f.target for f in self.fields]

    def source_attributes(self) -> list[str]:
        """The source attributes the table and scoping read, minus derived ones: the USERS frame's
        attribute columns. ``graph.user_attributes.select_properties`` turns them into ``$select``
        (``extensionAttribute1`` is read through ``onPremisesExtensionAttributes``)."""
        names: dict[str, None] = dict.fromkeys(ALWAYS_SELECTED)
        for f in self.fields:
            if f.expression is not None:
                names.update(dict.fromkeys(f.expression.attributes()))
        if self.scoping:
            names.update(dict.fromkeys(self.scoping.attributes()))
        return [n for n in names if n not in DERIVED_ATTRIBUTES]

    def evaluated_columns(self) -> list[str]:
        """The USERS frame's columns ``evaluate`` reads: ``id``, ``IsSoftDeleted`` and every
        attribute an expression uses (derived ones included), so a stage reads no other column."""
        names: dict[str, None] = dict.fromkeys(("id", "IsSoftDeleted"))
        for f in self.fields:
            if f.expression is not None:
                names.update(dict.fromkeys(f.expression.attributes()))
        return list(names)

    def matching_fields(self) -> list[FieldMapping]:
        """Matching attributes, first to try first."""
        return sorted((f for f in self.fields if f.match_precedence is not None), key=lambda f: f.match_precedence or 0)

    def defaults(self) -> dict[str, Any]:
        """Target → default, applied on create when the value is null."""
        return {f.target: f.default for f in self.fields if f.default is not None}

    def create_only(self) -> set[str]:
        return {f.target for f in self.fields if f.apply == "on_create"}

    def clear_when_null(self) -> set[str]:
        return {f.target for f in self.fields if f.clear_when_null}

    def fingerprint(self) -> str:
        """sha256 over the meaning of the table and scoping (not comments, order or formatting)."""
        payload = {
            "fields": sorted((f.canonical() for f in self.fields), key=lambda d: d["target"]),
            "scoping": self.scoping.canonical() if self.scoping else [],
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    # --- evaluation ------------------------------------------------------------------------------

    def evaluate(self, users: pd.DataFrame) -> MappingResult:
        """Map a USERS frame to the MAPPED frame; per-row failures go to ``errors``.

        Rows with ``IsSoftDeleted`` are deactivations: only IsActive and the matching fields
        must map; their other fields may fail (they stay null). In-scope rows fail on any
        field error, and every field's reason is reported; an error only in ``apply: on_create``
        fields keeps the row (that field null) and goes to ``blocks_create`` instead.
        """
        n = len(users)
        if "id" not in users.columns:
            raise KeyError("the USERS frame has no 'id' column")
        soft_deleted = (
            users["IsSoftDeleted"].fillna(False).to_numpy(dtype=bool)
            if "IsSoftDeleted" in users.columns
            else np.zeros(n, dtype=bool)
        )
        essential = {"IsActive", *(f.target for f in self.matching_fields())}
        guards = {f.target: Guard.CREATE if f.apply == "on_create" else Guard.BOTH for f in self.fields}
        cache: dict[str, Vec] = {}
        columns: dict[str, np.ndarray] = {}
        failures: dict[int, list[str]] = {}
        create_failures: dict[int, list[str]] = {}
        create_failed_targets: dict[int, set[str]] = {}

        def fail(rows: Iterable[int], target: str, message: str) -> None:
            create_only = guards.get(target) is Guard.CREATE
            for row in rows:
                if soft_deleted[row] and target not in essential:
                    continue
                (create_failures if create_only else failures).setdefault(row, []).append(f"{target}: {message}")
                if create_only:
                    create_failed_targets.setdefault(row, set()).add(target)

        for mapping in self.fields:
            if mapping.expression is None:
                values = np.full(n, None, dtype=object)
                columns[mapping.target] = values
                continue
            result = mapping.expression.evaluate_frame(users, cache)
            values = result.values
            for row, message in result.errors.items():
                fail((row,), mapping.target, message)
            if result.kind not in ("text", "bool"):
                values, bad = _field_values(values)
                for row, message in bad.items():
                    fail((row,), mapping.target, message)
            columns[mapping.target] = values

        if PROFILE_FIELD in columns:
            profile = columns[PROFILE_FIELD]
            fail(
                np.flatnonzero(np.equal(profile, DEFAULT_ACCESS_ROLE_VALUE) & ~soft_deleted),
                PROFILE_FIELD,
                DEFAULT_ACCESS_ERROR,
            )
            profile_default = next(f.default for f in self.fields if f.target == PROFILE_FIELD)
            if profile_default is None:
                failed_rows = set(failures)
                missing = [
                    int(i) for i in np.flatnonzero(np.equal(profile, None) & ~soft_deleted) if int(i) not in failed_rows
                ]
                fail(missing, PROFILE_FIELD, NO_ROLE_ERROR)

        ids = users["id"].to_numpy(dtype=object)
        keep = np.ones(n, dtype=bool)
        if failures:
            keep[list(failures)] = False
        for target in set().union(*create_failed_targets.values()):
            columns[target] = columns[target].copy()  # the expression's values may be cached
        for row, reasons in create_failures.items():
            for target in create_failed_targets[row]:
                columns[target][row] = None  # never sent: the create is held, an update skips it
            if row in failures:
                failures[row].extend(reasons)  # held anyway: every reason is reported
        mapped = pd.DataFrame({"id": ids[keep], **{t: v[keep] for t, v in columns.items()}}, dtype=object)
        errors = {str(ids[row]): reasons for row, reasons in sorted(failures.items())}
        blocks_create = {
            str(ids[row]): reasons for row, reasons in sorted(create_failures.items()) if row not in failures
        }
        return MappingResult(mapped, errors, blocks_create)


def _field_values(values: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Values a Salesforce field takes: text or booleans. Numbers and dates become text."""
    out = values.copy()
    bad: dict[int, str] = {}
    for i, value in enumerate(values):
        if value is None or isinstance(value, (str, bool)):
            continue
        if isinstance(value, list):
            if len(value) == 1:
                out[i] = to_text(value[0])
            else:
                out[i] = None
                bad[i] = f"the expression gives {len(value)} values; a Salesforce field takes one"
            continue
        out[i] = to_text(value)
    return out, bad


def _parse_row(raw: Any, index: int, line: int | None, problems: list[Problem]) -> FieldMapping | None:
    def problem(reason: str, target: str | None = None) -> None:
        problems.append(Problem(index, target, reason, line))

    if not isinstance(raw, dict):
        problem(f"a row is a mapping with {', '.join(_ROW_KEYS)}; found {raw!r}")
        return None
    target = raw.get("target")
    if not isinstance(target, str) or not _TARGET.match(target):
        problem(f"'target' must be a Salesforce User field name such as LastName, found {target!r}")
        return None
    unknown = [str(k) for k in raw if k not in _ROW_KEYS]
    if unknown:
        problem(
            f"unknown key(s) {', '.join(unknown)}"
            + _suggest(unknown[0], _ROW_KEYS)
            + f"; a row has {', '.join(_ROW_KEYS)}",
            target,
        )
    source = raw.get("source")
    expression: Expression | None = None
    if isinstance(source, list):
        problem(
            f"source must be text; YAML read [{', '.join(map(str, source))}] as a list: quote it, "
            f'e.g. source: "[{source[0] if source else ""}]"',
            target,
        )
        source = None
    elif source is not None and not isinstance(source, str):
        problem(f"source must be an expression (text), found {source!r}", target)
        source = None
    elif isinstance(source, str):
        source = source.strip() or None
    if source is not None:
        try:
            expression = compile_expression(source)
        except ExpressionSyntaxError as exc:
            problem(f"expression error {exc}", target)
        else:
            for node_name in expression.attributes():
                reason = check_attribute(node_name)
                if reason:
                    problem(reason, target)
    default = raw.get("default")
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        default = to_text(default)
    elif default is not None and not isinstance(default, (str, bool)):
        problem(f"default must be text or true/false, found {default!r}", target)
        default = None
    if target in BOOLEAN_TARGETS and isinstance(default, str):
        if default.strip().lower() not in ("true", "false"):
            problem(f"{target} is a checkbox: default must be true or false, found {default!r}", target)
        default = default.strip().lower() == "true"
    if source is None and default is None and raw.get("source") is None and not unknown:
        problem("a row needs a source expression or a default", target)
    apply_raw = raw.get("apply", "always")
    apply = str(apply_raw).strip().lower().replace(" ", "_").replace("-", "_") if apply_raw is not None else ""
    if apply not in APPLY_VALUES:
        problem(f"apply must be one of {', '.join(APPLY_VALUES)}, found {apply_raw!r}", target)
        apply = "always"
    precedence = raw.get("match_precedence")
    if precedence is not None and (isinstance(precedence, bool) or not isinstance(precedence, int) or precedence < 1):
        problem(f"match_precedence must be a whole number from 1 (tried first), found {precedence!r}", target)
        precedence = None
    if precedence is not None and expression is None:
        problem("a matching attribute needs a source expression", target)
    clear = raw.get("clear_when_null", False)
    if not isinstance(clear, bool):
        problem(f"clear_when_null must be true or false, found {clear!r}", target)
        clear = False
    return FieldMapping(
        target=target,
        source=source,
        default=default,
        apply=apply,  # type: ignore[arg-type]
        match_precedence=precedence,
        clear_when_null=clear,
        row=index,
        expression=expression,
    )
