"""Salesforce's own error shapes.

Three kinds of failure, because Salesforce reports them three ways:

* ``RecordError``: one record failed a save (a Bulk result row, one REST create/update).
  Bulk 2.0 writes it into ``failedResults`` as ``STATUS_CODE:message:Field1,Field2 --``;
  REST answers ``[{"message", "errorCode", "fields"}]`` with 400.
* ``SoqlError``: a query did not parse or named something unknown (REST 400,
  ``[{"message", "errorCode"}]``; a Bulk query job fails with the message).
* ``ApiError``: a whole request is refused (session, limits, unknown resource); it carries
  the HTTP status and the JSON list every REST/Bulk error uses (``body()``), which the HTTP
  layer (``responses``, ``bulk_responses``) sends. This module is plain data: the models raise
  these errors without depending on the HTTP layer.

Sources: REST API Developer Guide "Status Codes and Error Responses"
(https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm)
and Bulk 2.0 "Get Job Failed Record Results".
"""

from __future__ import annotations

from typing import Any


class RecordError(Exception):
    """One record's failure, worded as Salesforce words it."""

    def __init__(self, status_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.fields = list(fields or [])

    def bulk_error(self) -> str:
        """The ``sf__Error`` cell of a Bulk 2.0 failed-results row.

        Real rows look like ``REQUIRED_FIELD_MISSING:Required fields are missing:
        [LastName]:LastName --`` (fields comma-separated, then `` --``) and
        ``MISSING_ARGUMENT:Id not specified in an update call:--`` when no field applies.
        """
        fields = f"{','.join(self.fields)} --" if self.fields else "--"
        return f"{self.status_code}:{self.message}:{fields}"

    def rest_body(self) -> list[dict[str, Any]]:
        """The REST body for a failed create/update (sent with HTTP 400)."""
        return [{"message": self.message, "errorCode": self.status_code, "fields": self.fields}]


class UnknownFieldError(RecordError):
    """A column/property that the User object does not have.

    Bulk 2.0 refuses the whole upload with ``InvalidBatch : Field name not found : Foo``
    (the job fails; seen in jsforce#688, ForceCLI/force#413); REST answers
    ``No such column 'Foo' on sobject of type User`` with ``INVALID_FIELD``.
    ``message`` holds the Bulk wording, ``rest_message`` the REST one.
    """

    def __init__(self, field_name: str, sobject: str = "User") -> None:
        super().__init__("INVALID_FIELD", f"Field name not found : {field_name}", [])
        self.field_name = field_name
        self.rest_message = f"No such column '{field_name}' on sobject of type {sobject}"

    def rest_body(self) -> list[dict[str, Any]]:
        return [{"message": self.rest_message, "errorCode": "INVALID_FIELD", "fields": []}]


class SoqlError(Exception):
    """A SOQL query Salesforce would refuse; ``error_code`` is MALFORMED_QUERY,
    INVALID_FIELD or INVALID_TYPE and ``message`` is Salesforce's text."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


class ApiError(Exception):
    """A refused request: ``body()`` is ``[{"message", "errorCode"}]``, sent with ``status``."""

    def __init__(self, status: int, error_code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers

    def body(self) -> list[dict[str, Any]]:
        return error_body(self.error_code, self.message)


def error_body(error_code: str, message: str) -> list[dict[str, Any]]:
    """Salesforce's REST/Bulk error body: a JSON list with one error object."""
    return [{"message": message, "errorCode": error_code}]


def invalid_session() -> ApiError:
    return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit_exceeded() -> ApiError:
    return ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")
