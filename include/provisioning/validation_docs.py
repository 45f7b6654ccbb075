"""Keep Great Expectations' own record of a validation run: its result JSON and its Data Docs page.

``validate()`` hands back GX's result as ``ValidationResult.gx_result``
(``ExpectationSuiteValidationResult.to_json_dict()``). This module writes it where a person can open
it the way GX users do::

    <directory>/validation_result.json    GX's result, byte for byte what GX's filesystem
                                          validation results store writes (indent 2, sorted keys)
    <directory>/data_docs/index.html      the Data Docs page GX renders for it

The page is GX's own: ``ValidationResultsPageRenderer`` and ``DefaultJinjaPageView``, the pair a GX
Data Docs site builder uses for each validation page (``render/renderer/site_builder.py``), minus the
site around it (index page, suite page and 4 MB of static assets per run). What the page references:

- Bootstrap, bootstrap-table, jQuery, Font Awesome and Vega from public CDNs, and the GX logo from
  GX's S3 bucket. Offline the page loses layout and icons but keeps every fact as text (suite,
  status, statistics, and per column each expectation with "N unexpected values found. P% of T
  total rows." or "0% unexpected"). GX's own hook for custom styles,
  ``custom_data_docs/styles/data_docs_custom_styles.css`` (inlined into the page), puts a ✔/✘/⚠
  glyph where the icons go, so pass and fail stay visible without the network.
- "Home" and the suite name link to ``index.html`` and ``expectations/<suite>.html`` of a site
  that is not built; they go nowhere. The "how to" buttons and walkthrough are switched off.

Two choices differ from a bare GX page:

- Each expectation is labelled with the reason its quarantined rows carry (``expectation_reason``,
  e.g. "mail: not e-mail-shaped (expect_column_values_to_match_regex)"), set as the expectation's
  ``description`` on a copy of the result: GX shows a description instead of its generated
  sentence, the suite's descriptions alone ("not e-mail-shaped") name no expectation type, and
  the same words as the failure report let a reader match the two. The JSON is not touched.
- No sample of failing values: the engine asks GX for the failing rows' positions without their
  values (``COMPLETE`` with ``exclude_unexpected_values``, as fast as ``SUMMARY``); values would
  put personal data in the page, and the failure report already names the users.

Directories: anything with ``/``, ``mkdir(parents=..., exist_ok=...)`` and ``open("wb")``:
``pathlib.Path``, universal_pathlib's ``UPath`` and Airflow's ``ObjectStoragePath`` (a ``UPath``),
so a run-scoped path in object storage works. Files are written through ``open()``, never through
local-only calls, and Airflow is not imported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol, Self, TypeAlias, TypeVar

from include.provisioning.validate import ValidationResult, expectation_reason, import_gx

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

VALIDATION_RESULT_FILE = "validation_result.json"
DATA_DOCS_DIR = "data_docs"
DATA_DOCS_PAGE = "index.html"
CUSTOM_STYLES_DIRECTORY = Path(__file__).resolve().parent / "custom_data_docs" / "styles"
"""Holds ``data_docs_custom_styles.css``, handed to GX's page view as ``custom_styles_directory``."""


class WritableDirectory(Protocol):
    """What ``write_validation_artifacts`` needs of a directory (pathlib.Path, UPath, ObjectStoragePath)."""

    def __truediv__(self, key: str) -> Self: ...

    def mkdir(self, mode: int = ..., parents: bool = ..., exist_ok: bool = ...) -> None: ...

    def open(self, mode: str = ...) -> IO[Any]: ...


DirectoryT = TypeVar("DirectoryT", bound=WritableDirectory)

ValidationSource: TypeAlias = "ValidationResult | Mapping[str, Any] | ExpectationSuiteValidationResult | None"
"""The engine's outcome, GX's result as a dict (e.g. read back from ``validation_result.json``), GX's
result object, or ``None`` (GX did not run)."""


def gx_result_of(source: ValidationSource) -> dict[str, Any] | None:
    """GX's result as its JSON dict, or ``None`` when GX did not run.

    Accepts ``ValidationResult`` (its ``gx_result``), a mapping already in that shape (returned as
    a plain dict, not checked here), an ``ExpectationSuiteValidationResult`` (``to_json_dict()``)
    or ``None``. Raises ``TypeError`` for anything else.
    """
    if source is None:
        return None
    if isinstance(source, ValidationResult):
        return source.gx_result
    if isinstance(source, Mapping):
        return dict(source)
    to_json_dict = getattr(source, "to_json_dict", None)
    if callable(to_json_dict):
        return dict(to_json_dict())
    raise TypeError(f"not a validation outcome or a GX validation result: {type(source).__name__}")


def validation_result_json(result: Mapping[str, Any]) -> bytes:
    """GX's result as the bytes GX's filesystem validation results store writes for it.

    (``ValidationResultsStore.serialize``: ``json.dumps(..., indent=2, sort_keys=True)``, ASCII.)
    Raises ``TypeError`` if ``result`` holds something JSON cannot encode.
    """
    return json.dumps(result, indent=2, sort_keys=True).encode("ascii")


def _labelled_with_reasons(result: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``result`` whose expectations are described with the quarantine reason.

    Only the ``results`` list, each entry and its ``expectation_config`` are copied; the large
    parts (``unexpected_index_list``) are shared, so ``result`` stays unchanged and cheap to label.
    """
    entries = []
    for entry in result.get("results") or []:
        config = entry.get("expectation_config")
        if isinstance(config, Mapping) and config.get("type"):
            described = {**config, "description": expectation_reason(config)}
            entries.append({**entry, "expectation_config": described})
        else:
            entries.append(entry)
    return {**result, "results": entries}


def render_data_docs_page(result: Mapping[str, Any]) -> str:
    """The Data Docs HTML page GX renders for one suite validation result (its JSON dict).

    Raises ``ValueError`` when ``result`` is not in the shape of
    ``ExpectationSuiteValidationResult.to_json_dict()`` (GX's schema refuses it).
    """
    import_gx()
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.render.renderer import ValidationResultsPageRenderer
    from great_expectations.render.view import DefaultJinjaPageView
    from marshmallow import ValidationError

    try:
        suite_result = ExpectationSuiteValidationResultSchema().load(_labelled_with_reasons(result))
    except ValidationError as exc:
        raise ValueError(f"not a Great Expectations suite validation result: {exc.messages}") from exc
    document = ValidationResultsPageRenderer().render(suite_result)
    view = DefaultJinjaPageView(custom_styles_directory=str(CUSTOM_STYLES_DIRECTORY))
    # show_how_to_buttons=False: no walkthrough modal and no links to GX's tutorials in a run's record.
    return str(view.render(document, show_how_to_buttons=False))


def _write(path: WritableDirectory, data: bytes) -> None:
    with path.open("wb") as handle:  # open(), not write_bytes(): the one call every fsspec path has
        handle.write(data)


def write_validation_artifacts(source: ValidationSource, directory: DirectoryT) -> dict[str, DirectoryT]:
    """Write GX's result JSON and its Data Docs page into ``directory``; return where they went.

    Returns ``{"validation_result": directory / "validation_result.json",
    "data_docs": directory / "data_docs" / "index.html"}``, or ``{}`` when GX did not run
    (``validate`` had nothing in scope, so ``gx_result`` is ``None``): nothing is written and no
    directory is created, as a no-change incremental cycle every 20 minutes should leave no
    empty folders in object storage. ``directory`` and its parents are created as needed; existing
    files are replaced, so a re-run task rewrites them.

    The JSON is written first: if GX cannot render the page (``ValueError`` for a dict not shaped
    like GX's result, or whatever GX's renderer raises) the result is still kept and the error
    propagates. ``TypeError`` for an unknown ``source``; ``OSError`` (or the filesystem's own
    error) from writing.
    """
    result = gx_result_of(source)
    if result is None:
        return {}
    docs = directory / DATA_DOCS_DIR
    docs.mkdir(parents=True, exist_ok=True)
    result_path = directory / VALIDATION_RESULT_FILE
    _write(result_path, validation_result_json(result))
    page_path = docs / DATA_DOCS_PAGE
    _write(page_path, render_data_docs_page(result).encode("utf-8"))
    return {"validation_result": result_path, "data_docs": page_path}
