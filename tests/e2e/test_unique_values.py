"""Values the org requires to be unique (issue 8, case 3): the product never derives one that
collides and retries the collision. Entra's default Salesforce mapping sends no CommunityNickname;
Salesforce defaults it on create, unique in the org (the sandbox does the same)."""

from __future__ import annotations

from collections.abc import Callable

from include.provisioning.cycle import CycleResult
from include.provisioning.model import Action, Mode, Status
from tests.e2e.conftest import add_assigned_user
from tests.sandbox_process import SandboxProcess

FABRIKAM_ADELE = ("00000000-0000-0000-0000-00000000adf0", "adele.vance@fabrikam.example")
SAM = ("00000000-0000-0000-0000-00000000aa11", "sam.lee@contoso.example")


def _add_unmanaged_org_user(sandbox: SandboxProcess, nickname: str) -> None:
    org = sandbox.salesforce.get("/_sandbox/state").json()
    template = next(u for u in org["users"] if u.get("IsActive"))
    user = {k: v for k, v in template.items() if k != "Id"}
    user.update(
        {
            "Username": f"{nickname}@partner.example",
            "Email": f"{nickname}@partner.example",
            "CommunityNickname": nickname,
            "FederationIdentifier": None,
        }
    )
    org["users"].append(user)
    sandbox.salesforce.put("/_sandbox/state", json=org).raise_for_status()


def test_users_whose_upn_local_parts_collide_get_nicknames_unique_in_the_org(
    sandbox: SandboxProcess, cycle: Callable[..., CycleResult]
) -> None:
    _add_unmanaged_org_user(sandbox, "sam.lee")
    add_assigned_user(sandbox, *FABRIKAM_ADELE)
    add_assigned_user(sandbox, *SAM)

    result = cycle()
    by_user = {e.entra_id: e for e in result.log}
    for entra_id, _upn in (FABRIKAM_ADELE, SAM):
        assert by_user[entra_id].action is Action.CREATE
        assert by_user[entra_id].status is Status.SUCCESS, by_user[entra_id].error_code
    assert not any(e.error_code and e.error_code.startswith("DUPLICATE") and "NICK" in e.error_code for e in result.log)
    users = sandbox.salesforce.get("/_sandbox/state").json()["users"]
    nicknames = [u["CommunityNickname"].lower() for u in users]
    assert len(nicknames) == len(set(nicknames))
    by_username = {u["Username"].lower(): u for u in users}
    assert by_username["sam.lee@partner.example"]["CommunityNickname"] == "sam.lee"  # the other user keeps his
    assert by_username[SAM[1]]["CommunityNickname"] != "sam.lee"
    # The next cycle changes nothing: Salesforce's nicknames are not "corrected" back.
    again = cycle()
    assert again.summary.created == again.summary.updated == 0


def test_a_create_whose_federation_id_an_org_user_holds_is_held_not_retried(
    sandbox: SandboxProcess, cycle: Callable[..., CycleResult]
) -> None:
    holder = "legacy.sam@partner.example"
    org = sandbox.salesforce.get("/_sandbox/state").json()
    template = next(u for u in org["users"] if u.get("IsActive"))
    org["users"].append(
        {
            **{k: v for k, v in template.items() if k not in ("Id", "CommunityNickname")},
            "Username": holder,
            "Email": holder,
            "FederationIdentifier": SAM[1],  # an unmanaged user carries the SSO identity already
        }
    )
    sandbox.salesforce.put("/_sandbox/state", json=org).raise_for_status()
    add_assigned_user(sandbox, *SAM)

    for _ in range(2):  # held with the reason each cycle, never sent to collide again
        result = cycle(Mode.FULL)
        held = {q.entra_id: q for q in result.quarantined}
        assert SAM[0] in held, [e for e in result.log if e.entra_id == SAM[0]]
        assert any(
            "FederationIdentifier" in r and "already belongs to Salesforce user" in r for r in held[SAM[0]].reasons
        )
        assert not any(e.error_code == "DUPLICATE_VALUE" for e in result.log)
    users = {u["Username"].lower() for u in sandbox.salesforce.get("/_sandbox/state").json()["users"]}
    assert SAM[1] not in users and holder in users
