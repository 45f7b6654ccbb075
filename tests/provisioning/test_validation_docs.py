"""GX's own record of a validation run: the result JSON and the Data Docs page, on disk and in object storage."""

from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from include.provisioning.validate import ValidationResult, validate
from include.provisioning.validation_docs import (
    gx_result_of,
    render_data_docs_page,
    validation_result_json,
    write_validation_artifacts,
)
from tests.provisioning.test_validate import MAIL_SHAPE, NO_ROLE, example_users, longer, with_changes


@pytest.fixture(scope="module")
def outcome() -> ValidationResult:
    """Three bad mails, a long given name and a user without a role; disabled users are not validated."""
    users = with_changes(
        example_users(),
        {
            "adele.vance@contoso.example": {"mail": "adele.vance@", "givenName": "A" * 41},
            "alex.wilber@contoso.example": {"mail": "alex.wilber at contoso"},
            "zoe.muller@contoso.example": {"mail": "zoe@"},
            "megan.bowen@contoso.example": {"appRoleAssignments": []},
        },
    )
    return validate(users)


def page_text(html: str) -> str:
    """What a person reads: the page without scripts, styles and tags, whitespace folded."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.DOTALL)
    return " ".join(re.sub(r"<[^>]+>", " ", body).split())


def test_result_json_round_trips_and_names_the_suite_and_failing_expectations(
    outcome: ValidationResult, tmp_path: Path
) -> None:
    paths = write_validation_artifacts(outcome, tmp_path / "runs" / "run-1" / "validate")
    assert paths == {
        "validation_result": tmp_path / "runs" / "run-1" / "validate" / "validation_result.json",
        "data_docs": tmp_path / "runs" / "run-1" / "validate" / "data_docs" / "index.html",
    }
    stored = json.loads(paths["validation_result"].read_text(encoding="ascii"))
    assert stored == outcome.gx_result
    assert (stored["suite_name"], stored["success"]) == ("entra_users", False)
    failing = {
        (entry["expectation_config"]["type"], entry["expectation_config"]["kwargs"]["column"]): entry["result"][
            "unexpected_count"
        ]
        for entry in stored["results"]
        if not entry["success"]
    }
    assert failing == {
        ("expect_column_values_to_match_regex", "mail"): 3,
        ("expect_column_value_lengths_to_be_between", "givenName"): 1,
        ("expect_column_values_to_be_between", "appRoleCount"): 1,
    }
    assert stored["statistics"]["unsuccessful_expectations"] == 3


def test_result_json_is_what_gx_own_validation_store_writes(outcome: ValidationResult) -> None:
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema

    assert outcome.gx_result is not None
    gx_bytes = ExpectationSuiteValidationResultSchema().dumps(outcome.gx_result, indent=2, sort_keys=True)
    assert validation_result_json(outcome.gx_result) == gx_bytes.encode("ascii")


def test_data_docs_page_names_the_failing_expectations(outcome: ValidationResult, tmp_path: Path) -> None:
    paths = write_validation_artifacts(outcome, tmp_path)
    html = paths["data_docs"].read_text(encoding="utf-8")
    text = page_text(html)
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "Expectation Suite: entra_users" in text
    assert "Status: Failed" in text
    assert "Unsuccessful Expectations 3" in text
    # Labelled with the quarantine's words, which name the expectation type.
    for reason in (MAIL_SHAPE, longer("givenName", 40), NO_ROLE):
        assert reason in text
    assert "3 unexpected values found" in text
    assert html.count('class="fas fa-times text-danger"') == 4  # the suite's status and three expectations


def test_page_reads_offline_the_icons_have_a_fallback_glyph(outcome: ValidationResult) -> None:
    assert outcome.gx_result is not None
    html = render_data_docs_page(outcome.gx_result)
    styles = html.index(".fa-times::before")
    assert styles < html.index("font-awesome"), "the fallback must come before Font Awesome so that it wins online"
    assert "ge-walkthrough-modal" not in html  # show_how_to_buttons=False


def test_rendering_leaves_the_outcome_untouched(outcome: ValidationResult, tmp_path: Path) -> None:
    before = copy.deepcopy(outcome.gx_result)
    assert before is not None
    write_validation_artifacts(outcome, tmp_path)
    assert outcome.gx_result == before
    descriptions = {e["expectation_config"].get("description") for e in before["results"]}
    assert "not e-mail-shaped" in descriptions  # the suite's own words, not the page's labels


def test_page_renders_again_from_the_stored_json_and_from_gx_object(outcome: ValidationResult, tmp_path: Path) -> None:
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema

    first = write_validation_artifacts(outcome, tmp_path / "a")
    stored = json.loads(first["validation_result"].read_bytes())
    again = write_validation_artifacts(stored, tmp_path / "b")
    as_object = ExpectationSuiteValidationResultSchema().load(stored)
    third = write_validation_artifacts(as_object, tmp_path / "c")
    for paths in (again, third):
        assert paths["validation_result"].read_bytes() == first["validation_result"].read_bytes()
        assert MAIL_SHAPE in page_text(paths["data_docs"].read_text(encoding="utf-8"))


def test_nothing_is_written_when_gx_did_not_run(tmp_path: Path) -> None:
    users = example_users()
    users["IsSoftDeleted"] = True
    outcome = validate(users)
    assert outcome.gx_result is None
    assert write_validation_artifacts(outcome, tmp_path / "run") == {}
    assert write_validation_artifacts(None, tmp_path / "run") == {}
    assert not (tmp_path / "run").exists()
    assert gx_result_of(None) is None


def test_existing_files_are_replaced(outcome: ValidationResult, tmp_path: Path) -> None:
    (tmp_path / "data_docs").mkdir()
    (tmp_path / "validation_result.json").write_text("x" * 10_000_000)
    paths = write_validation_artifacts(outcome, tmp_path)
    assert json.loads(paths["validation_result"].read_bytes()) == outcome.gx_result


def test_object_storage_path(outcome: ValidationResult) -> None:
    """Airflow's ObjectStoragePath is a universal_pathlib UPath; memory:// has no local file to fall back on."""
    upath = pytest.importorskip("upath")
    directory = upath.UPath(f"memory://provisioning/runs/{uuid.uuid4()}/validate")
    try:
        paths = write_validation_artifacts(outcome, directory)
        assert {key: str(path) for key, path in paths.items()} == {
            "validation_result": f"{directory}/validation_result.json",
            "data_docs": f"{directory}/data_docs/index.html",
        }
        with paths["validation_result"].open("rb") as handle:
            assert json.load(handle) == outcome.gx_result
        with paths["data_docs"].open("rb") as handle:
            assert MAIL_SHAPE in page_text(handle.read().decode("utf-8"))
    finally:
        directory.fs.rm(directory.path, recursive=True)


def test_a_page_gx_cannot_render_keeps_the_json_and_says_why(tmp_path: Path) -> None:
    not_a_result: dict[str, Any] = {"success": False, "results": []}  # no suite_name
    with pytest.raises(ValueError, match=r"not a Great Expectations suite validation result.*suite_name"):
        write_validation_artifacts(not_a_result, tmp_path)
    assert json.loads((tmp_path / "validation_result.json").read_text()) == not_a_result
    with pytest.raises(TypeError, match="not a validation outcome"):
        write_validation_artifacts(["a", "list"], tmp_path)  # type: ignore[arg-type]


def test_writing_prints_nothing(outcome: ValidationResult, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    write_validation_artifacts(outcome, tmp_path)
    captured = capfd.readouterr()
    assert captured.out == captured.err == ""
