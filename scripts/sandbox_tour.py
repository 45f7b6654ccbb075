"""Drive a running sandbox through the real clients and print what it served.

Used by the main command (``scripts/demo.sh``) until the sync engine exists: it proves the
settings in the sandbox's env file are all a client needs. Graph is reached through
azure-identity + msgraph-sdk, Salesforce through simple-salesforce (client-credentials login
with the ``domain`` from the connection), both trusting the sandbox CA bundle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import requests
from azure.identity.aio import ClientSecretCredential
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph_core import GraphClientFactory
from simple_salesforce import Salesforce

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from include.sandbox.core.envfile import read_env_file


async def _graph_tour(conn: dict[str, Any]) -> dict[str, Any]:
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
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=extra["verify"]))
    adapter = GraphRequestAdapter(auth, client=http)
    adapter.base_url = extra["base_url"]
    client = GraphServiceClient(request_adapter=adapter)
    try:
        sp = await client.service_principals.by_service_principal_id(extra["service_principal_id"]).get()
        assert sp is not None
        # Raw pages: typed models cost ~6 ms per user (reference/graph.md), raw JSON is instant.
        assignments = await _count_pages(adapter, f"/servicePrincipals/{sp.id}/appRoleAssignedTo?$top=999")
        users = await _count_pages(adapter, "/users?$select=id,userPrincipalName&$top=999")
        return {"app": sp.display_name, "roles": [r.value for r in sp.app_roles or []], **assignments, **users}
    finally:
        await credential.close()


async def _count_pages(adapter: GraphRequestAdapter, path: str) -> dict[str, int]:
    url: str | None = adapter.base_url + path
    items = pages = 0
    while url:
        info = RequestInformation()
        info.http_method = Method.GET
        info.url = url  # the whole nextLink, as Graph's paging rules require (no template expansion)
        body = await adapter.send_primitive_async(info, "bytes", {})
        page = orjson.loads(body or b"{}")
        items += len(page.get("value", []))
        pages += 1
        url = page.get("@odata.nextLink")
    name = path.split("?", maxsplit=1)[0].rsplit("/", 1)[-1]
    return {f"{name}_items": items, f"{name}_pages": pages}


def _salesforce_tour(conn: dict[str, Any]) -> dict[str, Any]:
    extra = conn["extra"]
    session = requests.Session()
    session.verify = extra["verify"]
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override session.verify
    sf = Salesforce(
        consumer_key=extra["consumer_key"],
        consumer_secret=extra["consumer_secret"],
        domain=extra["domain"],
        version=extra["version"],
        session=session,
    )
    profiles = sf.query("SELECT Id, Name FROM Profile")["records"]
    active = sf.query("SELECT COUNT() FROM User WHERE IsActive = true")["totalSize"]
    csv_pages = sf.bulk2.User.query("SELECT Id, Username, IsActive FROM User", max_records=50000, wait=1)
    bulk_rows = sum(max(0, len(page.splitlines()) - 1) for page in csv_pages)
    return {
        "instance": sf.sf_instance,
        "profiles": [p["Name"] for p in profiles],
        "active_users": active,
        "users_via_bulk_query": bulk_rows,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-file", type=Path, required=True)
    args = parser.parse_args()
    settings = read_env_file(args.env_file)
    started = time.monotonic()
    graph = asyncio.run(_graph_tour(json.loads(settings["AIRFLOW_CONN_MSGRAPH_DEFAULT"])))
    salesforce = _salesforce_tour(json.loads(settings["AIRFLOW_CONN_SALESFORCE_DEFAULT"]))
    ca = settings["SANDBOX_CA_BUNDLE"]
    counts = {
        name: httpx.get(f"{settings[key]}/_sandbox/requests", verify=ca).json()
        for name, key in (("graph", "SANDBOX_GRAPH_URL"), ("salesforce", "SANDBOX_SALESFORCE_URL"))
    }
    print(f"Graph ({settings['SANDBOX_GRAPH_URL']}), through azure-identity + msgraph-sdk:")
    print(f"  enterprise app {graph['app']!r} with roles {graph['roles']}")
    print(f"  {graph['appRoleAssignedTo_items']} app role assignments in {graph['appRoleAssignedTo_pages']} page(s)")
    print(f"  {graph['users_items']} directory users in {graph['users_pages']} page(s)")
    print(f"Salesforce ({settings['SANDBOX_SALESFORCE_URL']}), through simple-salesforce:")
    print(f"  profiles {salesforce['profiles']}")
    print(
        f"  {salesforce['active_users']} active users (REST query), "
        f"{salesforce['users_via_bulk_query']} users (Bulk 2.0 query)"
    )
    for name, count in counts.items():
        print(f"Requests served by the {name} emulator: {count['total']}")
        for route, n in count["by_route"].items():
            print(f"  {n:>6}  {route}")
    print(f"Tour finished in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
