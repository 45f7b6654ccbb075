"""The app's roles: read them, and make every Salesforce Profile an assignable role.

This is what Entra's Salesforce app does when it "imports custom roles from Salesforce":
each Profile becomes an enabled app role whose value is the profile name, so an admin can
assign it and ``SingleAppRoleAssignment`` turns it into the user's ProfileName.

Rules: existing roles keep their ids (assignments point at ids); a disabled role named like a
profile is enabled again; no role is ever removed (Graph refuses to remove an enabled role,
and removing one would orphan its assignments) — roles that name no profile are reported.
New roles get a stable id derived from the app id and the profile name, so a re-run after a
crash between PATCH and bookkeeping creates nothing twice.

Reads are raw JSON like the rest of the package: the first typed read of a
``ServicePrincipal`` costs about 2.3 s of imports (kiota resolves every model's field
deserialisers), more than a whole no-change cycle may take. The PATCH body is a typed
``Application``: serialising typed models is cheap.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from include.provisioning.graph.client import GraphClient, GraphError

ROLE_ID_NAMESPACE = uuid.UUID("6f1f3a52-5b4e-4c54-9f0e-0b8f6f2d6a11")


@dataclass
class RoleSyncResult:
    application_object_id: str
    added: list[str] = field(default_factory=list)
    """Profile names that became new app roles."""
    enabled: list[str] = field(default_factory=list)
    """Profile names whose disabled app role was enabled again."""
    unchanged: list[str] = field(default_factory=list)
    not_profiles: list[str] = field(default_factory=list)
    """Role values that name no Salesforce Profile (kept; an admin may remove them)."""
    patched: bool = False
    roles: list[dict[str, Any]] = field(default_factory=list)
    """The application's roles after the sync."""

    def describe(self) -> str:
        """One line for the status line and the cycle's notes, e.g. "2 added (Analyst, Auditor),
        1 enabled (Support), 12 unchanged; application updated"."""
        parts = []
        for label, names in (("added", self.added), ("enabled", self.enabled)):
            if names:
                shown = ", ".join(names[:5]) + (f", +{len(names) - 5} more" if len(names) > 5 else "")
                parts.append(f"{len(names)} {label} ({shown})")
        parts.append(f"{len(self.unchanged)} unchanged")
        if self.not_profiles:
            parts.append(f"{len(self.not_profiles)} role(s) name no Profile ({', '.join(self.not_profiles[:5])})")
        return "; ".join(parts) + ("; application updated" if self.patched else "; nothing to change")


ROLE_KEYS = ("id", "value", "displayName", "description", "allowedMemberTypes", "isEnabled", "origin")


def normalise_role(role: dict[str, Any]) -> dict[str, Any]:
    """Graph's JSON for an app role, with every key present."""
    out = {key: role.get(key) for key in ROLE_KEYS}
    out["allowedMemberTypes"] = list(role.get("allowedMemberTypes") or [])
    out["isEnabled"] = bool(role.get("isEnabled", True))
    return out


def role_from_dict(data: dict[str, Any]) -> Any:
    """A typed ``AppRole`` for the PATCH body (serialising typed models is cheap; only
    deserialising them is slow)."""
    from msgraph.generated.models.app_role import AppRole

    return AppRole(
        id=uuid.UUID(str(data["id"])),
        value=data.get("value"),
        display_name=data.get("displayName"),
        description=data.get("description"),
        allowed_member_types=list(data.get("allowedMemberTypes") or ["User"]),
        is_enabled=bool(data.get("isEnabled", True)),
        origin=data.get("origin") or "Application",
    )


async def _service_principal(client: GraphClient, sp_id: str) -> dict[str, Any]:
    return await client.get_json(
        f"/servicePrincipals/{sp_id}?$select=id,appId,appRoles,displayName", kind="service_principal"
    )


async def read_app_roles(client: GraphClient, sp_id: str) -> list[dict[str, Any]]:
    """The service principal's ``appRoles`` (the roles users can be assigned), as Graph's JSON."""
    sp = await _service_principal(client, sp_id)
    return [normalise_role(role) for role in sp.get("appRoles") or []]


async def find_application_object_id(client: GraphClient, app_id: str) -> str:
    """The app registration's object id: the connection's ``application_object_id``, else
    ``/applications(appId='...')``, else ``/applications?$filter=appId eq '...'``."""
    if client.settings.application_object_id:
        return client.settings.application_object_id
    by_key = await client.request("GET", f"/applications(appId='{app_id}')?$select=id", kind="application")
    if by_key.ok and isinstance(by_key.body, dict) and by_key.body.get("id"):
        return str(by_key.body["id"])
    query = urlencode({"$filter": f"appId eq '{app_id}'", "$select": "id"}, quote_via=quote, safe="$,()'")
    listed = await client.request("GET", f"/applications?{query}", kind="application")
    found = listed.body.get("value") if listed.ok and isinstance(listed.body, dict) else None
    if found:
        return str(found[0]["id"])
    raise GraphError(
        f"cannot find the application object of app {app_id}: /applications(appId=...) answered "
        f"{by_key.describe()}, /applications?$filter answered {listed.describe()}; set extra.application_object_id "
        f"on connection {client.settings.conn_id!r}"
    )


def merge_profiles(
    existing: list[dict[str, Any]], profile_names: Iterable[str], app_id: str
) -> tuple[list[dict[str, Any]], RoleSyncResult]:
    """The role list after importing ``profile_names`` (pure; see the module's rules)."""
    result = RoleSyncResult(application_object_id="")
    profiles = [name for name in dict.fromkeys(n.strip() for n in profile_names if n and n.strip())]
    by_value = {role.get("value"): role for role in existing}
    roles = [dict(role) for role in existing]
    position = {role.get("value"): index for index, role in enumerate(roles)}
    for name in profiles:
        role = by_value.get(name)
        if role is None:
            roles.append(
                {
                    "id": str(uuid.uuid5(ROLE_ID_NAMESPACE, f"{app_id}:{name}")),
                    "value": name,
                    "displayName": name,
                    "description": f"Salesforce profile {name}",
                    "allowedMemberTypes": ["User"],
                    "isEnabled": True,
                    "origin": "Application",
                }
            )
            result.added.append(name)
        elif not role.get("isEnabled", True):
            roles[position[name]]["isEnabled"] = True
            result.enabled.append(name)
        else:
            result.unchanged.append(name)
    wanted = set(profiles)
    result.not_profiles = [str(r.get("value")) for r in existing if r.get("value") not in wanted]
    result.patched = bool(result.added or result.enabled)
    result.roles = roles
    return roles, result


async def sync_app_roles_from_profiles(client: GraphClient, sp_id: str, profile_names: list[str]) -> RoleSyncResult:
    """Make every Salesforce Profile an enabled app role (PATCH only when something changes)."""
    from msgraph.generated.models.application import Application

    sp = await _service_principal(client, sp_id)
    app_id = str(sp.get("appId"))
    object_id = await find_application_object_id(client, app_id)
    # The application's own list is the one PATCH replaces.
    app = await client.get_json(f"/applications/{object_id}?$select=id,appRoles", kind="application")
    existing = [normalise_role(role) for role in app.get("appRoles") or []]
    roles, result = merge_profiles(existing, profile_names, app_id)
    result.application_object_id = object_id
    if result.patched:
        body = Application(app_roles=[role_from_dict(role) for role in roles])
        builder = client.sdk.applications.by_application_id(object_id)
        await client.typed("application_update", lambda: builder.patch(body))
    return result
