"""The by-hand baseline the sync benchmark compares against.

What a person without this product would script: msgraph-sdk's typed models for the
assignments, groups and users, and one simple-salesforce REST call per user to create it.
It is deliberately straightforward, not deliberately slow: no sleeps, one client each.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import httpx
import requests
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

SELECT = ["id", "userPrincipalName", "mail", "givenName", "surname", "accountEnabled"]


async def _graph_users(conn: dict[str, Any]) -> list[tuple[Any, str]]:
    extra = conn["extra"]
    credential = ClientSecretCredential(
        extra["tenant_id"],
        conn["login"],
        conn["password"],
        authority=extra["authority"],
        connection_verify=extra["verify"],
    )
    auth = AzureIdentityAuthenticationProvider(
        credential, scopes=extra["scopes"], allowed_hosts=[urlsplit(extra["base_url"]).hostname or ""]
    )
    adapter = GraphRequestAdapter(
        auth, client=GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=extra["verify"]))
    )
    adapter.base_url = extra["base_url"]
    client = GraphServiceClient(request_adapter=adapter)
    try:
        sp_builder = client.service_principals.by_service_principal_id(extra["service_principal_id"])
        sp = await sp_builder.get()
        roles = {str(r.id): r.value for r in sp.app_roles or []}
        page = await sp_builder.app_role_assigned_to.get()
        assignments = []
        while page is not None:
            assignments += page.value or []
            page = (
                await sp_builder.app_role_assigned_to.with_url(page.odata_next_link).get()
                if page.odata_next_link
                else None
            )
        role_of: dict[str, str] = {}
        for assignment in assignments:
            role = roles.get(str(assignment.app_role_id), "Standard User")
            if assignment.principal_type == "Group":
                members = client.groups.by_group_id(str(assignment.principal_id)).transitive_members.graph_user
                member_page = await members.get()
                while member_page is not None:
                    for user in member_page.value or []:
                        role_of.setdefault(str(user.id), role)
                    member_page = (
                        await members.with_url(member_page.odata_next_link).get()
                        if member_page.odata_next_link
                        else None
                    )
            else:
                role_of.setdefault(str(assignment.principal_id), role)
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=SELECT, top=999)
        users_page = await client.users.get(RequestConfiguration(query_parameters=query))
        wanted = []
        while users_page is not None:
            wanted += [(u, role_of[str(u.id)]) for u in users_page.value or [] if str(u.id) in role_of]
            users_page = (
                await client.users.with_url(users_page.odata_next_link).get() if users_page.odata_next_link else None
            )
        return wanted
    finally:
        await credential.close()


async def by_hand_sync(settings: dict[str, str]) -> dict[str, Any]:
    users = await _graph_users(json.loads(settings["AIRFLOW_CONN_MSGRAPH_DEFAULT"]))
    conn = json.loads(settings["AIRFLOW_CONN_SALESFORCE_DEFAULT"])
    session = requests.Session()
    session.verify = conn["extra"]["verify"]
    session.trust_env = False
    sf = Salesforce(
        consumer_key=conn["extra"]["consumer_key"],
        consumer_secret=conn["extra"]["consumer_secret"],
        domain=conn["extra"]["domain"],
        version=conn["extra"]["version"],
        session=session,
    )
    profiles = {p["Name"]: p["Id"] for p in sf.query("SELECT Id, Name FROM Profile")["records"]}
    created = failed = 0
    for user, role in users:
        if not user.account_enabled:
            continue
        upn = user.user_principal_name or ""
        try:
            sf.User.create(
                {
                    "Username": upn,
                    "LastName": user.surname or ".",
                    "FirstName": user.given_name,
                    "Email": user.mail or upn,
                    "Alias": upn[:8],
                    "TimeZoneSidKey": "America/Los_Angeles",
                    "LocaleSidKey": "en_US",
                    "EmailEncodingKey": "UTF-8",
                    "LanguageLocaleKey": "en_US",
                    "ProfileId": profiles.get(role, profiles.get("Standard User")),
                }
            )
            created += 1
        except SalesforceError:
            failed += 1
    return {"users": len(users), "created": created, "failed": failed}
