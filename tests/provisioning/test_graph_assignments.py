"""Role resolution from assignment and group-member pages (pure logic)."""

from __future__ import annotations

from include.provisioning.graph.assignments import AssignmentCollector, RoleCatalog, resolve_grants
from include.provisioning.model import DEFAULT_ACCESS_ROLE_ID, DEFAULT_ACCESS_ROLE_VALUE

STANDARD = "00000000-0000-0000-0000-000000000065"
ADMIN = "00000000-0000-0000-0000-000000000066"
REMOVED = "00000000-0000-0000-0000-0000000000ff"
CATALOG = RoleCatalog.from_service_principal(
    {
        "appRoles": [
            {"id": STANDARD, "value": "Standard User"},
            {"id": ADMIN.upper(), "value": "System Administrator"},
            {"id": "00000000-0000-0000-0000-000000000099", "value": None},
        ]
    }
)


def assignment(asg: str, principal: str, kind: str, role: str | None, name: str | None = None) -> dict[str, object]:
    return {"id": asg, "principalId": principal, "principalType": kind, "appRoleId": role, "principalDisplayName": name}


def test_direct_and_group_paths_to_one_role_are_one_role() -> None:
    collector = AssignmentCollector()
    new = collector.add_assignments(
        [
            assignment("a1", "u1", "User", STANDARD),
            assignment("a2", "g1", "Group", STANDARD, "Sales EMEA"),
            assignment("a3", "g2", "Group", STANDARD, "Sales"),
        ]
    )
    assert new == [("g1", "Sales EMEA"), ("g2", "Sales")]
    collector.add_members("g1", ["u1", "u2"])
    collector.add_members("g2", ["u2", "u2"])
    roles = collector.resolve(CATALOG)
    assert roles["u1"].roles == ["Standard User"] and roles["u1"].via == "direct; group:Sales EMEA"
    assert roles["u2"].roles == ["Standard User"] and roles["u2"].via == "group:Sales; group:Sales EMEA"
    assert not roles["u1"].problems and not roles["u2"].problems


def test_a_group_assigned_twice_is_expanded_once_and_grants_both_roles() -> None:
    collector = AssignmentCollector()
    first = collector.add_assignments([assignment("a1", "g1", "Group", STANDARD, "Sales")])
    second = collector.add_assignments([assignment("a2", "g1", "Group", ADMIN, "Sales")])
    assert first == [("g1", "Sales")] and second == []
    collector.add_members("g1", ["u1"])
    assert collector.resolve(CATALOG)["u1"].roles == ["Standard User", "System Administrator"]


def test_two_different_roles_are_kept_for_the_mapping_to_judge() -> None:
    collector = AssignmentCollector()
    collector.add_assignments([assignment("a1", "u1", "User", STANDARD), assignment("a2", "u1", "User", ADMIN)])
    resolved = collector.resolve(CATALOG)["u1"]
    assert resolved.roles == ["Standard User", "System Administrator"] and not resolved.problems


def test_the_default_access_role_yields_to_a_real_role_but_stays_alone() -> None:
    collector = AssignmentCollector()
    collector.add_assignments(
        [
            assignment("a1", "u1", "User", DEFAULT_ACCESS_ROLE_ID),
            assignment("a2", "u1", "User", STANDARD),
            assignment("a3", "u2", "User", None),  # no appRoleId: the default role
        ]
    )
    roles = collector.resolve(CATALOG)
    assert roles["u1"].roles == ["Standard User"]
    assert roles["u2"].roles == [DEFAULT_ACCESS_ROLE_VALUE]


def test_a_removed_role_quarantines_the_user_naming_the_assignment() -> None:
    collector = AssignmentCollector()
    collector.add_assignments(
        [
            assignment("a1", "u1", "User", STANDARD),
            assignment("a2", "g1", "Group", REMOVED, "Old Team"),
            assignment("a3", "u3", "User", "00000000-0000-0000-0000-000000000099"),  # role without a value
        ]
    )
    collector.add_members("g1", ["u1", "u2"])
    roles = collector.resolve(CATALOG)
    assert roles["u1"].problems == [
        f"app role assignment a2 (group:Old Team) grants app role {REMOVED}, which the application does not "
        "define (removed, or without a value)"
    ]
    assert roles["u2"].problems and "a2" in roles["u2"].problems[0]
    assert roles["u3"].problems and "a3 (direct)" in roles["u3"].problems[0]


def test_service_principal_assignments_are_counted_apart_and_not_users() -> None:
    collector = AssignmentCollector()
    collector.add_assignments([assignment("a1", "sp1", "ServicePrincipal", STANDARD), {"id": "a2"}])
    assert collector.ignored_principals == 1 and collector.assignment_count == 1
    assert collector.resolve(CATALOG) == {}


def test_shared_results_do_not_leak_between_users() -> None:
    collector = AssignmentCollector()
    collector.add_assignments([assignment(f"a{i}", f"u{i}", "User", STANDARD) for i in range(3)])
    roles = collector.resolve(CATALOG)
    assert {uid: r.roles for uid, r in roles.items()} == {f"u{i}": ["Standard User"] for i in range(3)}


def test_resolve_gives_each_user_what_their_own_grants_give() -> None:
    """Results shared between users with the same direct roles and groups (resolve's cache) are
    what resolving each user's own grants gives: direct grants in their order, then the groups
    in the order their members were read, a group once however often the user is listed."""
    collector = AssignmentCollector()
    collector.add_assignments(
        [
            assignment("a1", "u1", "User", STANDARD),
            assignment("a2", "u2", "User", STANDARD),
            assignment("a3", "u3", "User", STANDARD),
            assignment("a4", "u3", "User", ADMIN),
            assignment("a5", "u4", "User", REMOVED),
            assignment("a6", "u5", "User", REMOVED),
            assignment("a7", "g1", "Group", ADMIN, "Admins"),
            assignment("a8", "g2", "Group", None, "Everyone"),
        ]
    )
    collector.add_members("g1", ["u2", "u6", "u3", "u6"])
    collector.add_members("g2", ["u6", "u7", "u1", "u2"])
    collector.add_members("g1", ["u7"])
    groups_of = {"u1": ["g2"], "u2": ["g1", "g2"], "u3": ["g1"], "u6": ["g1", "g2"], "u7": ["g1", "g2"]}
    users = {"u1", "u2", "u3", "u4", "u5", "u6", "u7"}
    expected = {
        user: resolve_grants(collector.grants_of(collector.direct.get(user, []), groups_of.get(user, [])), CATALOG)
        for user in users
    }
    assert collector.resolve(CATALOG) == expected
    assert expected["u4"].problems != expected["u5"].problems  # each names the user's own assignment
    assert expected["u7"].roles == ["System Administrator"] and expected["u7"].via == "group:Admins; group:Everyone"
