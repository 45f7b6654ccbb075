"""The README's examples work on what the README sets up: its sandbox tenant is the main command's
(``scripts/demo.sh``'s defaults), and its ``provision-user`` example names a user of that tenant who
is enabled and assigned to the app with one role, so the example provisions someone."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from include.sandbox.generator import generate

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
DEMO = (REPO / "scripts" / "demo.sh").read_text(encoding="utf-8")


def _demo_defaults() -> tuple[int, int]:
    users = re.search(r"^users=(\d+)$", DEMO, re.MULTILINE)
    seed = re.search(r"^seed=(\d+)$", DEMO, re.MULTILINE)
    assert users and seed, "scripts/demo.sh sets users= and seed="
    return int(users.group(1)), int(seed.group(1))


def test_the_readme_sandbox_is_the_main_commands_tenant() -> None:
    users, seed = _demo_defaults()
    assert f"`scripts/demo.sh [--users {users}] [--seed {seed}]`" in README
    generated = re.findall(r"include\.sandbox generate --users (\d+) --seed (\d+) --out (\S+)", README)
    assert generated == [(str(users), str(seed), ".demo/tenant")]
    assert "up --tenant .demo/tenant/tenant.json --org .demo/tenant/org.json" in README


def test_the_readme_provision_user_example_names_an_assigned_user_of_that_tenant(tmp_path: Path) -> None:
    examples = set(re.findall(r"provision-user ([\w.+-]+@[\w.-]+)", README))
    assert len(examples) == 1, examples
    (upn,) = examples
    users, seed = _demo_defaults()
    generate(users=users, seed=seed, out_dir=tmp_path)
    tenant = orjson.loads((tmp_path / "tenant.json").read_bytes())
    by_upn = {u["userPrincipalName"].lower(): u for u in tenant["users"]}
    assert upn.lower() in by_upn, f"{upn} is not in the tenant of scripts/demo.sh ({users} users, seed {seed})"
    user = by_upn[upn.lower()]
    assert user["accountEnabled"] and not user.get("deletedDateTime")
    groups = {g["id"]: g["members"] for g in tenant["groups"]}

    def holds(principal: str) -> bool:  # the user, or a group that holds the user (transitively)
        seen, stack = set(), [principal]
        while stack:
            current = stack.pop()
            if current == user["id"]:
                return True
            if current in groups and current not in seen:
                seen.add(current)
                stack.extend(groups[current])
        return False

    roles = {a["appRoleId"] for a in tenant["appRoleAssignments"] if holds(a["principalId"])}
    assert len(roles) == 1, f"{upn} should hold exactly one app role, holds {roles}"
