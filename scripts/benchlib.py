"""Pieces the benchmark commands share: a printed table, peak-RSS sampling, a process tree's CPU,
cached tenants, and the ``--sizes`` syntax (comma-separated, the same in every benchmark)."""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from include.sandbox.generator import generate

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    step: str
    seconds: float | None
    items: str = ""
    requests: str = ""
    note: str = ""

    def cells(self) -> tuple[str, ...]:
        seconds = f"{'-':>8}" if self.seconds is None else f"{self.seconds:8.2f} s"
        return (self.step, seconds, self.items, self.requests, self.note)


HEADERS = ("step", "time", "items", "API requests", "note")
WIDTHS = (50, 10, 34, 18)
"""Column widths but the last's; a longer cell pushes the rest of its row right."""


def _line(cells: tuple[str, ...]) -> str:
    padded = [cell.ljust(width) for cell, width in zip(cells, WIDTHS, strict=False)]
    return "  ".join([*padded, *cells[len(WIDTHS) :]]).rstrip()


@dataclass
class Report:
    """The benchmark's table, printed a row at a time as each step is measured: a long run shows
    its progress, and every measurement is printed once."""

    rows: list[Row] = field(default_factory=list)

    def add(self, *args: Any, **kwargs: Any) -> None:
        if not self.rows:
            header = _line(HEADERS)
            print(f"\n{header}\n{'-' * len(header)}", flush=True)
        self.rows.append(Row(*args, **kwargs))
        print(_line(self.rows[-1].cells()), flush=True)

    def print(self) -> None:
        """Close the table (its rows were printed as they were added)."""
        if self.rows:
            print("-" * len(_line(HEADERS)), flush=True)


def sizes_arg(text: str) -> list[int]:
    """``--sizes 10000,100000`` (also ``10_000``): positive integers, comma-separated; the
    argparse ``type`` of every benchmark's list of sizes."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers like 10000,100000, got {text!r}")
    return sizes


class PeakRss:
    """Samples a process's RSS; on Linux also reads the kernel's exact high-water mark."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.process = psutil.Process(pid)
        self.sampled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        while not self._stop.is_set():
            try:
                self.sampled = max(self.sampled, self.process.memory_info().rss)
            except psutil.Error:
                return
            self._stop.wait(interval)

    def high_water_mark(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def tree_cpu(pid: int) -> float:
    """User + system CPU seconds a live process and its live descendants have used so far, with
    the children it has reaped: a process the sandbox starts works for it (its CPU is the
    sandbox's too)."""
    process = psutil.Process(pid)
    own = process.cpu_times()
    total = own.user + own.system + own.children_user + own.children_system
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.NoSuchProcess:  # ended between the listing and the reading
            continue
        total += times.user + times.system
    return total


def cli_sync_command(env_file: Path, state_url: str, summary_path: Path, report_dir: Path) -> list[str]:
    """The engine's command-line cycle as the benchmarks run it (quiet, summary as JSON)."""
    return [
        sys.executable,
        *("-m", "include.provisioning", "sync", "--env-file", str(env_file), "--state-url", state_url),
        *("--summary-json", str(summary_path), "--quiet", "--report-dir", str(report_dir)),
    ]


def generator_fingerprint() -> str:
    """Cached fixtures are reused only if the generator's source is unchanged."""
    digest = hashlib.sha256()
    for path in sorted((REPO_ROOT / "include" / "sandbox" / "generator").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def cached_fixtures(users: int, seed: int, cache: Path, report: Report, *, via_cli: bool = False) -> Path:
    """The tenant + org pair for ``users`` and ``seed``, generated once per generator version.

    ``via_cli`` runs ``python -m include.sandbox generate`` (what a user runs) instead of calling
    the generator in this process; the files are the same (same seed, same bytes)."""
    out = cache / f"tenant-{users}-seed{seed}-{generator_fingerprint()}"
    if (out / "tenant.json").exists() and (out / "org.json").exists():
        where = out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out
        report.add("generate tenant", None, f"{users:,} users", note=f"cached in {where}")
        return out
    started = time.perf_counter()
    if via_cli:
        command = [sys.executable, "-m", "include.sandbox", "generate", "--users", str(users), "--seed", str(seed)]
        subprocess.run([*command, "--out", str(out)], cwd=REPO_ROOT, check=True, stdout=subprocess.DEVNULL)
        note = "python -m include.sandbox generate"
    else:
        summary = generate(users=users, seed=seed, out_dir=out)
        note = f"{summary['groups']} groups"
    elapsed = time.perf_counter() - started
    size = ((out / "tenant.json").stat().st_size + (out / "org.json").stat().st_size) / 2**20
    report.add("generate tenant", elapsed, f"{users:,} users", note=f"{size:,.0f} MiB, {note}")
    return out
