"""Microsoft Graph's and Entra ID's own error shapes.

Graph answers every error with ``{"error": {"code", "message", "innerError": {"date",
"request-id", "client-request-id"}}}`` (https://learn.microsoft.com/en-us/graph/errors);
the token endpoint answers with the OAuth shape plus Entra's ``AADSTS`` codes. Handlers raise
``GraphError`` / ``EntraError`` and the response layer renders them, so each message below
lives in one place and can be compared with what the real services say.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


class GraphError(Exception):
    """An error Graph would answer with; ``headers`` are added to the HTTP response."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
        inner: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details
        self.inner = inner or {}


def graph_date(now: dt.datetime | None = None) -> str:
    """``innerError.date`` is second-precision UTC without an offset, e.g. ``2024-05-01T10:00:00``."""
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%S")


def graph_error_body(error: GraphError, request_id: str, client_request_id: str) -> dict[str, Any]:
    inner = {"date": graph_date(), "request-id": request_id, "client-request-id": client_request_id}
    inner.update(error.inner)
    body: dict[str, Any] = {"code": error.code, "message": error.message}
    if error.details:
        body["details"] = error.details
    body["innerError"] = inner
    return {"error": body}


# --- the Graph errors the emulator raises -------------------------------------------------


def resource_not_found(object_id: str) -> GraphError:
    # Directory objects answer unknown ids with this exact wording.
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.",
    )


def segment_not_found(segment: str) -> GraphError:
    # Graph answers unknown path segments with 400, not 404.
    return GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")


def method_not_allowed() -> GraphError:
    return GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")


def bad_request(message: str, code: str = "Request_BadRequest") -> GraphError:
    return GraphError(400, code, message)


def unsupported_query(message: str) -> GraphError:
    return GraphError(400, "Request_UnsupportedQuery", message)


def invalid_page_size(raw: str, maximum: int) -> GraphError:
    # Seen verbatim from Graph: "Invalid page size specified: '1000'. Must be between 1 and 999 inclusive."
    return unsupported_query(f"Invalid page size specified: '{raw}'. Must be between 1 and {maximum} inclusive.")


def too_many_or_clauses(count: int, maximum: int) -> GraphError:
    # Graph's wording for more than 15 values in `id in (...)` or chained `or`s.
    return unsupported_query(
        f"Too many child clauses specified in search filter expression containing 'OR' operators: {count}. "
        f"Max allowed: {maximum}."
    )


def unknown_property(name: str, type_name: str) -> GraphError:
    return GraphError(
        400,
        "BadRequest",
        f"Parsing OData Select and Expand failed: Could not find a property named '{name}' on type '{type_name}'.",
    )


def invalid_json_body() -> GraphError:
    return GraphError(
        400,
        "BadRequest",
        "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid "
        "JSON format.",
    )


def sync_state_not_found(location: str) -> GraphError:
    # Graph's errors page: "syncStateNotFound: The sync state generation is not found. The delta
    # token is expired and data must be synchronized again." The delta query overview: a 410 carries
    # a Location header with the initial request (empty $deltatoken) to start over from.
    return GraphError(
        410,
        "syncStateNotFound",
        "The sync state generation is not found. The delta token is expired and data must be synchronized again.",
        headers={"Location": location},
    )


def empty_token(www_authenticate: str) -> GraphError:
    return GraphError(
        401, "InvalidAuthenticationToken", "Access token is empty.", headers={"WWW-Authenticate": www_authenticate}
    )


def expired_token(www_authenticate: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        "Access token has expired or is not yet valid.",
        headers={"WWW-Authenticate": www_authenticate},
    )


def malformed_token(www_authenticate: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        "CompactToken parsing failed with error code: 80049217",
        headers={"WWW-Authenticate": www_authenticate},
    )


def unknown_token(www_authenticate: str) -> GraphError:
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        "Access token validation failure. Invalid audience.",
        headers={"WWW-Authenticate": www_authenticate},
    )


def revoked_token(www_authenticate: str) -> GraphError:
    # Continuous access evaluation: a revoked token held by a CAE-capable client (xms_cc=CP1) is
    # answered with a claims challenge in WWW-Authenticate, which kiota turns into a fresh token.
    return GraphError(
        401,
        "InvalidAuthenticationToken",
        "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: "
        "TokenIssuedBeforeRevocationTimestamp",
        headers={"WWW-Authenticate": www_authenticate},
    )


def too_many_requests(retry_after: int, headers: dict[str, str] | None = None) -> GraphError:
    # The sample 429 of https://learn.microsoft.com/en-us/graph/throttling, with its innerError extras.
    return GraphError(
        429,
        "TooManyRequests",
        "Please retry again later.",
        headers={"Retry-After": str(retry_after), **(headers or {})},
        inner={"code": "429", "message": "Please retry after", "status": "429"},
    )


FAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Cannot process the request because it is malformed or incorrect."),
    401: ("InvalidAuthenticationToken", "Access token has expired or is not yet valid."),
    403: ("Authorization_RequestDenied", "Insufficient privileges to complete the operation."),
    404: ("Request_ResourceNotFound", "The requested resource doesn't exist."),
    409: ("Request_MultipleObjectsWithSameKeyValue", "The current state conflicts with what the request expects."),
    410: ("syncStateNotFound", "The sync state generation is not found."),
    500: ("generalException", "An unspecified error has occurred."),
    501: ("NotImplemented", "The requested feature isn't implemented."),
    502: ("badGateway", "The server received an invalid response from the upstream server."),
    503: ("serviceNotAvailable", "The service is not available. Try the request again after a delay."),
    504: (
        "gatewayTimeout",
        "The server, while acting as a proxy, did not receive a timely response from the upstream server it "
        "needed to access in attempting to complete the request.",
    ),
}


def fault_error(status: int, retry_after: int | None) -> GraphError:
    """The Graph error an injected fault rule answers with."""
    if status == 429:
        return too_many_requests(1 if retry_after is None else retry_after)
    code, message = FAULT_ERRORS.get(status, ("generalException", "An unspecified error has occurred."))
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="", error="invalid_token"'
    return GraphError(status, code, message, headers=headers)


# --- Entra ID (token endpoint) --------------------------------------------------------------


@dataclass
class EntraError(Exception):
    """An OAuth error of the v2.0 token endpoint, with its ``AADSTS`` code."""

    status: int
    error: str
    aadsts: int
    description: str
    extra: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"AADSTS{self.aadsts}: {self.description}"


def entra_timestamp(now: dt.datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%SZ")


def entra_error_body(err: EntraError, trace_id: str, correlation_id: str, error_uri_base: str) -> dict[str, Any]:
    """Entra's body: the description repeats trace/correlation ids and time after CRLFs."""
    now = dt.datetime.now(dt.UTC)
    stamp = entra_timestamp(now)
    description = (
        f"AADSTS{err.aadsts}: {err.description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\n"
        f"Timestamp: {stamp}"
    )
    return {
        "error": err.error,
        "error_description": description,
        "error_codes": [err.aadsts],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{error_uri_base}/error?code={err.aadsts}",
        **err.extra,
    }


def invalid_client_secret(client_id: str) -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000215,
        "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "
        f"not the client secret ID, for a secret added to app '{client_id}'.",
    )


def missing_client_credential() -> EntraError:
    return EntraError(
        401,
        "invalid_client",
        7000218,
        "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
    )


def unknown_application(client_id: str, tenant: str) -> EntraError:
    return EntraError(
        400,
        "unauthorized_client",
        700016,
        f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if "
        "the application has not been installed by the administrator of the tenant or consented to by any user in "
        "the tenant. You may have sent your authentication request to the wrong tenant.",
    )


def unknown_tenant(tenant: str) -> EntraError:
    return EntraError(
        400,
        "invalid_request",
        90002,
        f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the "
        "correct cloud. Check with your subscription administrator, this may happen if there are no active "
        "subscriptions for the tenant.",
    )


def missing_parameter(name: str) -> EntraError:
    return EntraError(
        400, "invalid_request", 900144, f"The request body must contain the following parameter: '{name}'."
    )


def invalid_scope(scope: str) -> EntraError:
    return EntraError(
        400,
        "invalid_scope",
        70011,
        f"The provided request must include a 'scope' input parameter. The provided value for the input parameter "
        f"'scope' is not valid. The scope {scope} is not valid.",
    )


def unsupported_grant_type(grant_type: str) -> EntraError:
    return EntraError(
        400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
    )
