"""Benchmark the sandbox emulators with a generated tenant, through the real clients.

    python scripts/benchmark_sandbox.py [--users 100000] [--seed 1] [--bulk-rows 100000]
    python scripts/benchmark_sandbox.py --users 100 --org ORG.json --ingest insert=A.csv --ingest update=B.csv

The second form measures the sandbox's own CPU on given Bulk ingest files (say the CSVs a load task
sent, against the org fixture of that run's tenant; the small generated tenant only serves Graph):
each job is created, its file uploaded in one ``PUT`` as the loader does, closed, polled until it
ends and its three result sets read; it prints the sandbox process's CPU seconds (user + system)
and the wall time of each phase, and digests of the results and of the org state afterwards (its
timestamps left out), so two trees can be compared on the same files (run each tree's copy of this
file with ``PYTHONPATH=<tree>``, interleaved, and compare medians). With ``--together`` the jobs are
all uploaded first, then closed at once and awaited together, as the tasks of a sharded load queue
theirs: ``process`` is then the wall time until the last job ends.

Generates a tenant + org pair (or reuses the one cached under ``.bench/`` for the same size,
seed and generator source), starts the sandbox as users do (``python -m include.sandbox up``
via ``include.sandbox.process.SandboxProcess``), then measures what a full provisioning cycle
does: Graph paging through msgraph-sdk's request adapter reading raw bytes (the SDK still
authenticates with azure-identity and retries; typed models would dominate the timing, see
docs/external-apis.md) and a Bulk API 2.0 insert and query through simple-salesforce; then, in
this process, the Salesforce emulator's ``Org`` model alone: the same rows inserted one by one
and a dump + load of the org (what ``GET``/``PUT /_sandbox/state`` do). Prints
one table of wall-clock times, item and request counts, then the emulators' request counts
by route and the sandbox process's peak RSS. The numbers are printed as measured.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import hashlib
import io
import re
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.append(str(REPO_ROOT))  # after PYTHONPATH: the tree measured is the one it names

import httpx  # noqa: E402
import orjson  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402
from azure.identity.aio import ClientSecretCredential  # noqa: E402
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from kiota_abstractions.request_information import RequestInformation  # noqa: E402
from kiota_authentication_azure.azure_identity_authentication_provider import (  # noqa: E402
    AzureIdentityAuthenticationProvider,
)
from msgraph import GraphRequestAdapter, GraphServiceClient  # noqa: E402
from msgraph.generated.groups.item.transitive_members.graph_user.graph_user_request_builder import (  # noqa: E402
    GraphUserRequestBuilder,
)
from msgraph.generated.service_principals.item.app_role_assigned_to.app_role_assigned_to_request_builder import (  # noqa: E402
    AppRoleAssignedToRequestBuilder,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder  # noqa: E402
from msgraph_core import GraphClientFactory  # noqa: E402
from simple_salesforce import Salesforce  # noqa: E402

from include.sandbox.core.envfile import salesforce_login_domain  # noqa: E402
from include.sandbox.process import SandboxProcess  # noqa: E402
from include.sandbox.salesforce.exceptions import RecordError  # noqa: E402
from include.sandbox.salesforce.models import Org  # noqa: E402
from scripts.benchlib import PeakRss, Report, cached_fixtures, tree_cpu  # noqa: E402

USER_SELECT = [
    "id",
    "userPrincipalName",
    "mail",
    "givenName",
    "surname",
    "displayName",
    "accountEnabled",
    "preferredLanguage",
    "jobTitle",
    "department",
    "employeeId",
    "usageLocation",
]
SALESFORCE_VALID_LOCALES = {"en_US", "de_DE", "fr_FR", "ja_JP", "es_ES", "it_IT", "nl_NL", "pt_BR", "zh_CN"}
BULK_WAIT_SECONDS = 1
"""simple-salesforce's first poll delay (its default is 5 s, which would hide the emulator's speed)."""


class Requests:
    """Counts API requests per step from the emulators' own counters."""

    def __init__(self, sandbox: SandboxProcess) -> None:
        self.sandbox = sandbox

    def total(self, service: str) -> int:
        return int(self.sandbox.requests(service)["total"])

    @contextmanager
    def delta(self, service: str) -> Iterator[list[int]]:
        box = [0]
        before = self.total(service)
        yield box
        box[0] = self.total(service) - before


# --- Graph ---------------------------------------------------------------------------------


def _transitive_users(groups: dict[str, dict[str, Any]], root: str) -> set[str]:
    """Users in ``root`` and every group nested in it (cycle-safe walk of the fixture)."""
    seen, stack, users = {root}, [root], set()
    while stack:
        for member in groups[stack.pop()]["members"]:
            if member in groups:
                if member not in seen:
                    seen.add(member)
                    stack.append(member)
            else:
                users.add(member)
    return users


def _biggest_group(tenant: dict[str, Any]) -> tuple[str, str, int]:
    """The group with the most transitive user members."""
    groups = {g["id"]: g for g in tenant["groups"]}
    best = ("", "", -1)
    for group_id, group in groups.items():
        users = _transitive_users(groups, group_id)
        if len(users) > best[2]:
            best = (group_id, group["displayName"], len(users))
    return best


async def _page_all(
    adapter: GraphRequestAdapter, request: RequestInformation, next_request: Callable[[str], RequestInformation]
) -> tuple[int, int]:
    """Follow @odata.nextLink to the end; returns (items, pages)."""
    items = pages = 0
    while True:
        body = await adapter.send_primitive_async(request, "bytes", None)
        page = orjson.loads(body)
        items += len(page["value"])
        pages += 1
        link = page.get("@odata.nextLink")
        if not link:
            return items, pages
        request = next_request(link)


async def _graph(sandbox: SandboxProcess, report: Report, counter: Requests) -> None:
    tenant = sandbox.tenant
    client = tenant["clients"][0]
    credential = ClientSecretCredential(
        tenant["tenant_id"],
        client["client_id"],
        client["client_secret"],
        authority=sandbox.graph_url,
        connection_verify=sandbox.ca_bundle,
    )
    auth = AzureIdentityAuthenticationProvider(credential, scopes=[f"{sandbox.graph_url}/.default"])
    verify = ssl.create_default_context(cafile=sandbox.ca_bundle)
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=verify, timeout=120))
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{sandbox.graph_url}/v1.0"
    graph = GraphServiceClient(request_adapter=adapter)
    sp_id = tenant["service_principal"]["id"]
    group_id, group_name, group_users = _biggest_group(tenant)
    try:

        async def measure(builder: Any, query: Any) -> tuple[int, int, float, int]:
            """Page through one collection; (items, pages, seconds, Graph requests)."""
            with counter.delta("graph") as calls:
                started = time.perf_counter()
                items, pages = await _page_all(
                    adapter,
                    builder.to_get_request_information(RequestConfiguration(query_parameters=query)),
                    lambda link: builder.with_url(link).to_get_request_information(),
                )
                elapsed = time.perf_counter() - started
            return items, pages, elapsed, calls[0]

        items, pages, elapsed, calls = await measure(
            graph.users, UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(select=USER_SELECT, top=999)
        )
        report.add(
            "GET /users $select (12) $top=999",
            elapsed,
            f"{items:,} users, {pages} pages",
            str(calls),
            f"{items / elapsed:,.0f} users/s, incl. the token request",
        )
        items, pages, elapsed, calls = await measure(
            graph.service_principals.by_service_principal_id(sp_id).app_role_assigned_to,
            AppRoleAssignedToRequestBuilder.AppRoleAssignedToRequestBuilderGetQueryParameters(top=999),
        )
        report.add("GET appRoleAssignedTo $top=999", elapsed, f"{items:,} assignments, {pages} pages", str(calls))
        items, pages, elapsed, calls = await measure(
            graph.groups.by_group_id(group_id).transitive_members.graph_user,
            GraphUserRequestBuilder.GraphUserRequestBuilderGetQueryParameters(
                select=["id", "userPrincipalName", "accountEnabled"], top=999
            ),
        )
        report.add(
            "GET transitiveMembers/graph.user",
            elapsed,
            f"{items:,} users, {pages} pages",
            str(calls),
            f"biggest group {group_name!r} ({group_users:,} listed incl. soft-deleted)",
        )
    finally:
        await credential.close()
        await http.aclose()


# --- Salesforce ----------------------------------------------------------------------------


def _salesforce(sandbox: SandboxProcess) -> Salesforce:
    """Log in as the product does: OAuth client credentials through simple-salesforce."""
    session = requests.Session()
    session.verify = sandbox.ca_bundle
    session.trust_env = False  # a REQUESTS_CA_BUNDLE in the environment would override verify
    app = sandbox.org["connected_apps"][0]
    return Salesforce(
        consumer_key=app["consumer_key"],
        consumer_secret=app["consumer_secret"],
        domain=salesforce_login_domain(sandbox.salesforce_url),
        session=session,
        version=sandbox.org["api_version"],
    )


def _insert_rows(tenant: dict[str, Any], org: dict[str, Any], limit: int) -> list[dict[str, str]]:
    """Tenant users as Entra's default Salesforce mapping would send them (no validation).

    Out-of-scope, disabled and soft-deleted users are sent with IsActive=false, so the rows
    fit the licences; the messy ones fail as they would in Salesforce.
    """
    role_names = {r["id"]: r["value"] for r in tenant["service_principal"]["appRoles"]}
    profile_ids = {p["Name"]: p["Id"] for p in org["profiles"]}
    roles: dict[str, set[str]] = {}
    groups = {g["id"]: g for g in tenant["groups"]}
    for assignment in tenant["appRoleAssignments"]:
        role = role_names.get(assignment["appRoleId"], "Chatter Free User")
        if assignment["principalType"] == "User":
            roles.setdefault(assignment["principalId"], set()).add(role)
            continue
        for member in _transitive_users(groups, assignment["principalId"]):
            roles.setdefault(member, set()).add(role)
    rows = []
    for user in tenant["users"][:limit]:
        user_roles = roles.get(user["id"], set())
        active = bool(user_roles) and user["accountEnabled"] and not user.get("deletedDateTime")
        profile = next(iter(user_roles)) if len(user_roles) == 1 else "Chatter Free User"
        locale = (user["preferredLanguage"] or "en-US").replace("-", "_")
        rows.append(
            {
                "Username": user["userPrincipalName"],
                "Email": user["mail"] or "",
                "FirstName": user["givenName"] or "",
                "LastName": user["surname"] or "",
                "Alias": user["userPrincipalName"][:8],
                "TimeZoneSidKey": "America/Los_Angeles",
                "LocaleSidKey": locale if locale in SALESFORCE_VALID_LOCALES else "en_US",
                "EmailEncodingKey": "ISO-8859-1",
                "LanguageLocaleKey": "en_US",
                "ProfileId": profile_ids[profile],
                "IsActive": "true" if active else "false",
            }
        )
    return rows


def _count_csv_rows(text: str) -> int:
    return max(0, sum(1 for _ in csv.reader(io.StringIO(text, newline=""))) - 1)


def _org_model(org_fixture: dict[str, Any], records: list[dict[str, str]], report: Report) -> None:
    """The emulator's ``Org`` without HTTP: per-row inserts (under one lock, as a Bulk job applies
    its rows), then dump + load."""
    org = Org.load(org_fixture)
    failed = 0
    started = time.perf_counter()
    with org.lock:
        for record in records:
            try:
                org.insert_user(record)
            except RecordError:
                failed += 1
    elapsed = time.perf_counter() - started
    report.add(
        "Org model: insert User rows (in process)",
        elapsed,
        f"{len(records):,} rows",
        note=f"{len(records) - failed:,} created, {failed:,} failed",
    )
    started = time.perf_counter()
    reloaded = Org.load(org.dump())
    elapsed = time.perf_counter() - started
    report.add("Org model: dump + load (the control API's state)", elapsed, f"{len(reloaded.users):,} users")


def _bulk(sandbox: SandboxProcess, report: Report, counter: Requests, rows: int) -> None:
    with counter.delta("salesforce") as calls:
        started = time.perf_counter()
        sf = _salesforce(sandbox)
        elapsed = time.perf_counter() - started
    report.add("Salesforce login (client credentials)", elapsed, requests=str(calls[0]))

    records = _insert_rows(sandbox.tenant, sandbox.org, rows)
    with counter.delta("salesforce") as calls:
        started = time.perf_counter()
        jobs = sf.bulk2.User.insert(records=records, wait=BULK_WAIT_SECONDS)
        elapsed = time.perf_counter() - started
    processed = sum(j["numberRecordsProcessed"] for j in jobs)
    failed = sum(j["numberRecordsFailed"] for j in jobs)
    report.add(
        "Bulk 2.0 insert User (create, upload, close, poll)",
        elapsed,
        f"{len(records):,} rows, {len(jobs)} job(s)",
        str(calls[0]),
        f"{processed - failed:,} created, {failed:,} failed; first poll after {BULK_WAIT_SECONDS} s",
    )

    with counter.delta("salesforce") as calls:
        started = time.perf_counter()
        counts = [0, 0, 0]
        for job in jobs:
            counts[0] += _count_csv_rows(sf.bulk2.User.get_successful_records(job["job_id"]))
            counts[1] += _count_csv_rows(sf.bulk2.User.get_failed_records(job["job_id"]))
            counts[2] += _count_csv_rows(sf.bulk2.User.get_unprocessed_records(job["job_id"]))
        elapsed = time.perf_counter() - started
    report.add(
        "Bulk 2.0 read successful/failed/unprocessed",
        elapsed,
        f"{counts[0]:,} / {counts[1]:,} / {counts[2]:,} rows",
        str(calls[0]),
    )

    with counter.delta("salesforce") as calls:
        started = time.perf_counter()
        pages = total = 0
        for page in sf.bulk2.User.query(
            "SELECT Id, Username, Email, LastName, FirstName, ProfileId, IsActive FROM User",
            wait=BULK_WAIT_SECONDS,
        ):
            pages += 1
            total += _count_csv_rows(page)
        elapsed = time.perf_counter() - started
    report.add(
        "Bulk 2.0 query all users",
        elapsed,
        f"{total:,} users, {pages} page(s)",
        str(calls[0]),
        f"first poll after {BULK_WAIT_SECONDS} s",
    )


# --- ingest files: the sandbox's CPU per phase ----------------------------------------------

_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")


def _without_timestamps(value: Any) -> Any:
    """A state dump with every datetime text blanked (they differ from run to run)."""
    if isinstance(value, dict):
        return {key: _without_timestamps(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_timestamps(item) for item in value]
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return "<time>"
    return value


def _run_jobs(
    client: Any, cpu: Callable[[], float], files: list[tuple[str, Path]]
) -> tuple[list[tuple[str, float, float]], list[dict[str, Any]], str, int]:
    """Every job of ``files`` created and uploaded (one ``PUT`` each, as the loader sends it), then
    all closed, awaited and their three result sets read. Returns the (phase, sandbox CPU-s, wall
    s) of upload, process (first close to the last job's end) and results, each job's final info,
    a digest of the result sets and the number of rows. ``client`` is simple-salesforce's Bulk 2.0
    client, ``cpu`` the sandbox's CPU seconds so far."""
    phases: list[tuple[str, float, float]] = []
    marks = [(cpu(), time.perf_counter())]

    def phase(name: str) -> None:
        now = (cpu(), time.perf_counter())
        phases.append((name, now[0] - marks[-1][0], now[1] - marks[-1][1]))
        marks.append(now)

    job_ids, rows = [], 0
    headers = client._get_headers(client.CSV_CONTENT_TYPE, client.JSON_CONTENT_TYPE)
    for operation, path in files:
        data = path.read_bytes()
        rows += len(data.splitlines()) - 1
        job_ids.append(client.create_job(operation)["id"])
        url = client._construct_request_url(job_ids[-1], False) + "/batches"
        client.session.put(url, headers=headers, data=data).raise_for_status()
    phase("upload")
    for job_id in job_ids:
        client.close_job(job_id)
    infos = []
    for job_id in job_ids:
        while (info := client.get_job(job_id, False))["state"] not in ("JobComplete", "Failed", "Aborted"):
            time.sleep(0.05)
        infos.append(info)
    phase("process")
    digest = hashlib.sha256()
    for job_id in job_ids:
        for kind in ("successfulResults", "failedResults", "unprocessedrecords"):
            digest.update(client.get_ingest_results(job_id, kind).encode() + b"\0")
    phase("results")
    return phases, infos, digest.hexdigest()[:12], rows


def _phase_lines(phases: list[tuple[str, float, float]], rows: int) -> list[str]:
    total = sum(used for _, used, _ in phases)
    return [
        *(f"  {name:8s} sandbox {used:6.2f} CPU-s  {wall:6.2f} s wall" for name, used, wall in phases),
        f"  total    sandbox {total:6.2f} CPU-s  ({total / max(rows, 1) * 1e6:,.1f} µs a row)",
    ]


def _ingest_job(client: Any, cpu: Callable[[], float], operation: str, path: Path) -> list[str]:
    """One Bulk ingest job of ``path``'s rows (``_run_jobs``), as lines."""
    phases, (info,), digest, rows = _run_jobs(client, cpu, [(operation, path)])
    return [
        f"{operation} {path.name}: {rows:,} rows, {info['state']}, {info['numberRecordsFailed']:,} failed, "
        f"results {digest}",
        *_phase_lines(phases, rows),
    ]


def _ingest_together(client: Any, cpu: Callable[[], float], files: list[tuple[str, Path]]) -> list[str]:
    """Every job of ``files`` uploaded, then all closed at once (as a sharded load's tasks queue
    theirs) and awaited together (``_run_jobs``), as lines."""
    phases, infos, digest, rows = _run_jobs(client, cpu, files)
    failed = sum(info["numberRecordsFailed"] for info in infos)
    head = f"{len(infos)} jobs together: {rows:,} rows, {failed:,} failed, results {digest}"
    return [head, *_phase_lines(phases, rows)]


def _ingest(sandbox: SandboxProcess, files: list[tuple[str, Path]], *, together: bool = False) -> list[str]:
    """Run each (operation, CSV file) as one Bulk 2.0 ingest job, in order (or ``together``); then
    the org's digest. The sandbox's CPU counts any process it started too."""
    client = _salesforce(sandbox).bulk2.User._client

    def cpu() -> float:
        return tree_cpu(sandbox.proc.pid)

    if together:
        lines = _ingest_together(client, cpu, files)
    else:
        lines = [line for operation, path in files for line in _ingest_job(client, cpu, operation, path)]
    state = sandbox.salesforce.get("/_sandbox/state", timeout=600).raise_for_status().json()
    canonical = orjson.dumps(_without_timestamps(state), option=orjson.OPT_SORT_KEYS)
    lines.append(f"org state {hashlib.sha256(canonical).hexdigest()[:12]} (timestamps left out)")
    return lines


def _ingest_files(specs: list[str]) -> list[tuple[str, Path]]:
    files = []
    for spec in specs:
        operation, _, name = spec.partition("=")
        if not name:
            raise SystemExit(f"--ingest wants OPERATION=FILE, got {spec!r}")
        files.append((operation, Path(name)))
    return files


# --- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="tenant size (default 100,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--bulk-rows", type=int, default=100_000, help="rows in the Bulk 2.0 insert and the Org model's inserts"
    )
    parser.add_argument("--cache", type=Path, default=REPO_ROOT / ".bench", help="where generated tenants are kept")
    parser.add_argument("--org", type=Path, help="the org fixture to serve instead of the generated one")
    parser.add_argument(
        "--ingest",
        action="append",
        default=[],
        metavar="OPERATION=FILE",
        help="only run these Bulk ingest jobs (in order) and print the sandbox's CPU per phase",
    )
    parser.add_argument(
        "--together",
        action="store_true",
        help="with --ingest: upload every job first, then close them all and wait for all (a sharded load)",
    )
    args = parser.parse_args(argv)
    if args.ingest:
        return _main_ingest(args)

    report = Report()
    print(f"Sandbox benchmark: {args.users:,} users, seed {args.seed}, {psutil.cpu_count()} CPUs", flush=True)
    fixtures = cached_fixtures(args.users, args.seed, args.cache.resolve(), report)
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as workdir:
        started = time.perf_counter()
        sandbox = SandboxProcess(fixtures / "tenant.json", fixtures / "org.json", Path(workdir), startup_timeout=600)
        elapsed = time.perf_counter() - started
        rss = PeakRss(sandbox.proc.pid)
        try:
            report.add("sandbox start-up (load both fixtures, TLS)", elapsed, note="until the env file is written")
            counter = Requests(sandbox)
            asyncio.run(_graph(sandbox, report, counter))
            _bulk(sandbox, report, counter, min(args.bulk_rows, args.users))
            _org_model(sandbox.org, _insert_rows(sandbox.tenant, sandbox.org, args.bulk_rows), report)
            graph_requests = sandbox.requests("graph")
            sf_requests = sandbox.requests("salesforce")
            peak = rss.high_water_mark()
        finally:
            rss.stop()
            sandbox.stop()

    report.print()
    for name, counts in (("Graph", graph_requests), ("Salesforce", sf_requests)):
        print(f"\n{name} requests served: {counts['total']}")
        for route, n in sorted(counts["by_route"].items(), key=lambda item: -item[1]):
            print(f"  {n:6d}  {route}")
    sampled = rss.sampled / 2**20
    exact = f"{peak / 2**20:,.0f} MiB (VmHWM)" if peak else "n/a"
    print(f"\nSandbox process peak RSS: {exact}; highest sample {sampled:,.0f} MiB")
    return 0


def _main_ingest(args: argparse.Namespace) -> int:
    """``--ingest``: the sandbox's CPU per phase of each given job (see the module docstring)."""
    files = _ingest_files(args.ingest)
    report = Report()
    fixtures = cached_fixtures(args.users, args.seed, args.cache.resolve(), report)
    org = args.org.resolve() if args.org else fixtures / "org.json"
    with tempfile.TemporaryDirectory(prefix="sandbox-bench-") as workdir:
        sandbox = SandboxProcess(fixtures / "tenant.json", org, Path(workdir), startup_timeout=600)
        try:
            lines = _ingest(sandbox, files, together=args.together)
        finally:
            sandbox.stop()
    print(*lines, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
