"""The mechanics that keep a cold ``provision-user`` short: the cyclic collector is paused for the
command and for GX's import, and is given back as it was found (a sync keeps it running)."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Iterator

import pytest

from include.provisioning import cli
from include.provisioning.validate import import_gx


@pytest.fixture
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


def _recording(seen: list[bool], status: int = cli.EXIT_OK):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        seen.append(gc.isenabled())
        return status

    return run


def test_provision_user_runs_with_the_collector_paused_and_gives_it_back(
    collector_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(cli, "_provision_user", _recording(seen, cli.EXIT_FAILED))
    assert cli.main(["provision-user", "adele.vance@contoso.example"]) == cli.EXIT_FAILED
    assert seen == [False]
    assert gc.isenabled()


def test_the_collector_is_given_back_when_provision_user_raises(
    collector_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError("Graph went away")

    monkeypatch.setattr(cli, "_provision_user", broken)
    assert cli.main(["provision-user", "adele.vance@contoso.example"]) == cli.EXIT_FAILED
    assert gc.isenabled()


def test_sync_keeps_the_collector_running(collector_enabled: None, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(cli, "_sync", _recording(seen))
    assert cli.main(["sync", "--dry-run"]) == cli.EXIT_OK
    assert seen == [True]


@pytest.mark.parametrize("enabled", [True, False])
def test_importing_gx_leaves_the_collector_as_it_was(enabled: bool, collector_enabled: None) -> None:
    (gc.enable if enabled else gc.disable)()
    gx = import_gx()
    assert gx.__name__ == "great_expectations" and hasattr(gx, "ValidationDefinition")
    assert gc.isenabled() is enabled


@pytest.mark.parametrize(
    ("argv", "function", "collector"),
    [
        # Giving it back would start a collection of everything the run built, just before exit.
        (["provision-user", "adele.vance@contoso.example"], "_provision_user", False),
        (["sync", "--dry-run"], "_sync", True),
    ],
)
def test_in_a_process_that_ends_after_the_command_only_provision_user_pauses_the_collector_for_good(
    argv: list[str], function: str, collector: bool, collector_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    monkeypatch.setattr(cli, function, _recording(seen))
    assert cli.main(argv, process_ends=True) == cli.EXIT_OK
    assert seen == [collector]
    assert gc.isenabled() is collector
