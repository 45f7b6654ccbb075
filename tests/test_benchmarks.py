"""The benchmark commands' arithmetic and output, without running a benchmark: the by-hand ratio is
wall time against wall time, shares are printed as measured, every row is printed once, and every
``--sizes`` takes the same comma-separated list."""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import scripts.benchmark_provisioning_page as bench_page
import scripts.benchmark_shards as bench_shards
import scripts.benchmark_sync as bench_sync
from scripts.airflow_server import airflow_environment
from scripts.benchlib import Report, sizes_arg

REPO = Path(__file__).resolve().parents[1]


class FakeSandbox:
    """Just enough of ``SandboxProcess`` for the benchmark's bookkeeping."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.patched: list[str] = []
        self.graph = SimpleNamespace(patch=self._patch)

    def _patch(self, path: str, json: dict[str, Any]) -> Any:
        self.patched.append(path)
        return SimpleNamespace(raise_for_status=lambda: None)

    def reset(self) -> None:
        pass

    def requests(self, service: str) -> dict[str, Any]:
        return {"total": 0, "by_route": {}}

    def stop(self) -> None:
        pass


def test_the_by_hand_ratio_is_wall_time_against_wall_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The engine's cycle: 4.0 s of wall time, of which its phases account for 2.0 s.
    engine = ({"phase_seconds": {"extract": 1.5, "load": 0.5}}, 4.0)
    monkeypatch.setattr(bench_sync, "SandboxProcess", FakeSandbox)
    monkeypatch.setattr(bench_sync, "cached_fixtures", lambda *args, **kwargs: tmp_path)
    monkeypatch.setattr(bench_sync, "_run_sync", lambda *args, **kwargs: engine)
    monkeypatch.setattr(bench_sync, "_by_hand", lambda sandbox: {"users": 10, "created": 10, "failed": 0})
    clock = iter([100.0, 114.8])  # by hand: 14.8 s
    monkeypatch.setattr(bench_sync, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    report = Report()
    bench_sync._baseline(10, 1, tmp_path, report)
    (row,) = report.rows
    assert row.seconds == pytest.approx(14.8)
    assert row.note == "3.7x the engine's wall time (4.00s)"  # not 7.4x: the phases leave out start-up


@pytest.mark.parametrize(
    ("part", "whole", "label"),
    [(60, 10_000, "0.6 %"), (100, 10_000, "1.0 %"), (1, 2_000, "0.1 %"), (1_000, 100_000, "1.0 %")],
)
def test_shares_are_labelled_as_measured(part: int, whole: int, label: str) -> None:
    assert bench_sync.share_label(part, whole) == label


def _tenant(users: int, assigned: int) -> dict[str, Any]:
    ids = [f"user-{n}" for n in range(users)]
    return {
        "users": [{"id": user_id} for user_id in ids],
        "appRoleAssignments": [{"principalId": user_id} for user_id in ids[:assigned]],
    }


@pytest.mark.parametrize(("users", "assigned", "changed"), [(1_000, 600, 10), (10_000, 6_000, 100), (1_000, 4, 4)])
def test_the_one_percent_change_is_one_percent_of_the_users(users: int, assigned: int, changed: int) -> None:
    sandbox = FakeSandbox()
    assert bench_sync._change_one_percent(sandbox, _tenant(users, assigned)) == changed  # type: ignore[arg-type]
    assert len(set(sandbox.patched)) == changed


def test_every_row_of_a_report_is_printed_once(capsys: pytest.CaptureFixture[str]) -> None:
    report = Report()
    report.add("generate tenant", None, "500 users", note="cached")
    report.add("GET /users $select (12) $top=999", 0.27, "498 users, 1 pages", "2", "incl. the token request")
    report.print()
    out = capsys.readouterr().out
    assert out.count("generate tenant") == 1
    assert out.count("GET /users $select (12) $top=999") == 1
    assert out.count("0.27 s") == 1
    assert out.index("step") < out.index("generate tenant") < out.index("GET /users")


@pytest.mark.parametrize(
    ("text", "sizes"),
    [("10000,100000", [10_000, 100_000]), ("10_000, 100_000", [10_000, 100_000]), ("2000", [2_000]), ("5,", [5])],
)
def test_sizes_are_comma_separated(text: str, sizes: list[int]) -> None:
    assert sizes_arg(text) == sizes


@pytest.mark.parametrize("text", ["", "x", "10000 100000", "0", "-5,10"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated positive integers"):
        sizes_arg(text)


def test_every_benchmark_takes_its_sizes_the_same_way() -> None:
    options = {
        script.name: match.group(0)
        for script in sorted((REPO / "scripts").glob("benchmark_*.py"))
        for match in re.finditer(r'add_argument\(\s*"--sizes"[^)]*\)', script.read_text())
    }
    assert sorted(options) == [
        "benchmark_airflow.py",
        "benchmark_mapping.py",
        "benchmark_on_demand.py",
        "benchmark_shards.py",
        "benchmark_sync.py",
        "benchmark_validate_diff.py",
    ]
    assert [name for name, option in options.items() if "type=sizes_arg" not in option] == []


def test_the_page_benchmark_fills_a_realistic_log_and_times_every_query(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in airflow_environment(tmp_path).items():  # main() configures Airflow: undone after
        monkeypatch.setenv(name, value)
    population = bench_page.people(50, random.Random(1))
    rows = list(bench_page.log_rows(3_000, 6, population, random.Random(1)))
    assert len(rows) == 3_000 and len({row["cycle_id"] for row in rows}) == 6
    assert {row["action"] for row in rows} == {action.value for action, _ in bench_page.ACTIONS}
    assert {row["status"] for row in rows} == {status.value for status, _ in bench_page.STATUSES}
    assert all((row["error_code"] is not None) == (row["status"] == "Failure") for row in rows)
    assert [row["at"] for row in rows] == sorted(row["at"] for row in rows)  # written in time order
    bench_page.main(["--rows", "2000", "--cycles", "4", "--repeat", "1", "--backends", "sqlite"])
    table = capsys.readouterr().out
    for label, _, _ in bench_page.queries(bench_page.Filled("c", population[0], 1, 2000, bench_page.START)):
        assert re.search(rf"^{re.escape(label)}\s+\d+\.\d\s", table, re.MULTILINE), label


def test_repeated_shard_runs_are_judged_on_their_median(capsys: pytest.CaptureFixture[str]) -> None:
    def run(number: int, wall: float, peak_mib: int) -> bench_shards.ShardRun:
        task = bench_shards.TaskInstance("commit", 0, wall / 4, wall / 4, peak_mib * 2**20)
        return bench_shards.ShardRun(1_000_000, 4, number, wall, "success", "full", "0.5", [task])

    # One slow run of three: the median (140 s) meets the 150 s target, the slowest alone would not.
    bench_shards._print_medians([run(1, 139.0, 1_400), run(2, 171.5, 1_500), run(3, 140.0, 2_100)])
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("1,000,000"))
    cells = row.split()
    assert cells[:7] == ["1,000,000", "4", "3", "success", "140.0", "139.0-171.5", "met"]
    assert " ".join(cells[7:]) == "2,100 MiB missed (target 2 GiB)"  # the largest task of any run
    bench_shards._print_medians([run(1, 139.0, 1_400)])  # run once: no medians table
    assert capsys.readouterr().out == ""
