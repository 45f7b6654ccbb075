"""Make a few changes in the sandbox tenant, as people in Entra would between two cycles.

Used by the main command (``scripts/demo.sh``) so its second, incremental cycle has something to
do: a new job title for a few users, one user disabled, one assignment removed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from include.provisioning.settings import read_env_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, required=True)
    args = parser.parse_args()
    settings = read_env_file(args.env_file)
    graph = httpx.Client(base_url=settings["SANDBOX_GRAPH_URL"], verify=settings["SANDBOX_CA_BUNDLE"], timeout=60)
    state = graph.get("/_sandbox/state").json()
    direct = [a for a in state["appRoleAssignments"] if a["principalType"] == "User"]
    users = {u["id"]: u for u in state["users"] if u.get("accountEnabled") and not u.get("deletedDateTime")}
    assigned = [a for a in direct if a["principalId"] in users]
    for assignment in assigned[:5]:
        user = users[assignment["principalId"]]
        graph.patch(f"/_sandbox/users/{user['id']}", json={"jobTitle": "Promoted in the demo"}).raise_for_status()
        print(f"  changed jobTitle of {user['userPrincipalName']}")
    disabled = users[assigned[5]["principalId"]]
    graph.patch(f"/_sandbox/users/{disabled['id']}", json={"accountEnabled": False}).raise_for_status()
    print(f"  disabled {disabled['userPrincipalName']}")
    removed = assigned[6]
    graph.delete(f"/_sandbox/appRoleAssignments/{removed['id']}").raise_for_status()
    print(f"  removed the app role assignment of {users[removed['principalId']]['userPrincipalName']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
