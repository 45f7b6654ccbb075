"""Routes of the Graph emulator: Graph v1.0, the Entra endpoints and the Graph control API.

One table drives three things: the Starlette routes (whose path templates label the request
counts of ``GET /_sandbox/requests``), the resolution of ``$batch`` sub-requests, and
Graph's answers for unknown paths (400 "Resource not found for the segment '...'") and
wrong methods (405).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.batch import BatchHandler
from include.sandbox.graph.endpoints import control_endpoints, entra_endpoints, graph_endpoint, to_starlette
from include.sandbox.graph.responses import GraphApi, GraphRequest, Handler

# (method, path template, GraphApi handler name). Order matters: literal segments before {params}.
GRAPH_ROUTES: list[tuple[str, str, str]] = [
    ("GET", "/v1.0/users", "users_list"),
    ("GET", "/v1.0/users/delta()", "users_delta"),
    ("GET", "/v1.0/users/delta", "users_delta"),
    ("GET", "/v1.0/users/microsoft.graph.delta()", "users_delta"),
    ("GET", "/v1.0/users/microsoft.graph.delta", "users_delta"),
    ("GET", "/v1.0/users/{user_id}", "user_get"),
    ("GET", "/v1.0/users/{user_id}/appRoleAssignments", "user_app_role_assignments"),
    ("GET", "/v1.0/users/{user_id}/transitiveMemberOf", "transitive_member_of"),
    ("GET", "/v1.0/users/{user_id}/transitiveMemberOf/microsoft.graph.group", "transitive_member_of_groups"),
    ("GET", "/v1.0/users/{user_id}/transitiveMemberOf/graph.group", "transitive_member_of_groups"),
    ("GET", "/v1.0/servicePrincipals(appId='{app_id}')", "service_principal_by_app_id"),
    ("GET", "/v1.0/servicePrincipals/{sp_id}", "service_principal_get"),
    ("GET", "/v1.0/servicePrincipals/{sp_id}/appRoleAssignedTo", "app_role_assigned_to"),
    ("GET", "/v1.0/applications/{app_object_id}", "application_get"),
    ("PATCH", "/v1.0/applications/{app_object_id}", "application_patch"),
    ("GET", "/v1.0/groups/{group_id}", "group_get"),
    ("GET", "/v1.0/groups/{group_id}/appRoleAssignments", "group_app_role_assignments"),
    ("GET", "/v1.0/groups/{group_id}/members", "members"),
    ("GET", "/v1.0/groups/{group_id}/members/microsoft.graph.user", "member_users"),
    ("GET", "/v1.0/groups/{group_id}/members/graph.user", "member_users"),
    ("GET", "/v1.0/groups/{group_id}/transitiveMembers", "transitive_members"),
    ("GET", "/v1.0/groups/{group_id}/transitiveMembers/microsoft.graph.user", "transitive_member_users"),
    ("GET", "/v1.0/groups/{group_id}/transitiveMembers/graph.user", "transitive_member_users"),
    ("POST", "/v1.0/directoryObjects/getByIds", "get_by_ids"),
    ("POST", "/v1.0/directoryObjects/microsoft.graph.getByIds", "get_by_ids"),
]
BATCH_PATH = "/v1.0/$batch"

CONTROL_ROUTES: list[tuple[str, str, str]] = [
    ("POST", "/users", "add_user"),
    ("PATCH", "/users/{user_id}", "patch_user"),
    ("DELETE", "/users/{user_id}", "delete_user"),
    ("POST", "/users/{user_id}/restore", "restore_user"),
    ("POST", "/appRoleAssignments", "add_assignment"),
    ("DELETE", "/appRoleAssignments/{assignment_id}", "delete_assignment"),
    ("POST", "/groups/{group_id}/members", "add_member"),
    ("DELETE", "/groups/{group_id}/members/{member_id}", "remove_member"),
    ("POST", "/tokens/expire", "expire_tokens"),
    ("POST", "/tokens/revoke", "revoke_tokens"),
    ("POST", "/delta/expire", "expire_delta"),
]


def _segment_pattern(segment: str) -> re.Pattern[str]:
    pieces = re.split(r"\{[^}]+\}", segment)
    return re.compile("^" + ".+".join(re.escape(p) for p in pieces) + "$", re.IGNORECASE)


class GraphRouter:
    """Resolves ``(method, path)`` to a handler, or raises the error Graph would answer."""

    def __init__(self, api: GraphApi) -> None:
        self.api = api
        self.routes: list[tuple[str, Route, Handler]] = []
        for method, path, name in GRAPH_ROUTES:
            handler = getattr(api, name)
            self.routes.append((method, Route(path, graph_endpoint(api, handler), methods=[method]), handler))
        self.batch = BatchHandler(api, self.resolve, self.label)
        batch_route = Route(BATCH_PATH, graph_endpoint(api, self.batch, charge=False), methods=["POST"])
        self.routes.append(("POST", batch_route, self.batch))
        self._templates = [
            [_segment_pattern(s) for s in route.path.strip("/").split("/")] for _, route, _ in self.routes
        ]

    def resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]]:
        path_matched = False
        for route_method, route, handler in self.routes:
            match = route.path_regex.match(path)
            if match is None:
                continue
            if route_method != method.upper():
                path_matched = True
                continue
            params = {k: str(route.param_convertors[k].convert(v)) for k, v in match.groupdict().items()}
            return handler, params
        if path_matched:
            raise errors.method_not_allowed()
        raise errors.segment_not_found(self.unknown_segment(path))

    def label(self, method: str, path: str) -> str:
        """The path template of the route serving ``(method, path)``, "(unmatched)" for none."""
        for route_method, route, _ in self.routes:
            if route_method == method.upper() and route.path_regex.match(path):
                return route.path
        return "(unmatched)"

    def unknown_segment(self, path: str) -> str:
        """The first segment no route template accounts for, as Graph names it."""
        segments = [s for s in path.split("/") if s]
        if not segments:
            return ""
        best = 0
        for template in self._templates:
            depth = 0
            for pattern, segment in zip(template, segments, strict=False):
                if not pattern.match(segment):
                    break
                depth += 1
            best = max(best, depth)
        return segments[min(best, len(segments) - 1)]

    def starlette_routes(self) -> list[Route]:
        return [route for _, route, _ in self.routes]

    def not_found_response(self, request: Request) -> Response:
        graph_req = GraphRequest(
            method=request.method,
            path=request.scope["path"],
            query_pairs=request.query_params.multi_items(),
            headers=dict(request.headers),
        )
        try:
            self.resolve(request.method, request.scope["path"])
            error = errors.segment_not_found(self.unknown_segment(request.scope["path"]))
        except errors.GraphError as exc:
            error = exc
        return to_starlette(self.api.error_response(graph_req, error))


def entra_routes(endpoints: dict[str, Callable]) -> list[Route]:
    return [
        Route("/{tenant}/oauth2/v2.0/token", endpoints["token"], methods=["POST"]),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", endpoints["openid_configuration"], methods=["GET"]),
        Route("/common/discovery/instance", endpoints["instance_discovery"], methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", endpoints["keys"], methods=["GET"]),
    ]


def control_routes(endpoints: dict[str, Callable]) -> list[Route]:
    return [Route(path, endpoints[name], methods=[method]) for method, path, name in CONTROL_ROUTES]


__all__ = ["GraphRouter", "control_endpoints", "control_routes", "entra_endpoints", "entra_routes"]
