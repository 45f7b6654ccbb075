"""HTTP in and out for the Graph API: the request pipeline and one handler per endpoint.

Handlers take a framework-free ``GraphRequest`` and return a ``GraphResponse`` so that the
same code serves a plain HTTP request and a ``$batch`` sub-request. ``GraphApi.dispatch``
is the pipeline around every handler: bearer-token check, the resource-unit charge, the
handler, Graph's error shape and its standard headers (``request-id``,
``client-request-id``, ``x-ms-ags-diagnostic``, ``x-ms-resource-unit``).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson

from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.extensions import user_renderer
from include.sandbox.graph.odata import (
    PropertyResolver,
    decode_token,
    encode_token,
    normalise_query,
    parse_filter,
    parse_select,
    parse_top,
    project,
)
from include.sandbox.graph.schema import (
    APP_ROLE_ASSIGNMENT_PROPERTIES,
    APPLICATION_DEFAULTS,
    GROUP_PROPERTIES,
    SERVICE_PRINCIPAL_DEFAULTS,
    USER_DEFAULT_PROPERTIES,
    USER_PROPERTY_DEFAULTS,
)
from include.sandbox.graph.state import GraphState
from include.sandbox.graph.tokens import GRAPH_APP_ID, IssuedToken, TokenVerdict

JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
ERROR_CONTENT_TYPE = "application/json"
DIAGNOSTIC = orjson.dumps(
    {"ServerInfo": {"DataCenter": "Sandbox", "Slice": "E", "Ring": "1", "ScaleUnit": "000", "RoleInstance": "SBX"}}
).decode()
DEFAULT_PAGE_SIZE = 100
MAX_GET_BY_IDS = 1000


@dataclass
class GraphRequest:
    method: str
    path: str  # e.g. /v1.0/users
    query_pairs: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    faults: Any = None  # the app's FaultInjector, for $batch sub-requests
    counter: Any = None  # the app's RequestCounter, which counts $batch sub-requests by route

    def __post_init__(self) -> None:
        self.options = normalise_query(self.query_pairs)
        self.client_request_id = self.headers.get("client-request-id") or self.request_id

    @property
    def api_path(self) -> str:
        """The path below ``/v1.0`` (throttling costs are published in these terms)."""
        return self.path[len("/v1.0") :] if self.path.startswith("/v1.0") else self.path

    def json(self) -> Any:
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            raise errors.invalid_json_body() from None


@dataclass
class GraphResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = JSON_CONTENT_TYPE

    def encoded(self) -> bytes:
        return b"" if self.body is None else orjson.dumps(self.body)


Handler = Callable[[GraphRequest], GraphResponse]


def www_authenticate(base_url: str, claims: str | None = None) -> str:
    value = f'Bearer realm="", authorization_uri="{base_url}/common/oauth2/authorize", client_id="{GRAPH_APP_ID}"'
    if claims:
        value += f', error="insufficient_claims", claims="{claims}"'
    return value


class GraphApi:
    """The Graph v1.0 endpoints over one ``GraphState``."""

    def __init__(self, state: GraphState) -> None:
        self.state = state
        self.base_url = state.base_url

    # --- pipeline --------------------------------------------------------------------------

    def standard_headers(self, request: GraphRequest) -> dict[str, str]:
        return {
            "request-id": request.request_id,
            "client-request-id": request.client_request_id,
            "x-ms-ags-diagnostic": DIAGNOSTIC,
            "Cache-Control": "no-cache",
            "Strict-Transport-Security": "max-age=31536000",
        }

    def error_response(self, request: GraphRequest, error: errors.GraphError) -> GraphResponse:
        body = errors.graph_error_body(error, request.request_id, request.client_request_id)
        headers = {**self.standard_headers(request), **error.headers}
        return GraphResponse(error.status, body, headers, ERROR_CONTENT_TYPE)

    def authenticate(self, request: GraphRequest) -> IssuedToken:
        verdict, issued = self.state.tokens.check(request.headers.get("authorization"))
        challenge = www_authenticate(self.base_url)
        if verdict == TokenVerdict.OK and issued is not None:
            tenant = self.state.tenant
            if issued.tenant_id == tenant.tenant_id and issued.client_id in tenant.clients:
                return issued
            raise errors.unknown_token(challenge)
        if verdict == TokenVerdict.EMPTY:
            raise errors.empty_token(challenge)
        if verdict == TokenVerdict.MALFORMED:
            raise errors.malformed_token(challenge)
        if verdict == TokenVerdict.EXPIRED:
            raise errors.expired_token(challenge)
        if verdict == TokenVerdict.REVOKED and issued is not None and issued.cae_capable:
            claims = orjson.dumps({"access_token": {"nbf": {"essential": True, "value": str(int(time.time()))}}})
            raise errors.revoked_token(www_authenticate(self.base_url, base64.b64encode(claims).decode()))
        if verdict == TokenVerdict.REVOKED:
            raise errors.expired_token(challenge)
        raise errors.unknown_token(challenge)

    def dispatch(self, request: GraphRequest, handler: Handler, *, charge: bool = True) -> GraphResponse:
        """Authenticate, charge the app's resource-unit bucket, run the handler, add headers.

        A charged request keeps its ``x-ms-resource-unit`` header even when it fails (a 404
        still costs its units, as in Graph).
        """
        extra: dict[str, str] = {}
        try:
            issued = self.authenticate(request)
            if charge:
                result = self.state.throttle.charge(issued.client_id, request.method, request.api_path, request.options)
                if result.retry_after is not None:
                    raise errors.too_many_requests(result.retry_after, result.headers)
                extra = result.headers
            response = handler(request)
            response.headers = {**self.standard_headers(request), **extra, **response.headers}
            return response
        except errors.GraphError as error:
            response = self.error_response(request, error)
            response.headers.update(extra)
            return response

    # --- helpers ---------------------------------------------------------------------------

    def context(self, fragment: str) -> str:
        return f"{self.base_url}/v1.0/$metadata#{fragment}"

    def next_link(self, request: GraphRequest, position: int) -> str:
        """Graph keeps the other query options in the nextLink and adds ``$skiptoken``."""
        parts = [
            f"{quote(k, safe='$')}={quote(v, safe=',()$:@')}"
            for k, v in request.query_pairs
            if normalise_query([(k, v)]).keys() != {"skiptoken"}
        ]
        parts.append(f"$skiptoken={encode_token({'p': position})}")
        return f"{self.base_url}{request.path}?{'&'.join(parts)}"

    @staticmethod
    def start_position(request: GraphRequest) -> int:
        raw = request.options.get("skiptoken")
        if not raw:
            return 0
        try:
            position = decode_token(raw)["p"]
            if not isinstance(position, int) or position < 0:
                raise ValueError(position)
        except (ValueError, KeyError, TypeError):
            raise errors.bad_request("Invalid skip token.", "BadRequest") from None
        return position

    def page(
        self,
        request: GraphRequest,
        positioned: Iterator[tuple[int, Any]],
        render: Callable[[Any], dict[str, Any]],
        context: str,
        *,
        count: Callable[[], int] | None = None,
    ) -> GraphResponse:
        """One page of a collection from ``(position, item)`` pairs, with an absolute nextLink."""
        top = parse_top(request.options, DEFAULT_PAGE_SIZE)
        items: list[dict[str, Any]] = []
        next_position: int | None = None
        for position, item in positioned:
            if len(items) == top:
                next_position = position
                break
            items.append(render(item))
        body: dict[str, Any] = {"@odata.context": context}
        if (
            count is not None
            and request.options.get("count", "").lower() == "true"
            and "skiptoken" not in (request.options)
        ):
            body["@odata.count"] = count()
        if next_position is not None:
            body["@odata.nextLink"] = self.next_link(request, next_position)
        body["value"] = items
        return GraphResponse(200, body)

    @staticmethod
    def select_context(collection: str, select: list[str] | None) -> str:
        return f"{collection}({','.join(select)})" if select else collection

    # --- users -----------------------------------------------------------------------------

    def render_user(self, properties: list[str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """Absent plain properties come back null (collections ``[]``); custom data as Graph
        shapes it (extensions.py)."""
        defaults = USER_PROPERTY_DEFAULTS
        return user_renderer(properties, lambda user, plain: project(user, plain, defaults))

    def users_list(self, request: GraphRequest) -> GraphResponse:
        tenant = self.state.tenant
        resolver = self.state.user_resolver()
        select = parse_select(request.options, resolver)
        parse_top(request.options, DEFAULT_PAGE_SIZE)  # validate before any work
        flt = parse_filter(request.options, resolver)
        start = self.start_position(request)
        positioned: Iterator[tuple[int, dict[str, Any]]]
        if flt is not None and flt.ids is not None:
            ids = list(dict.fromkeys(flt.ids))
            found = ((i, tenant.active_user(user_id)) for i, user_id in enumerate(ids) if i >= start)
            positioned = ((i, u) for i, u in found if u is not None and flt.predicate(u))
        elif flt is not None:
            predicate = flt.predicate
            positioned = ((i, u) for i, u in tenant.iter_active_users(start) if predicate(u))
        else:
            positioned = tenant.iter_active_users(start)

        def count() -> int:
            if flt is None:
                return tenant.active_user_count
            return sum(1 for _, u in tenant.iter_active_users() if flt.predicate(u))

        return self.page(
            request,
            positioned,
            self.render_user(select or USER_DEFAULT_PROPERTIES),
            self.context(self.select_context("users", select)),
            count=count,
        )

    def user_get(self, request: GraphRequest) -> GraphResponse:
        key = request.path_params["user_id"]
        select = parse_select(request.options, self.state.user_resolver())
        user = self.state.tenant.user_by_key(key)
        if user is None:
            raise errors.resource_not_found(key)
        body = {"@odata.context": self.context(self.select_context("users", select) + "/$entity")}
        body.update(self.render_user(select or USER_DEFAULT_PROPERTIES)(user))
        return GraphResponse(200, body)

    def users_delta(self, request: GraphRequest) -> GraphResponse:
        minimal = "return=minimal" in request.headers.get("prefer", "").replace(" ", "").lower()
        body = self.state.delta.page(self.state.tenant, request.options, self.state.user_resolver(), minimal)
        return GraphResponse(200, body, {"Preference-Applied": "return=minimal"} if minimal else {})

    # --- service principal and application -------------------------------------------------

    def _service_principal(self) -> dict[str, Any]:
        sp = self.state.tenant.sp
        record = {"id": sp["id"], **SERVICE_PRINCIPAL_DEFAULTS, "appDisplayName": sp.get("displayName")}
        record.update({k: v for k, v in sp.items() if k != "application_object_id"})
        return record

    def _entity(
        self, request: GraphRequest, record: dict[str, Any], collection: str, known: Iterable[str]
    ) -> GraphResponse:
        resolver = PropertyResolver(f"microsoft.graph.{collection.rstrip('s')}", known, strict=False)
        select = parse_select(request.options, resolver)
        body = {"@odata.context": self.context(self.select_context(collection, select) + "/$entity")}
        body.update(project(record, select, {}) if select else record)
        return GraphResponse(200, body)

    def service_principal_get(self, request: GraphRequest) -> GraphResponse:
        sp_id = request.path_params["sp_id"]
        if sp_id != self.state.tenant.sp["id"]:
            raise errors.resource_not_found(sp_id)
        record = self._service_principal()
        return self._entity(request, record, "servicePrincipals", record)

    def service_principal_by_app_id(self, request: GraphRequest) -> GraphResponse:
        app_id = request.path_params["app_id"]
        if app_id.lower() != self.state.tenant.sp["appId"].lower():
            raise errors.resource_not_found(app_id)
        record = self._service_principal()
        return self._entity(request, record, "servicePrincipals", record)

    def _application(self, object_id: str) -> dict[str, Any]:
        tenant = self.state.tenant
        if tenant.application_object_id is None or object_id != tenant.application_object_id:
            raise errors.resource_not_found(object_id)
        sp = tenant.sp
        return {
            "id": object_id,
            **APPLICATION_DEFAULTS,
            "appId": sp["appId"],
            "displayName": sp.get("displayName"),
            "appRoles": tenant.app_roles,
        }

    def application_get(self, request: GraphRequest) -> GraphResponse:
        record = self._application(request.path_params["app_object_id"])
        return self._entity(request, record, "applications", record)

    def application_patch(self, request: GraphRequest) -> GraphResponse:
        self._application(request.path_params["app_object_id"])
        body = request.json()
        if not isinstance(body, dict):
            raise errors.invalid_json_body()
        if "appRoles" in body:
            self.state.tenant.set_app_roles(body["appRoles"])
        return GraphResponse(204)

    def _assignment_record(self, assignment: dict[str, Any]) -> dict[str, Any]:
        """An appRoleAssignment as Graph renders it (every property of the resource)."""
        tenant = self.state.tenant
        return {
            "id": assignment["id"],
            "deletedDateTime": None,
            "appRoleId": assignment.get("appRoleId"),
            "createdDateTime": assignment.get("createdDateTime"),
            "principalDisplayName": tenant.display_name(assignment["principalId"]),
            "principalId": assignment["principalId"],
            "principalType": assignment.get("principalType"),
            "resourceDisplayName": tenant.sp.get("displayName"),
            "resourceId": tenant.sp["id"],
        }

    def _assignment_page(
        self, request: GraphRequest, positioned: Iterator[tuple[int, dict[str, Any]]], context: str
    ) -> GraphResponse:
        """A page of appRoleAssignments with ``$select`` and ``$filter`` (e.g. ``resourceId eq
        {guid}``) applied, as every appRoleAssignment collection answers."""
        resolver = PropertyResolver("microsoft.graph.appRoleAssignment", APP_ROLE_ASSIGNMENT_PROPERTIES)
        select = parse_select(request.options, resolver)
        flt = parse_filter(request.options, resolver)
        tenant = self.state.tenant

        def kept() -> Iterator[tuple[int, dict[str, Any]]]:
            for position, assignment in positioned:
                if not tenant.visible_assignment(assignment):
                    continue
                item = self._assignment_record(assignment)
                if flt is None or flt.predicate(item):
                    yield position, item

        render = (lambda item: project(item, select, {})) if select else (lambda item: item)
        return self.page(request, kept(), render, self.context(context))

    def app_role_assigned_to(self, request: GraphRequest) -> GraphResponse:
        tenant = self.state.tenant
        sp_id = request.path_params["sp_id"]
        if sp_id != tenant.sp["id"]:
            raise errors.resource_not_found(sp_id)
        positioned = tenant.assignments.iter_from(self.start_position(request))
        return self._assignment_page(request, positioned, f"servicePrincipals('{sp_id}')/appRoleAssignedTo")

    def _listed(self, request: GraphRequest, items: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
        """A short list paged by position (what per-object collections hold)."""
        start = self.start_position(request)
        return ((position, item) for position, item in enumerate(items) if position >= start)

    def user_app_role_assignments(self, request: GraphRequest) -> GraphResponse:
        """``GET /users/{id | userPrincipalName}/appRoleAssignments``: the user's own assignments
        and, as Graph documents, those of the groups the user is a *direct* member of."""
        key = request.path_params["user_id"]
        user = self.state.tenant.user_by_key(key)
        if user is None:
            raise errors.resource_not_found(key)
        tenant = self.state.tenant
        principals = [user["id"], *tenant.direct_groups_of(user["id"])]
        items = self._listed(request, tenant.assignments_of(principals))
        return self._assignment_page(request, items, f"users('{user['id']}')/appRoleAssignments")

    def group_app_role_assignments(self, request: GraphRequest) -> GraphResponse:
        """``GET /groups/{id}/appRoleAssignments``: the assignments made to the group itself."""
        group_id = request.path_params["group_id"]
        if group_id not in self.state.tenant.groups:
            raise errors.resource_not_found(group_id)
        items = self._listed(request, self.state.tenant.assignments_of([group_id]))
        return self._assignment_page(request, items, f"groups('{group_id}')/appRoleAssignments")

    # --- groups ----------------------------------------------------------------------------

    def _group_record(self, group: dict[str, Any]) -> dict[str, Any]:
        record = dict.fromkeys(GROUP_PROPERTIES)
        record.update({k: v for k, v in group.items() if k != "members"})
        return record

    def group_get(self, request: GraphRequest) -> GraphResponse:
        group_id = request.path_params["group_id"]
        group = self.state.tenant.groups.get(group_id)
        if group is None:
            raise errors.resource_not_found(group_id)
        record = self._group_record(group)
        return self._entity(request, record, "groups", record)

    def _members(self, request: GraphRequest, *, transitive: bool, users_only: bool) -> GraphResponse:
        tenant = self.state.tenant
        group_id = request.path_params["group_id"]
        if group_id not in tenant.groups:
            raise errors.resource_not_found(group_id)
        resolver = self.state.user_resolver()
        if not users_only:
            resolver.add(GROUP_PROPERTIES)
        select = parse_select(request.options, resolver)
        flt = parse_filter(request.options, resolver)
        member_ids = tenant.transitive_members(group_id) if transitive else tenant.direct_members(group_id)
        render_user = self.render_user(select or USER_DEFAULT_PROPERTIES)

        def render(object_id: str) -> dict[str, Any]:
            user = tenant.users.get(object_id)
            if user is not None:
                item = render_user(user)
                return item if users_only else {"@odata.type": "#microsoft.graph.user", **item}
            group = self._group_record(tenant.groups[object_id])
            return {"@odata.type": "#microsoft.graph.group", **(project(group, select, {}) if select else group)}

        def positioned() -> Iterator[tuple[int, str]]:
            users = tenant.users.records
            for position in range(self.start_position(request), len(member_ids)):
                object_id = member_ids[position]
                record = users.get(object_id)
                if users_only and record is None:
                    continue
                if flt is not None and not flt.predicate(record or tenant.groups[object_id]):
                    continue
                yield position, object_id

        collection = "users" if users_only else "directoryObjects"
        return self.page(request, positioned(), render, self.context(self.select_context(collection, select)))

    def members(self, request: GraphRequest) -> GraphResponse:
        return self._members(request, transitive=False, users_only=False)

    def member_users(self, request: GraphRequest) -> GraphResponse:
        return self._members(request, transitive=False, users_only=True)

    def transitive_members(self, request: GraphRequest) -> GraphResponse:
        return self._members(request, transitive=True, users_only=False)

    def transitive_member_users(self, request: GraphRequest) -> GraphResponse:
        return self._members(request, transitive=True, users_only=True)

    def _member_of(self, request: GraphRequest, *, groups_only: bool) -> GraphResponse:
        """``GET /users/{id | userPrincipalName}/transitiveMemberOf[/microsoft.graph.group]``: the
        groups the user belongs to directly or through nested groups (the emulated tenant has no
        directory roles or administrative units, so both forms list groups)."""
        key = request.path_params["user_id"]
        tenant = self.state.tenant
        user = tenant.user_by_key(key)
        if user is None:
            raise errors.resource_not_found(key)
        resolver = PropertyResolver("microsoft.graph.group", GROUP_PROPERTIES)
        select = parse_select(request.options, resolver)
        flt = parse_filter(request.options, resolver)
        group_ids = tenant.transitive_groups_of(user["id"])
        records = [self._group_record(tenant.groups[group_id]) for group_id in group_ids]
        items = [r for r in records if flt is None or flt.predicate(r)]

        def render(record: dict[str, Any]) -> dict[str, Any]:
            item = project(record, select, {}) if select else record
            return item if groups_only else {"@odata.type": "#microsoft.graph.group", **item}

        collection = "groups" if groups_only else "directoryObjects"
        return self.page(
            request,
            self._listed(request, items),
            render,
            self.context(self.select_context(collection, select)),
            count=lambda: len(items),
        )

    def transitive_member_of(self, request: GraphRequest) -> GraphResponse:
        return self._member_of(request, groups_only=False)

    def transitive_member_of_groups(self, request: GraphRequest) -> GraphResponse:
        return self._member_of(request, groups_only=True)

    # --- directory objects -----------------------------------------------------------------

    def get_by_ids(self, request: GraphRequest) -> GraphResponse:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("ids"), list) or not body["ids"]:
            raise errors.bad_request("Invalid request: the 'ids' parameter is required and must not be empty.")
        ids = body["ids"]
        if len(ids) > MAX_GET_BY_IDS:
            raise errors.bad_request(f"Too many identifiers in the request: {len(ids)}. Max allowed: {MAX_GET_BY_IDS}.")
        kinds = {"user", "group", "serviceprincipal"}
        if body.get("types"):
            wanted = {str(t).lower().removeprefix("microsoft.graph.") for t in body["types"]}
            unknown = wanted - kinds - {"directoryobject", "application", "device", "orgcontact"}
            if unknown:
                raise errors.bad_request(f"Invalid type(s) specified: {', '.join(sorted(unknown))}.")
            kinds = wanted
        tenant = self.state.tenant
        select = parse_select(request.options, self.state.user_resolver())
        render_user = self.render_user(select or USER_DEFAULT_PROPERTIES)
        items: list[dict[str, Any]] = []
        for object_id in dict.fromkeys(str(i) for i in ids):
            user = tenant.active_user(object_id)
            if user is not None and "user" in kinds:
                items.append({"@odata.type": "#microsoft.graph.user", **render_user(user)})
            elif object_id in tenant.groups and "group" in kinds:
                items.append({"@odata.type": "#microsoft.graph.group", **self._group_record(tenant.groups[object_id])})
            elif object_id == tenant.sp["id"] and "serviceprincipal" in kinds:
                items.append({"@odata.type": "#microsoft.graph.servicePrincipal", **self._service_principal()})
        return GraphResponse(200, {"@odata.context": self.context("directoryObjects"), "value": items})
