"""``validate-config``: check everything a cycle needs before one runs.

Reports every problem it finds rather than the first, because a person fixing configuration
wants the whole list: the mapping table (and its scoping filters), the expectation suite, the
connections, and with ``connect`` whether Graph and Salesforce accept the credentials and whether
Salesforce's User has every field the table sends, writable as its rows apply them
(``salesforce.fields``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from include.provisioning.settings import (
    GRAPH_CONN_ID,
    SALESFORCE_CONN_ID,
    SettingsError,
    SyncOptions,
    connection_from_env,
    state_url_from_env,
)
from include.provisioning.shares import percent

if TYPE_CHECKING:
    from include.provisioning.mapping import MappingTable
    from include.provisioning.salesforce.client import SalesforceSession


def check_config(
    environ: Mapping[str, str], mapping_path: Path, suite_path: Path, *, connect: bool = False
) -> tuple[list[str], list[str]]:
    """Returns (problems, information lines)."""
    from include.provisioning.graph.client import GraphSettings
    from include.provisioning.graph.user_attributes import select_properties
    from include.provisioning.mapping import MappingError, MappingTable
    from include.provisioning.salesforce.client import SalesforceSettings
    from include.provisioning.salesforce.client import connect as salesforce_connect
    from include.provisioning.validate import SuiteError, load_suite

    problems: list[str] = []
    info: list[str] = []
    table: MappingTable | None = None
    try:
        table = MappingTable.load(mapping_path)
        matching = ", ".join(f.target for f in table.matching_fields())
        info.append(f"mapping {mapping_path}: {len(table.fields)} fields, matching on {matching}")
        info.append(f"  Graph attributes read: {', '.join(table.source_attributes())}")
        info.append(f"  Graph $select: {','.join(select_properties(table.source_attributes()))}")
        scoping = "yes" if table.scoping is not None else "none"
        info.append(f"  scoping filters: {scoping}; fingerprint {table.fingerprint()[:12]}")
    except (MappingError, OSError) as exc:
        problems.append(f"mapping {mapping_path}: {exc}")
    try:
        suite, _rules = load_suite(suite_path)
        info.append(f"expectation suite {suite_path}: {len(suite.expectations)} expectations")
    except (SuiteError, OSError) as exc:
        problems.append(f"expectation suite {suite_path}: {exc}")
    try:
        options = SyncOptions.from_env(environ)
        info.append(
            f"options: stop above {percent(options.max_quarantine_share)} quarantined; hold deactivations above "
            f"{options.deletion_threshold_count} or {percent(options.deletion_threshold_share)}; import roles "
            f"{'on' if options.import_roles else 'off'}"
        )
    except SettingsError as exc:
        problems.append(str(exc))
    info.append(f"state store: {_redact(state_url_from_env(environ))}")
    graph = salesforce = None
    try:
        graph = GraphSettings.from_connection(connection_from_env(GRAPH_CONN_ID, environ))
        info.append(f"Graph connection {GRAPH_CONN_ID}: {graph.who()}")
    except (SettingsError, ValueError) as exc:
        problems.append(f"Graph connection: {exc}")
    try:
        salesforce = SalesforceSettings.from_connection(connection_from_env(SALESFORCE_CONN_ID, environ))
        info.append(f"Salesforce connection {SALESFORCE_CONN_ID}: configured")
    except (SettingsError, ValueError) as exc:
        problems.append(f"Salesforce connection: {exc}")
    if connect and graph is not None:
        try:
            asyncio.run(_graph_login(graph))
            info.append("Graph: token issued and the service principal was read")
        except Exception as exc:
            problems.append(_login_problem("Graph", exc))
    if connect and salesforce is not None:
        try:
            session = salesforce_connect(salesforce)
            info.append(f"Salesforce: logged in ({session.method}) to {session.instance_url}")
        except Exception as exc:
            problems.append(_login_problem("Salesforce", exc))
        else:
            if table is not None:
                problems.extend(_salesforce_fields(session, table, info))
    return problems, info


def _login_problem(service: str, exc: BaseException) -> str:
    """A failed login as one problem line: the engine's own errors already start with the service's
    name ("Graph authentication failed for ...", "Salesforce login failed: ..."), so only other
    errors get a ``"<service> login: "`` prefix (not "Graph login: Graph authentication failed")."""
    text = str(exc)
    return text if text.startswith(service) else f"{service} login: {text}"


def _salesforce_fields(session: SalesforceSession, table: MappingTable, info: list[str]) -> list[str]:
    """Problems of the table's targets against the org's ``sobjects/User/describe`` (a failed
    describe is one problem); on success one line goes to ``info``."""
    from include.provisioning.salesforce.fields import check_user_fields, describe_user

    try:
        fields = describe_user(session)
    except Exception as exc:
        return [f"Salesforce describe User: {exc}"]
    problems = check_user_fields(table, fields)
    if not problems:
        info.append(f"Salesforce: User has every mapped field ({len(table.fields)} checked against its describe)")
    return problems


async def _graph_login(settings) -> None:  # type: ignore[no-untyped-def]
    from include.provisioning.graph.client import INTERACTIVE_RETRY, GraphClient

    # A person is waiting: one attempt, so a stopped sandbox or a wrong host answers in seconds.
    async with GraphClient(settings, retry=INTERACTIVE_RETRY, concurrency=1) as client:
        await client.get_json(
            f"/servicePrincipals/{settings.service_principal_id}?$select=id", kind="service_principal"
        )


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}" if ":" in creds else url
    return url
