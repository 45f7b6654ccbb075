"""Validate the USERS frame with Great Expectations and quarantine the rows that break the suite.

The suite is data (``include/expectations/entra_users.json``), reviewed like the mapping table;
this module only loads it, runs it with GX Core on the in-scope rows and turns GX's answer into
``QuarantinedUser`` entries whose reasons name the attribute, the rule and the expectation.

Speed: GX's usual way to name failing rows (``COMPLETE`` with ``unexpected_index_column_names``)
builds one dict per failing row and costs seconds at 100,000 rows. Asking for ``COMPLETE`` with
``exclude_unexpected_values`` and no index columns makes GX return the failing rows' index
labels as a plain list, which is as fast as ``SUMMARY``; the frame is validated with a
``RangeIndex``, so those labels are positions and map back to ids with one numpy ``take``. GX
stays the only judge of which rows fail.

Each expectation says which writes it guards (``meta.guards``: ``create``, ``update`` or ``both``,
the default; ``model.Guard``). A row breaking a ``both`` expectation is quarantined here. A row
breaking only ``create`` (``update``) expectations goes on, and its reasons travel to the diff
(``blocks_create`` / ``blocks_update``), which holds the user with them only if it plans that
write: Entra skips a null source attribute on update, so ``mail`` missing must stop a create
(Salesforce requires Email) but never an existing user's other changes, a demotion least of all.

Soft-deleted rows (``IsSoftDeleted`` true) are not validated: a deactivation needs nothing but
the link to the Salesforce user, so bad data must not keep a leaver active. They pass into
``valid`` unchanged.

GX's own answer is kept too: ``ValidationResult.gx_result`` is the suite's
``ExpectationSuiteValidationResult.to_json_dict()``, the JSON GX's validation results store
writes, so a run can keep it beside its other outputs and render GX's Data Docs page from it
(``include.provisioning.validation_docs``). It comes from the same run that decides the
quarantine, so the page and the quarantine can never disagree.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from include.provisioning.gc_pause import collector_paused
from include.provisioning.lazy_modules import deferred
from include.provisioning.model import Guard, QuarantinedUser
from include.provisioning.settings import DEFAULT_SUITE_PATH

if TYPE_CHECKING:
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.expectations.expectation import Expectation

ROLE_COUNT_COLUMN = "appRoleCount"
"""Helper column: distinct role values in ``appRoleAssignments`` (the default access role counts).
GX's column-map expectations test scalars, not lists, so the list column is summarised here."""

_RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "exclude_unexpected_values": True,
    "return_unexpected_index_query": False,
    "partial_unexpected_count": 0,
}
_ROW_LEVEL_BASES = ("ColumnMapExpectation", "ColumnPairMapExpectation", "MulticolumnMapExpectation")
_DEFAULT_DESCRIPTIONS = {
    "expect_column_values_to_not_be_null": "missing",
    "expect_column_values_to_be_unique": "not unique",
    "expect_column_values_to_match_regex": "does not match the expected pattern",
}
GX_DEFERRED_MODULES = ("scipy.stats", "altair", "jsonschema", "mistune")
"""Modules GX's package import pulls in at module level for what a column-map suite of this kind
never runs: the KL-divergence expectation's statistics and chart (``scipy.stats``, ``altair``), the
JSON-schema metric (``jsonschema``) and the Markdown of rendered notes (``mistune``). Imported
lazily (``lazy_modules.deferred``), each loads on first use, so whatever needs one still works."""
GUARDS_KEY = "guards"
"""Key of an expectation's ``meta`` naming the writes it guards (``model.Guard``; default both)."""


class SuiteError(ValueError):
    """The expectation suite file is missing, unreadable or names something GX cannot run."""


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    """Rows that passed, plus every soft-deleted row untouched, in the input's order and index."""
    quarantined: list[QuarantinedUser]
    failure_share: float
    """Quarantined rows / validated rows (0.0 when nothing was validated)."""
    checked: int
    """Rows validated: the in-scope ones."""
    expectations: int
    """Expectations in the suite."""
    failed_expectations: dict[str, int] = field(default_factory=dict)
    """Readable reason → how many rows broke it, for the cycle summary (every guard)."""
    blocks_create: dict[str, list[str]] = field(default_factory=dict)
    """Entra id → reasons of ``create`` expectations a row in ``valid`` broke: the diff holds the
    user with them if it would create a Salesforce user, and ignores them for an existing one."""
    blocks_update: dict[str, list[str]] = field(default_factory=dict)
    """Entra id → reasons of ``update`` expectations a row in ``valid`` broke: the diff holds the
    user with them if it is linked to a Salesforce user (update, reactivation or no change)."""
    gx_result: dict[str, Any] | None = field(default=None, repr=False)
    """GX's own result of this run, ``ExpectationSuiteValidationResult.to_json_dict()`` untouched:
    ``success``, ``suite_name``, ``statistics``, ``meta`` (run id, GX version, batch markers) and one
    entry per expectation under ``results`` (its ``expectation_config``, ``success`` and ``result``
    with ``element_count``, ``unexpected_count``, ``unexpected_percent`` and the failing rows'
    positions in the validated in-scope rows as ``unexpected_index_list``; never the rows' values,
    so no personal data). JSON-serialisable as is. ``None`` when GX did
    not run because nothing was in scope. Each ``expectation_config.meta`` carries the engine's
    ``validate_rule`` number. Left out of ``repr``: it grows with the failing rows."""


_RULE_KEY = "validate_rule"
"""Key added to each expectation's meta (in memory only) to find its rule in GX's results."""


@dataclass(frozen=True)
class _Rule:
    """One expectation of the suite and the words a person reads when a row breaks it."""

    kind: str
    columns: tuple[str, ...]
    reason: str
    guards: Guard = Guard.BOTH


def import_gx() -> ModuleType:
    """``great_expectations``, imported quietly and with the cyclic garbage collector paused.

    Quiet: no usage statistics (no network from a provisioning job) and no tqdm bars in task logs.
    Paused: GX's package import loads every expectation it ships (about 2,000 modules, the largest
    fixed cost of a cold ``provision-user``), allocating hundreds of thousands of long-lived
    objects that the collector would rescan many times over while none of them is garbage;
    pausing it saves about 0.4 CPU seconds per process (measured with ``python -c``, GX 1.x).
    Deferred: ``GX_DEFERRED_MODULES``, which GX imports at module level and only the methods of
    expectations and renderers this suite never runs use, are bound as lazy modules: ~1.0 of the
    ~2.0 CPU seconds GX's import took (measured, GX 1.24). Every GX import of the engine goes
    through here first, so its submodules are then already loaded."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    with collector_paused(), deferred(GX_DEFERRED_MODULES):
        import great_expectations
    return great_expectations


def _describe(config: Mapping[str, Any], columns: tuple[str, ...]) -> str:
    kind = config["type"]
    kwargs = config.get("kwargs") or {}
    text = config.get("description")
    if not text:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if kind == "expect_column_value_lengths_to_be_between":
            text = f"longer than {high} characters" if low is None else f"length outside {low}..{high}"
        elif kind == "expect_column_values_to_be_between":
            text = f"outside {low}..{high}"
        else:
            text = _DEFAULT_DESCRIPTIONS.get(kind, "failed")
    label = (config.get("meta") or {}).get("source_column") or ", ".join(columns)
    return f"{label}: {text} ({kind})"


def _columns_of(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    if "column" in kwargs:
        return (str(kwargs["column"]),)
    if "column_A" in kwargs:
        return (str(kwargs["column_A"]), str(kwargs["column_B"]))
    return tuple(str(c) for c in kwargs.get("column_list") or ())


def expectation_reason(config: Mapping[str, Any]) -> str:
    """The reason a row quarantined for breaking this expectation carries, e.g.
    ``"mail: not e-mail-shaped (expect_column_values_to_match_regex)"``.

    ``config`` is an entry of the suite file or the ``expectation_config`` of an entry in GX's
    result (``type``, ``kwargs``, optional ``description`` and ``meta.source_column``); both give
    the same words, which lets the Data Docs page use the quarantine's wording. Raises
    ``KeyError`` without a ``type``.
    """
    return _describe(config, _columns_of(config.get("kwargs") or {}))


def load_suite(path: Path = DEFAULT_SUITE_PATH) -> tuple[ExpectationSuite, list[_Rule]]:
    """Read and check the suite file; every problem is a ``SuiteError`` naming the entry.

    GX's own ``ExpectationSuite`` constructor logs and *drops* an expectation it cannot build,
    which would validate less than the file says without anyone noticing; each entry is
    therefore built here first, so a typo fails loudly.
    """
    import_gx()
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SuiteError(f"expectation suite {path} does not exist") from exc
    except json.JSONDecodeError as exc:
        raise SuiteError(f"expectation suite {path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("expectations"), list):
        raise SuiteError(f"expectation suite {path} must be a JSON object with an 'expectations' list")
    rules: list[_Rule] = []
    expectations: list[Expectation] = []
    for number, entry in enumerate(raw["expectations"], start=1):
        where = f"expectation suite {path}, expectation #{number}"
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise SuiteError(f"{where}: must be an object with a 'type' (e.g. expect_column_values_to_not_be_null)")
        kwargs = entry.get("kwargs") or {}
        where = f"{where} ({entry['type']})"
        if "regex" in kwargs:
            try:
                re.compile(str(kwargs["regex"]))
            except re.error as exc:
                raise SuiteError(f"{where}: invalid regex {kwargs['regex']!r}: {exc}") from exc
        try:
            config = ExpectationConfiguration(
                type=entry["type"],
                kwargs=kwargs,
                meta={**(entry.get("meta") or {}), _RULE_KEY: len(rules)},
                notes=entry.get("notes"),
                description=entry.get("description"),
            )
            expectation = config.to_domain_obj()
        except Exception as exc:  # GX raises ExpectationNotFoundError, pydantic errors, ...
            detail = " ".join(str(exc).split())
            if type(exc).__name__ == "ExpectationNotFoundError":
                detail = f"unknown expectation type {entry['type']!r}"
            raise SuiteError(f"{where}: {detail}") from exc
        bases = {cls.__name__ for cls in type(expectation).__mro__}
        if not bases.intersection(_ROW_LEVEL_BASES):
            raise SuiteError(
                f"{where}: judges the whole table, not single rows; validate can only quarantine rows, "
                "so the suite takes column-map expectations only"
            )
        columns = _columns_of(kwargs)
        rules.append(_Rule(entry["type"], columns, _describe(entry, columns), _guards_of(entry, where)))
        expectations.append(expectation)
    try:
        suite = ExpectationSuite(
            name=str(raw.get("name") or path.stem),
            expectations=expectations,
            meta=raw.get("meta"),
            notes=raw.get("notes"),
        )
    except Exception as exc:
        raise SuiteError(f"expectation suite {path}: {exc}") from exc
    return suite, rules


def _guards_of(entry: Mapping[str, Any], where: str) -> Guard:
    """The writes an entry of the suite guards, from ``meta.guards`` (both when absent)."""
    raw = (entry.get("meta") or {}).get(GUARDS_KEY, Guard.BOTH.value)
    try:
        return Guard(raw)
    except ValueError:
        allowed = ", ".join(g.value for g in Guard)
        raise SuiteError(f"{where}: meta.{GUARDS_KEY} must be one of {allowed}, found {raw!r}") from None


def _role_count(roles: pd.Series) -> np.ndarray:
    """Distinct role values per row (flattened, not a row loop).

    The contract says distinct, but a repeat must not count twice: the values of rows holding
    several are factorised and each (row, value) pair counted once, all in numpy (a scan per
    row was quadratic: half a minute for 3,000 two-role users among 1,000,000)."""
    values, positions = _flatten(roles.to_numpy())
    kept = pd.notna(values)
    positions = positions[kept]
    counts = np.bincount(positions, minlength=len(roles))
    several = counts[positions] > 1
    if several.any():
        codes, uniques = pd.factorize(values[kept][several])
        pairs = np.unique(positions[several] * len(uniques) + codes)
        distinct = np.bincount(pairs // len(uniques), minlength=len(roles))
        repeated = counts > 1
        counts[repeated] = distinct[repeated]
    return counts


def _flatten(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The elements of each row's list and the row's position, as ``Series.explode`` gives them
    (nulls may differ: an empty list gives none here, a null there). Lists, and the NumPy arrays
    Parquet reads a list column as, are flattened directly: ``explode`` takes a second per
    million arrays."""
    kinds = set(map(type, items))
    if kinds <= {list, np.ndarray}:
        try:
            lengths = np.fromiter(map(len, items), dtype=np.intp, count=len(items))
        except TypeError:  # a zero-dimensional array, which explode keeps as one value
            pass
        else:
            lists = map(np.ndarray.tolist, items) if kinds == {np.ndarray} else items  # 7x faster than iter
            flat = np.fromiter(chain.from_iterable(lists), dtype=object, count=int(lengths.sum()))
            return flat, np.repeat(np.arange(len(items)), lengths)
    exploded = pd.Series(items, dtype=object).explode()
    return exploded.to_numpy(), exploded.index.to_numpy()


def _frame_for_gx(rows: pd.DataFrame, rules: list[_Rule], path: Path) -> pd.DataFrame:
    """The rows GX sees: a RangeIndex, helper columns, and nulls for optional absent attributes.

    An attribute the mapping does not use is not fetched, so its length rules cannot apply: the
    column is added as nulls (which column-map rules skip). A not-null rule on an absent column,
    though, is a configuration error, not 100 % bad data.
    """
    needed = {c for rule in rules for c in rule.columns}
    # Only the checked columns: GX fingerprints the whole frame (and pickles it when a column holds lists).
    frame = rows[[c for c in rows.columns if c in needed or c in ("id", "userPrincipalName")]].reset_index(drop=True)
    if ROLE_COUNT_COLUMN in needed:
        if "appRoleAssignments" not in rows:
            raise SuiteError(
                f"expectation suite {path} checks {ROLE_COUNT_COLUMN}, but the users frame has no "
                "appRoleAssignments column to count"
            )
        frame[ROLE_COUNT_COLUMN] = _role_count(rows["appRoleAssignments"])
    missing = sorted(needed - set(frame.columns))
    for rule in rules:
        absent = [c for c in rule.columns if c in missing]
        if absent and rule.kind == "expect_column_values_to_not_be_null":
            raise SuiteError(
                f"expectation suite {path} requires attribute {absent[0]!r}, but the users frame has no such "
                "column (add it to the mapping's source attributes or drop the expectation)"
            )
    for column in missing:
        frame[column] = pd.Series([None] * len(frame), dtype=object)
    return frame


def _run_suite(frame: pd.DataFrame, suite: ExpectationSuite) -> ExpectationSuiteValidationResult:
    """Run the suite on ``frame`` in a throwaway (ephemeral) context and return GX's answer."""
    gx = import_gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # GX's switch for its tqdm bars ("Calculating Metrics: ..."), which it writes to stderr on every
    # run; in a task log they are noise. The Validator reads it from the context it runs under.
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    batch = (
        context.data_sources.add_pandas("entra")
        .add_dataframe_asset("users")
        .add_batch_definition_whole_dataframe("cycle")
    )
    suite = context.suites.add(suite)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="entra_users", data=batch, suite=suite)
    )
    return definition.run(batch_parameters={"dataframe": frame}, result_format=_RESULT_FORMAT)


def validate(users: pd.DataFrame, suite_path: Path = DEFAULT_SUITE_PATH) -> ValidationResult:
    """Quarantine in-scope rows that break a ``both`` expectation of the suite; everything else goes
    on in ``valid``, with the reasons of ``create``/``update`` expectations a row broke in
    ``blocks_create``/``blocks_update`` for the diff.

    ``users`` is the USERS frame (``id`` required; ``IsSoftDeleted`` rows are passed through
    unchecked). Raises ``ValueError`` without an ``id`` column and ``SuiteError`` when the suite
    file is wrong or an expectation cannot run. GX's own result is on ``gx_result``.
    """
    if "id" not in users:
        raise ValueError("validate: the users frame has no 'id' column")
    soft = users["IsSoftDeleted"].fillna(False).astype(bool) if "IsSoftDeleted" in users else None
    in_scope = users if soft is None else users[~soft.to_numpy()]
    checked = len(in_scope)
    if checked == 0:
        # Nothing to judge: skip importing GX and building the suite (seconds), which is most of
        # a no-change incremental cycle. validate-config and every non-empty cycle load the suite.
        return ValidationResult(users, [], 0.0, 0, 0)
    suite, rules = load_suite(suite_path)

    frame = _frame_for_gx(in_scope, rules, Path(suite_path))
    broken: dict[int, list[_Rule]] = defaultdict(list)
    counts: dict[str, int] = {}
    suite_result = _run_suite(frame, suite)
    for outcome in suite_result.results:
        rule = rules[int((outcome.expectation_config.meta or {})[_RULE_KEY])]
        info = outcome.exception_info or {}
        if info.get("raised_exception"):
            message = " ".join(str(info.get("exception_message") or "unknown error").split())
            raise SuiteError(f"expectation suite {suite_path}: {rule.reason} could not run: {message}")
        if outcome.success:
            continue
        positions = outcome.result.get("unexpected_index_list") or []
        if len(positions) != outcome.result.get("unexpected_count"):  # never pass a failing row silently
            raise SuiteError(
                f"expectation suite {suite_path}: {rule.reason} failed, but GX named {len(positions)} of "
                f"{outcome.result.get('unexpected_count')} failing rows"
            )
        counts[rule.reason] = len(positions)
        for position in positions:
            broken[int(position)].append(rule)

    # A row breaking a rule of both writes is quarantined with every reason; the others go on.
    reasons = {p: [rule.reason for rule in found] for p, found in broken.items()}
    failing = np.fromiter(
        sorted(p for p, found in broken.items() if any(r.guards is Guard.BOTH for r in found)),
        dtype=np.int64,
        count=-1,
    )
    blocks = _conditional_reasons(frame["id"].to_numpy(), broken)
    ids = frame["id"].to_numpy()[failing]
    upns = frame["userPrincipalName"].to_numpy()[failing] if "userPrincipalName" in frame else [None] * len(failing)
    quarantined = [
        QuarantinedUser(
            entra_id=str(entra_id),
            user_principal_name=None if pd.isna(upn) else str(upn),
            reasons=reasons[int(position)],
        )
        for position, entra_id, upn in zip(failing, ids, upns, strict=True)
    ]
    keep = np.ones(len(users), dtype=bool)
    scope_positions = np.flatnonzero(np.ones(len(users), dtype=bool) if soft is None else ~soft.to_numpy())
    keep[scope_positions[failing]] = False
    return ValidationResult(
        valid=users[keep],
        quarantined=quarantined,
        failure_share=len(quarantined) / checked,
        checked=checked,
        expectations=len(rules),
        failed_expectations=counts,
        blocks_create=blocks[Guard.CREATE],
        blocks_update=blocks[Guard.UPDATE],
        # ~0.15 s at 100,000 rows with half failing (GX converts each failing row's position).
        gx_result=suite_result.to_json_dict(),
    )


def _conditional_reasons(ids: np.ndarray, broken: Mapping[int, list[_Rule]]) -> dict[Guard, dict[str, list[str]]]:
    """For rows that broke no ``both`` rule: Entra id → reasons, per guarded write."""
    blocks: dict[Guard, dict[str, list[str]]] = {Guard.CREATE: {}, Guard.UPDATE: {}}
    for position, found in broken.items():
        if any(rule.guards is Guard.BOTH for rule in found):
            continue
        for rule in found:
            blocks[rule.guards].setdefault(str(ids[position]), []).append(rule.reason)
    return blocks
