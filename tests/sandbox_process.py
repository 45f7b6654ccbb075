"""The sandbox for tests: the example fixtures, and the process helpers of
``include/sandbox/process.py`` (the benchmark commands start the sandbox with them too)."""

from __future__ import annotations

from include.sandbox.process import REPO_ROOT, SandboxProcess, generate_tenant

FIXTURES = REPO_ROOT / "tests" / "fixtures"

__all__ = ["FIXTURES", "REPO_ROOT", "SandboxProcess", "generate_tenant"]
