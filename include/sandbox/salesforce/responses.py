"""REST API handlers: versions, resources, query/queryAll, sObject rows, describe, limits.

Shapes follow the REST API Developer Guide (resources "Versions", "Resources by Version",
"Query", "QueryAll", "sObject Describe", "sObject Rows", "sObject Rows by External ID",
"Limits"). Every handler authenticates first (``auth.Auth.check``: 401/403), then checks
the API version in the path (404 ``NOT_FOUND`` outside 31.0 .. org version + 1), then does
its work; record failures answer 400 with ``[{"message", "errorCode", "fields"}]``.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from include.sandbox.core.faults import FaultRule
from include.sandbox.salesforce.auth import Auth, SoapFaultError
from include.sandbox.salesforce.exceptions import ApiError, RecordError, SoqlError, error_body, not_found
from include.sandbox.salesforce.models import Org
from include.sandbox.salesforce.picklists import PICKLISTS
from include.sandbox.salesforce.soql import OBJECT_FIELDS, RELATIONSHIPS, QueryResult, run_query
from include.sandbox.salesforce.validation import KEY_PREFIXES, USER_FIELDS, make_id, picklist_entries, to_id18

MIN_VERSION = 31
DEFAULT_BATCH = 2000
MIN_BATCH = 200
MAX_OPEN_CURSORS = 64
CURSOR_IDLE_SECONDS = 15 * 60
"""Query cursors live 15 minutes after last use ("Query" resource: locators expire)."""
_VERSION = re.compile(r"^v(\d+)\.(\d)$")
_BATCH = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)
_CURSOR = re.compile(r"^(01g[A-Za-z0-9]{15})-(\d+)$")
SOBJECT_LABELS = {
    "User": ("User", "Users"),
    "Profile": ("Profile", "Profiles"),
    "UserLicense": ("User License", "User Licenses"),
    "PermissionSet": ("Permission Set", "Permission Sets"),
    "Account": ("Account", "Accounts"),
}
_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
    "int": "xsd:int",
}


def json_body(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


def release_label(major: int) -> str:
    """``62`` → ``Winter '25``: three releases a year, Spring '24 was v60.0."""
    season = ("Spring", "Summer", "Winter")[major % 3]
    year = 24 + (major - 60) // 3 + (1 if season == "Winter" else 0)
    return f"{season} '{year:02d}"


@dataclass
class _Cursor:
    result: QueryResult
    version: str
    batch: int
    touched: float


class RestApi:
    """The REST resources of one emulated org (``get_org`` follows control-API swaps)."""

    def __init__(self, get_org: Callable[[], Org], auth: Auth, base_url: str) -> None:
        self._get_org = get_org
        self.auth = auth
        self.base_url = base_url.rstrip("/")
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._cursor_lock = threading.Lock()
        self._cursor_number = 0

    @property
    def org(self) -> Org:
        return self._get_org()

    def reset(self) -> None:
        with self._cursor_lock:
            self._cursors.clear()

    # --- plumbing ----------------------------------------------------------------------

    def version_of(self, request: Request) -> str:
        match = _VERSION.match(request.path_params.get("version", ""))
        org_major = int(self.org.api_version.split(".")[0])
        if match is None or not MIN_VERSION <= int(match.group(1)) <= org_major + 1:
            raise not_found()
        return f"{match.group(1)}.{match.group(2)}"

    def endpoint(self, handler: Callable[[Request, str], Awaitable[Response]]) -> Callable[[Request], Any]:
        """Wrap a handler with authentication, the version check and error rendering."""

        async def run(request: Request) -> Response:
            try:
                self.auth.check(request)
                version = self.version_of(request)
                response = await handler(request, version)
            except ApiError as exc:
                return json_body(exc.body(), exc.status, exc.headers)
            response.headers["Sforce-Limit-Info"] = self.auth.limit_info()
            return response

        run.__name__ = handler.__name__
        return run

    # --- unauthenticated discovery ------------------------------------------------------

    async def versions(self, request: Request) -> Response:
        top = int(self.org.api_version.split(".")[0])
        return json_body(
            [
                {"label": release_label(major), "url": f"/services/data/v{major}.0", "version": f"{major}.0"}
                for major in range(MIN_VERSION, top + 1)
            ]
        )

    async def resources(self, request: Request, version: str) -> Response:
        base = f"/services/data/v{version}"
        names = ("tooling", "metadata", "jobs", "query", "queryAll", "sobjects", "limits", "search", "recent")
        return json_body({name: f"{base}/{name}" for name in names})

    # --- query -------------------------------------------------------------------------

    async def query(self, request: Request, version: str) -> Response:
        return await self._start_query(request, version)

    async def query_all(self, request: Request, version: str) -> Response:
        return await self._start_query(request, version)

    async def _start_query(self, request: Request, version: str) -> Response:
        soql = request.query_params.get("q")
        if not soql:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        try:
            result = await asyncio.to_thread(run_query, self.org, soql, with_ids=True)
        except SoqlError as exc:
            raise ApiError(400, exc.error_code, exc.message) from None
        batch = DEFAULT_BATCH
        options = request.headers.get("sforce-query-options", "")
        match = _BATCH.search(options)
        if match:
            batch = max(MIN_BATCH, min(DEFAULT_BATCH, int(match.group(1))))
        cursor = _Cursor(result, version, batch, time.monotonic())
        return self._page(cursor, None, 0, request.url.path)

    async def query_more(self, request: Request, version: str) -> Response:
        match = _CURSOR.match(request.path_params.get("cursor", ""))
        if match is None:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        with self._cursor_lock:
            cursor = self._cursors.get(match.group(1))
            if cursor is not None and time.monotonic() - cursor.touched > CURSOR_IDLE_SECONDS:
                self._cursors.pop(match.group(1))
                cursor = None
        if cursor is None:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        start = int(match.group(2))
        return self._page(cursor, match.group(1), start, request.url.path)

    def _page(self, cursor: _Cursor, cursor_id: str | None, start: int, path: str) -> Response:
        result = cursor.result
        if result.count_only:
            return json_body({"totalSize": result.total_size, "done": True, "records": []})
        end = min(start + cursor.batch, len(result.records))
        records = [self._rest_record(result, rec, cursor.version) for rec in result.records[start:end]]
        body: dict[str, Any] = {"totalSize": len(result.records), "done": end >= len(result.records)}
        if not body["done"]:
            with self._cursor_lock:
                if cursor_id is None:
                    self._cursor_number += 1
                    cursor_id = make_id("01g", self._cursor_number)
                    self._cursors[cursor_id] = cursor
                    while len(self._cursors) > MAX_OPEN_CURSORS:
                        self._cursors.popitem(last=False)
                cursor.touched = time.monotonic()
                self._cursors.move_to_end(cursor_id)
            endpoint = "queryAll" if "/queryAll" in path else "query"
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/{endpoint}/{cursor_id}-{end}"
        elif cursor_id is not None:
            with self._cursor_lock:
                self._cursors.pop(cursor_id, None)
        body["records"] = records
        return json_body(body)

    @staticmethod
    def _rest_record(result: QueryResult, flat: dict[str, Any], version: str) -> dict[str, Any]:
        """A flat SOQL record as REST shows it: attributes, nested relationship objects."""
        if result.aggregate:
            return {"attributes": {"type": "AggregateResult"}, **flat}
        plain, related = _rest_plan(result)
        hidden = flat.get("__ids__", {})
        prefix = f"/services/data/v{version}/sobjects/"
        out: dict[str, Any] = {
            "attributes": {"type": result.sobject, "url": f"{prefix}{result.sobject}/{hidden.get('')}"}
        }
        for name in plain:
            out[name] = flat[name]
        for name, steps, leaf in related:
            target = out
            for rel, obj, path in steps:
                parent_id = hidden.get(path)
                if parent_id is None:
                    target[rel] = None
                    break
                child = target.get(rel)
                if child is None:
                    child = target[rel] = {"attributes": {"type": obj, "url": f"{prefix}{obj}/{parent_id}"}}
                target = child
            else:
                target[leaf] = flat[name]
        return out

    # --- sObjects ----------------------------------------------------------------------

    async def describe_global(self, request: Request, version: str) -> Response:
        return json_body(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [_sobject_summary(name, version) for name in OBJECT_FIELDS],
            }
        )

    async def sobject_info(self, request: Request, version: str) -> Response:
        name = self._sobject(request)
        return json_body({"objectDescribe": _sobject_summary(name, version), "recentItems": []})

    async def describe(self, request: Request, version: str) -> Response:
        name = self._sobject(request)
        if name != "User":
            return json_body(describe_simple(name, version))
        return json_body(describe_user_body(self.org, version))

    def _sobject(self, request: Request) -> str:
        wanted = request.path_params["sobject"].lower()
        for name in OBJECT_FIELDS:
            if name.lower() == wanted:
                return name
        raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")

    async def get_record(self, request: Request, version: str) -> Response:
        name = self._sobject(request)
        record_id = to_id18(request.path_params["record_id"])
        fields_param = request.query_params.get("fields")
        fields = [f.strip() for f in fields_param.split(",") if f.strip()] if fields_param else None
        return json_body(self._fetch(name, record_id, fields, version))

    def _fetch(self, name: str, record_id: str | None, fields: list[str] | None, version: str) -> dict[str, Any]:
        org = self.org
        if record_id is None:
            raise not_found()
        select = ", ".join(fields) if fields else ", ".join(OBJECT_FIELDS[name])
        try:
            result = run_query(org, f"SELECT {select} FROM {name} WHERE Id = '{record_id}'", with_ids=True)
        except SoqlError as exc:
            raise ApiError(400, exc.error_code, exc.message) from None
        if not result.records:
            raise not_found()
        return self._rest_record(result, result.records[0], version)

    async def get_by_external_id(self, request: Request, version: str) -> Response:
        name = self._sobject(request)
        if name != "User":
            raise not_found()
        field, value = request.path_params["field"], request.path_params["value"]
        user_id = self._match_external(field, value)
        if user_id is None:
            raise not_found()
        return json_body(self._fetch("User", user_id, None, version))

    def _match_external(self, field: str, value: str) -> str | None:
        canonical = _external_key(field, ("Id", *EXTERNAL_KEYS))
        if canonical is None:
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}")
        if canonical == "Id":
            user_id = to_id18(value)
            return user_id if user_id in self.org.users else None
        _, records = self.org.query(f"SELECT Id FROM User WHERE {canonical} = '{_soql_quote(value)}'")
        return records[0]["Id"] if records else None

    async def create_record(self, request: Request, version: str) -> Response:
        self._writable(request)
        body = await _object_body(request)
        try:
            user_id = await asyncio.to_thread(self.org.insert_user, _rest_fields(body), actor=self._actor(request))
        except RecordError as exc:
            return json_body(exc.rest_body(), 400)
        return json_body({"id": user_id, "success": True, "errors": []}, 201)

    async def update_record(self, request: Request, version: str) -> Response:
        self._writable(request)
        user_id = to_id18(request.path_params["record_id"])
        if user_id is None or user_id not in self.org.users:
            raise not_found()
        body = await _object_body(request)
        try:
            await asyncio.to_thread(self.org.update_user, user_id, _rest_fields(body), actor=self._actor(request))
        except RecordError as exc:
            return json_body(exc.rest_body(), 400)
        return Response(status_code=204)

    async def upsert_record(self, request: Request, version: str) -> Response:
        self._writable(request)
        field, value = request.path_params["field"], request.path_params["value"]
        body = await _object_body(request)
        fields = _rest_fields(body)
        canonical = _external_key(field, EXTERNAL_KEYS)
        if canonical is None:
            raise ApiError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {field}")
        fields[canonical] = value
        try:
            user_id, created = await asyncio.to_thread(
                self.org.upsert_user, canonical, fields, actor=self._actor(request)
            )
        except RecordError as exc:
            return json_body(exc.rest_body(), 400)
        if not created and float(version) < 46:
            return Response(status_code=204)
        return json_body({"id": user_id, "success": True, "errors": [], "created": created}, 201 if created else 200)

    async def delete_record(self, request: Request, version: str) -> Response:
        name = self._sobject(request)
        record_id = to_id18(request.path_params["record_id"])
        if name == "User" and record_id in self.org.users:
            try:
                self.org.delete_user(record_id)
            except RecordError as exc:
                return json_body(exc.rest_body(), 400)
        raise not_found()

    def _writable(self, request: Request) -> None:
        name = self._sobject(request)
        if name != "User":
            raise ApiError(400, "INVALID_TYPE_FOR_OPERATION", f"entity type {name} does not support this operation")

    def _actor(self, request: Request) -> str:
        return self.auth.session_of(request).user_id

    # --- limits --------------------------------------------------------------------------

    async def limits(self, request: Request, version: str) -> Response:
        used, limit = self.auth.api_usage()

        def pair(maximum: int, remaining: int | None = None) -> dict[str, int]:
            return {"Max": maximum, "Remaining": maximum if remaining is None else max(0, remaining)}

        return json_body(
            {
                "ActiveScratchOrgs": pair(3),
                "AnalyticsExternalDataSizeMB": pair(40960),
                "ConcurrentAsyncGetReportInstances": pair(200),
                "ConcurrentSyncReportRuns": pair(20),
                "DailyAnalyticsDataflowJobExecutions": pair(60),
                "DailyApiRequests": pair(limit, limit - used),
                "DailyAsyncApexExecutions": pair(250000),
                "DailyBulkApiBatches": pair(15000),
                "DailyBulkV2QueryFileStorageMB": pair(976562),
                "DailyBulkV2QueryJobs": pair(10000),
                "DailyDurableGenericStreamingApiEvents": pair(10000),
                "DailyDurableStreamingApiEvents": pair(10000),
                "DailyGenericStreamingApiEvents": pair(10000),
                "DailyStandardVolumePlatformEvents": pair(10000),
                "DailyStreamingApiEvents": pair(10000),
                "DailyWorkflowEmails": pair(390),
                "DataStorageMB": pair(5120),
                "FileStorageMB": pair(20480),
                "HourlyAsyncReportRuns": pair(1200),
                "HourlyDashboardRefreshes": pair(200),
                "HourlyDashboardResults": pair(5000),
                "HourlyDashboardStatuses": pair(999999999),
                "HourlyODataCallout": pair(10000),
                "HourlySyncReportRuns": pair(500),
                "HourlyTimeBasedWorkflow": pair(1000),
                "MassEmail": pair(10),
                "SingleEmail": pair(15),
            }
        )


# --- describe bodies ---------------------------------------------------------------------


def _sobject_summary(name: str, version: str) -> dict[str, Any]:
    label, plural = SOBJECT_LABELS[name]
    writable = name == "User"
    base = f"/services/data/v{version}/sobjects/{name}"
    return {
        "activateable": False,
        "createable": writable,
        "custom": False,
        "customSetting": False,
        "deletable": False,
        "deprecatedAndHidden": False,
        "feedEnabled": name == "User",
        "keyPrefix": KEY_PREFIXES[name],
        "label": label,
        "labelPlural": plural,
        "layoutable": writable,
        "mergeable": False,
        "mruEnabled": writable,
        "name": name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": writable,
        "triggerable": writable,
        "undeletable": False,
        "updateable": writable,
        "urls": {
            "rowTemplate": f"{base}/{{ID}}",
            "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
            "describe": f"{base}/describe",
            "sobject": base,
        },
    }


def _field_entry(
    name: str,
    label: str,
    ftype: str,
    length: int,
    *,
    createable: bool,
    updateable: bool,
    nillable: bool,
    unique: bool = False,
    id_lookup: bool = False,
    reference_to: str | None = None,
    relationship_name: str | None = None,
) -> dict[str, Any]:
    describe_type = {"int": "int", "datetime": "datetime"}.get(ftype, ftype)
    restricted = name in PICKLISTS and ftype == "picklist"
    text_like = ftype in ("string", "email", "phone", "textarea", "picklist", "id", "reference")
    return {
        "aggregatable": ftype != "textarea",
        "autoNumber": False,
        "byteLength": length * 3 if text_like else 0,
        "calculated": name == "Name",
        "caseSensitive": False,
        "controllerName": None,
        "createable": createable,
        "custom": False,
        "defaultValue": True if name == "IsActive" else None,
        "defaultedOnCreate": name in ("IsActive", "CommunityNickname", "Id", "CreatedDate", "CreatedById"),
        "dependentPicklist": False,
        "externalId": False,
        "filterable": True,
        "groupable": ftype not in ("datetime", "textarea"),
        "idLookup": id_lookup,
        "label": label,
        "length": length if text_like else 0,
        "name": name,
        "nameField": name == "Name",
        "nillable": nillable,
        "picklistValues": picklist_entries(name) if restricted else [],
        "precision": 0,
        "referenceTo": [reference_to] if reference_to else [],
        "relationshipName": relationship_name,
        "restrictedPicklist": restricted,
        "scale": 0,
        "soapType": _SOAP_TYPES.get(ftype, "xsd:string"),
        "sortable": ftype != "textarea",
        "type": describe_type,
        "unique": unique,
        "updateable": updateable,
    }


def describe_user_body(org: Org, version: str | None = None) -> dict[str, Any]:
    """``GET sobjects/User/describe``: the real shape, for the fields the emulator models."""
    version = version or org.api_version
    fields = [
        _field_entry(
            f.name,
            f.label,
            f.type,
            f.length,
            createable=f.createable,
            updateable=f.updateable,
            nillable=f.nillable,
            unique=f.unique,
            id_lookup=f.id_lookup,
            reference_to=f.reference_to,
            relationship_name=f.relationship_name,
        )
        for f in USER_FIELDS
    ]
    return {
        **_sobject_summary("User", version),
        "actionOverrides": [],
        "childRelationships": [],
        "compactLayoutable": True,
        "fields": fields,
        "namedLayoutInfos": [],
        "networkScopeFieldName": None,
        "recordTypeInfos": [],
        "supportedScopes": [{"label": "All users", "name": "everything"}],
    }


def describe_simple(name: str, version: str) -> dict[str, Any]:
    """Describe of the read-only objects (Profile, UserLicense, PermissionSet, Account)."""
    rels = {fk: (rel, target) for rel, (fk, target) in RELATIONSHIPS[name].items()}
    fields = []
    for field_name, ftype in OBJECT_FIELDS[name].items():
        rel, target = rels.get(field_name, (None, None))
        fields.append(
            _field_entry(
                field_name,
                field_name,
                "string" if ftype == "string" else ftype,
                18 if ftype in ("id", "reference") else (255 if ftype == "string" else 0),
                createable=False,
                updateable=False,
                nillable=ftype not in ("id", "boolean"),
                id_lookup=field_name == "Id",
                reference_to=target,
                relationship_name=rel,
            )
        )
    return {**_sobject_summary(name, version), "childRelationships": [], "fields": fields, "recordTypeInfos": []}


# --- helpers --------------------------------------------------------------------------------

_PLANS: dict[tuple[str, tuple[str, ...]], tuple[list[str], list[tuple[str, list[tuple[str, str, str]], str]]]] = {}


def _rest_plan(result: QueryResult) -> tuple[list[str], list[tuple[str, list[tuple[str, str, str]], str]]]:
    """How to nest a query's fields (computed once per SELECT shape, not per record):
    plain field names, and for each relationship field its (relationship, object, path)
    steps and its leaf name."""
    key = (result.sobject, tuple(result.fields))
    plan = _PLANS.get(key)
    if plan is None:
        plain, related = [], []
        for name in result.fields:
            parts = name.split(".")
            if len(parts) == 1:
                plain.append(name)
                continue
            obj, steps = result.sobject, []
            for depth, rel in enumerate(parts[:-1]):
                obj = RELATIONSHIPS[obj][rel][1]
                steps.append((rel, obj, ".".join(parts[: depth + 1])))
            related.append((name, steps, parts[-1]))
        if len(_PLANS) > 256:
            _PLANS.clear()
        plan = _PLANS[key] = (plain, related)
    return plan


async def _object_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise ApiError(400, "JSON_PARSER_ERROR", "Unexpected character in the request body") from None
    if not isinstance(body, dict):
        raise ApiError(
            400, "JSON_PARSER_ERROR", "Cannot deserialize instance of User from START_ARRAY value [line:1, column:1]"
        )
    return body


def _rest_fields(body: dict[str, Any]) -> dict[str, Any]:
    """REST semantics: ``attributes`` is ignored, an empty string sets null."""
    return {k: (None if v == "" else v) for k, v in body.items() if k != "attributes"}


EXTERNAL_KEYS = ("Username", "CommunityNickname", "FederationIdentifier")


def _external_key(field: str, allowed: tuple[str, ...]) -> str | None:
    return next((name for name in allowed if name.lower() == field.lower()), None)


def _soql_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


# --- errors the sandbox injects or reports --------------------------------------------------


def fault_response(rule: FaultRule, request: Request) -> Response:
    """The body Salesforce sends with ``rule.status`` (control API fault rules)."""
    status = rule.status or 500
    headers = {"Retry-After": str(rule.retry_after)} if rule.retry_after is not None else None
    path = request.url.path
    if "/services/Soap/" in path:
        code = {401: "INVALID_SESSION_ID", 403: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE"}.get(
            status, "UNKNOWN_EXCEPTION"
        )
        response = SoapFaultError(code, _FAULT_MESSAGES.get(code, "An unexpected error occurred.")).response()
        response.status_code = status
        return response
    if path.endswith("/services/oauth2/token"):
        return json_body({"error": "unknown_error", "error_description": "retry your request"}, status, headers)
    code = {
        400: "BAD_REQUEST",
        401: "INVALID_SESSION_ID",
        403: "REQUEST_LIMIT_EXCEEDED",
        404: "NOT_FOUND",
        429: "REQUEST_LIMIT_EXCEEDED",  # REST itself uses 403 for limits; 429 only if a rule asks
        503: "SERVER_UNAVAILABLE",
    }.get(status, "UNKNOWN_EXCEPTION")
    return json_body(error_body(code, _FAULT_MESSAGES.get(code, _FAULT_MESSAGES["UNKNOWN_EXCEPTION"])), status, headers)


_FAULT_MESSAGES = {
    "BAD_REQUEST": "Bad Request",
    "INVALID_SESSION_ID": "Session expired or invalid",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "NOT_FOUND": "The requested resource does not exist",
    "SERVER_UNAVAILABLE": "Server temporarily unavailable. Try again later.",
    "UNKNOWN_EXCEPTION": "An unexpected error occurred. Please include this ErrorId if you contact support: "
    "1942773914-77305 (-1091723813)",
}


def not_found_response(request: Request) -> Response:
    return json_body(error_body("NOT_FOUND", "The requested resource does not exist"), 404)
