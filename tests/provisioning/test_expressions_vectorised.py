"""Vectorised evaluation must mean exactly what per-row evaluation means.

Hypothesis generates frames of hostile values (any Unicode, commas, quotes, blanks, "true" in
odd cases, None) and every expression below is evaluated both ways: values and per-row
error messages must be identical, whatever pandas dtype the columns end up with.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from include.provisioning.expressions import ExpressionRuntimeError, compile_expression

INTERESTING = [
    "",
    " ",
    "a b",
    "true",
    "TRUE",
    "True",
    "false",
    "-",
    "@",
    "a,b",
    'x"y',
    "en-US",
    "fr-FR",
    "de-DE",
    "Zoë",
    "İstanbul",
    "straße",
    "ǅ",
    "ﬀ",
    "ᾳ",
    "#N/A",
    "=cmd|' /C calc'!A0",
    "a@b@c",
    "x\r\ny",
    "🎉👩‍💻",
    "e\u0301",
    "Ⅻ",
    "ſ",
    "K",
    "Ω",
]
TEXT = st.one_of(
    st.none(),
    st.sampled_from(INTERESTING),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12),
)
ROLES = st.one_of(st.none(), st.lists(st.sampled_from(["Standard User", "Admin", "msiam_access"]), max_size=3))
RECORD = st.fixed_dictionaries({"a": TEXT, "b": TEXT, "c": TEXT, "flag": st.booleans(), "roles": ROLES})

EXPRESSIONS = [
    "[a]",
    'Append([a], "!")',
    "Append([a], [b])",
    'Coalesce([a], [b], "none")',
    "Coalesce([a], [b])",
    "Left([a], 3)",
    "Left([a], -1)",
    "Mid([a], 2, 3)",
    'Replace([a], "a", , , "_", , )',
    'Replace([a], , "[aeiou]+", , "<$&>", , )',
    'Replace([a], , "(?<first>.)(?<rest>.*)", "first", "X", , )',
    'Replace([a], , "(?<d>[0-9]+)", "d", , [b], )',
    'Replace([a], "x", , , , , "<x>")',
    "ToLower([a])",
    "ToUpper([a])",
    'ToUpper([a], "de-DE")',
    'ToLower([a], "tr-TR")',
    "Not([flag])",
    "Not([a])",
    "IsNull([a])",
    "IsNullOrEmpty([a])",
    "IsPresent([a])",
    "NormalizeDiacritics([a])",
    "StripSpaces([a])",
    'Join(", ", [a], [b], [c])',
    'Join("", [a], "x")',
    "SingleAppRoleAssignment([roles])",
    'IIF([a] = "true", [b], [c])',
    'IIF([flag], "yes", [b])',
    'IIF(IsPresent([a]), [a], "missing")',
    'Switch([a], "other", "true", "T", "", "E", "-", "dash")',
    'Switch([a], [b], "en-US", "en_US", "fr-FR", [c])',
    'Switch([a], , "x", "y")',
    'Word([a], 1, "-@")',
    'Word([a], 2, " ,")',
    "PCase([a])",
    "CStr([flag])",
    "CStr([a])",
    'InStr([a], "e", 1, vbTextCompare)',
    'IIF([a] = [b], "same", "different")',
    'IIF([a] > [b], "gt", "le")',
    'Left(Word(ToLower(NormalizeDiacritics([a])), 1, "@"), 5)',
    "Coalesce(SingleAppRoleAssignment([roles]), [a])",
    'IIF([flag], SingleAppRoleAssignment([roles]), "none")',
]


def per_row(expression: str, records: list[dict[str, Any]]) -> tuple[list[Any], dict[int, str]]:
    expr = compile_expression(expression)
    values: list[Any] = []
    errors: dict[int, str] = {}
    for i, record in enumerate(records):
        try:
            values.append(expr.evaluate_row(record))
        except ExpressionRuntimeError as exc:
            values.append(None)
            errors[i] = str(exc)
    return values, errors


@pytest.mark.parametrize("expression", EXPRESSIONS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(RECORD, min_size=1, max_size=12), as_object=st.booleans())
def test_vectorised_equals_per_row(expression: str, records: list[dict[str, Any]], as_object: bool) -> None:
    frame = pd.DataFrame(records, dtype=object) if as_object else pd.DataFrame(records)
    expected_values, expected_errors = per_row(expression, records)
    result = compile_expression(expression).evaluate_frame(frame)
    assert result.errors == expected_errors
    assert result.values.tolist() == expected_values


ROLE_EXPRESSIONS = [e for e in EXPRESSIONS if "[roles]" in e] + ['Join(",", [roles])', "IsNull([roles])"]
ARRAY_CELL = st.one_of(
    st.none(),
    st.lists(st.one_of(st.none(), st.sampled_from(["Standard User", "Admin", ""]), st.integers(-3, 3)), max_size=3),
)


@pytest.mark.parametrize("expression", ROLE_EXPRESSIONS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(ARRAY_CELL, min_size=1, max_size=12))
def test_list_cells_read_from_parquet_mean_what_lists_mean(expression: str, cells: list[list[Any] | None]) -> None:
    """Parquet reads a list column as one NumPy object array per row; ``column_vec`` turns an
    all-text array straight into a list and leaves the others (a null or a number inside, empty)
    to ``read_attribute``: the values and errors are those of the per-row meaning of the lists."""
    records = [{"roles": cell, "a": "x", "flag": True} for cell in cells]
    frame = pd.DataFrame({"a": "x", "flag": True, "roles": pd.Series([None] * len(cells), dtype=object)})
    frame["roles"] = [None if cell is None else np.array(cell, dtype=object) for cell in cells]
    expected_values, expected_errors = per_row(expression, records)
    result = compile_expression(expression).evaluate_frame(frame)
    assert result.errors == expected_errors
    assert result.values.tolist() == expected_values


def test_a_frame_with_an_index_other_than_0_to_n() -> None:
    frame = pd.DataFrame({"a": ["x", None, "z"]}, index=[10, 5, 7])
    result = compile_expression('Append([a], "!")').evaluate_frame(frame)
    assert result.values.tolist() == ["x!", None, "z!"]


def test_columns_of_other_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "n": [1001, 1002],
            "f": [1001.0, float("nan")],
            "b": pd.array([True, None], dtype="boolean"),
            "when": pd.to_datetime(["2024-03-01T09:00:00Z", None], utc=True),
        }
    )
    assert compile_expression("CStr([n])").evaluate_frame(frame).values.tolist() == ["1001", "1002"]
    assert compile_expression('Append([f], "")').evaluate_frame(frame).values.tolist() == ["1001", None]
    assert compile_expression("Not([b])").evaluate_frame(frame).values.tolist() == [False, True]
    assert compile_expression("[when]").evaluate_frame(frame).values.tolist() == ["2024-03-01T09:00:00Z", None]


def test_a_missing_column_is_an_error_for_the_frame() -> None:
    with pytest.raises(KeyError, match="no column 'surname'"):
        compile_expression("[surname]").evaluate_frame(pd.DataFrame({"a": ["x"]}))
