"""Logging in to Salesforce through simple-salesforce, from an Airflow-style connection.

Three ways in, tried in this order because that is the order of preference for an unattended
integration: OAuth client credentials (a connected app's consumer key + secret, run as the app's
integration user), the OAuth JWT bearer flow (consumer key + username + private key), and SOAP
``login()`` (username + password + security token), which Salesforce retires from API v65.0 on.

Every HTTP call goes through one ``requests.Session`` built here, because three things must hold
for all of them and simple-salesforce sets none of them itself:

* ``verify`` is the connection's CA bundle and ``trust_env`` is False: when ``REQUESTS_CA_BUNDLE``
  is set (as on these machines) requests otherwise ignores ``Session.verify``
  (docs/decisions.md);
* transient answers (429, 502, 503, 504) are retried with backoff, honouring ``Retry-After``: the
  Bulk path of simple-salesforce never retries anything;
* every request has a timeout, so a dead connection cannot hang a cycle forever.

The connection's ``domain`` is passed to simple-salesforce unchanged: against a real org it is
``login``, ``test`` or ``mydomain.my``; against the sandbox it is ``127.0.0.1:PORT/login``, which
makes simple-salesforce's ``https://{domain}.salesforce.com`` login URLs land on the emulator.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.bulk2 import SFBulk2Type
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession
from urllib3.util.retry import Retry

from include.provisioning.errors import AuthenticationError
from include.provisioning.salesforce.settings import (  # defined apart; importers still find them here
    CLIENT_CREDENTIALS,
    JWT_BEARER,
    SOAP_LOGIN,
    SOAP_LOGIN_LAST_VERSION,
    SalesforceSettings,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = (429, 502, 503, 504)
MAX_RELOGINS = 3
"""Consecutive ``INVALID_SESSION_ID`` answers to one call before giving up."""


class SalesforceLoginError(AuthenticationError, RuntimeError):
    """Logging in failed; the message names the method, the user or consumer key, the login
    URL and Salesforce's own error code, and never a secret."""


# --- HTTP ------------------------------------------------------------------------------------


def request_kind(url: str) -> str:
    """A request's kind for the counters: login, rest_query, bulk_ingest, bulk_query, rest."""
    path = urlsplit(url).path
    if path.endswith("/services/oauth2/token") or "/services/Soap/u/" in path:
        return "login"
    if "/jobs/ingest" in path:
        return "bulk_ingest"
    if "/jobs/query" in path:
        return "bulk_query"
    if "/query" in path:
        return "rest_query"
    return "rest"


class _CountingRetry(Retry):
    """urllib3's Retry that reports each retry it grants (for the request counters and logs)."""

    on_retry: Callable[[str | None, int | None], None] | None = None

    def new(self, **kw: Any) -> _CountingRetry:
        fresh = super().new(**kw)
        fresh.on_retry = self.on_retry
        return fresh

    def increment(self, method: Any = None, url: Any = None, response: Any = None, *args: Any, **kw: Any) -> Retry:
        granted = super().increment(method, url, response, *args, **kw)  # raises when exhausted
        if self.on_retry is not None:
            self.on_retry(url, getattr(response, "status", None))
        return granted


class _Adapter(HTTPAdapter):
    """Retries and a default timeout for every request simple-salesforce sends."""

    def __init__(self, retry: Retry, timeout: float) -> None:
        super().__init__(max_retries=retry)
        self.timeout = timeout

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def build_http_session(settings: SalesforceSettings, counts: Counter[str] | None = None) -> requests.Session:
    """The one requests session all Salesforce traffic uses (see the module docstring)."""
    counts = counts if counts is not None else Counter()
    http = requests.Session()
    http.trust_env = False
    http.verify = settings.resolved_verify()

    def retried(url: str | None, status: int | None) -> None:
        counts["retries"] += 1
        logger.info("Salesforce answered %s to %s; retrying", status or "a connection error", url)

    # POST and PATCH are retried too: a 429/5xx from Salesforce means the call was not carried
    # out; the worst a repeated "create job" leaves behind is an empty Open job.
    retry = _CountingRetry(
        total=6,
        connect=3,
        read=0,
        status=6,
        other=0,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=None,
        backoff_factor=0.2,
        backoff_max=30,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    retry.on_retry = retried
    adapter = _Adapter(retry, settings.timeout)
    http.mount("https://", adapter)
    http.mount("http://", adapter)

    def count(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        counts[request_kind(response.url)] += 1

    http.hooks["response"].append(count)
    return http


# --- login -----------------------------------------------------------------------------------


def login(settings: SalesforceSettings, http: requests.Session) -> Salesforce:
    """A logged-in simple-salesforce client (raises ``SalesforceLoginError``)."""
    method = settings.auth_method()
    common: dict[str, Any] = {"domain": settings.domain, "version": settings.version, "session": http}
    if method == CLIENT_CREDENTIALS:
        if settings.domain in ("login", "test"):
            raise SalesforceLoginError(
                f"{method} for consumer key {settings.consumer_key!r}: Salesforce only accepts it at the org's "
                f"My Domain; set extra.domain to 'yourdomain.my' (or extra.instance_url), not {settings.domain!r}"
            )
        kwargs = {"consumer_key": settings.consumer_key, "consumer_secret": settings.consumer_secret}
    elif method == JWT_BEARER:
        # instance_url is left out on purpose: simple-salesforce would build the token URL as
        # https://{instance_url}.salesforce.com from it; the token answer names the instance.
        kwargs = {"username": settings.username, "consumer_key": settings.consumer_key}
        if settings.private_key:
            kwargs["privatekey"] = settings.private_key
        else:
            kwargs["privatekey_file"] = settings.private_key_file_path
    else:
        major = int(settings.version.split(".")[0]) if settings.version.split(".")[0].isdigit() else 0
        logger.warning(
            "Salesforce connection %r logs in with SOAP login(), which Salesforce retires (unavailable from API "
            "v65.0, off by default in new orgs); prefer a connected app (client credentials or JWT bearer)%s",
            settings.conn_id,
            f"; API version {settings.version} already refuses it" if major > SOAP_LOGIN_LAST_VERSION else "",
        )
        kwargs = {
            "username": settings.username,
            "password": settings.password,
            "security_token": settings.security_token or "",
        }
    try:
        return Salesforce(**kwargs, **common)
    except SalesforceAuthenticationFailed as exc:
        raise SalesforceLoginError(_login_failure(settings, method, exc)) from None
    except requests.exceptions.SSLError as exc:
        raise SalesforceLoginError(
            f"{method} at {settings.login_url}: TLS verification failed (CA bundle: {_bundle(settings)}): {exc}"
        ) from None
    except requests.exceptions.RequestException as exc:
        raise SalesforceLoginError(f"{method} at {settings.login_url}: cannot reach Salesforce: {exc}") from None
    except (jwt.PyJWTError, ValueError, OSError) as exc:
        if method != JWT_BEARER:
            raise
        source = f"file {settings.private_key_file_path}" if not settings.private_key else "extra.private_key"
        raise SalesforceLoginError(
            f"{method} as {_who(settings, method)}: the private key ({source}) cannot be used to sign the "
            f"assertion: {type(exc).__name__}: {exc}"
        ) from None


def _bundle(settings: SalesforceSettings) -> str:
    verify = settings.resolved_verify()
    return "requests' default bundle" if verify is True else str(verify)


def _who(settings: SalesforceSettings, method: str) -> str:
    if method == CLIENT_CREDENTIALS:
        return f"consumer key {settings.consumer_key!r}"
    if method == JWT_BEARER:
        return f"user {settings.username!r} with consumer key {settings.consumer_key!r}"
    return f"user {settings.username!r}"


def _login_failure(settings: SalesforceSettings, method: str, exc: SalesforceAuthenticationFailed) -> str:
    code = getattr(exc, "code", None)
    detail = getattr(exc, "auth_message", None) or ""
    message = (
        f"Salesforce login failed: {method} as {_who(settings, method)} at {settings.login_url} "
        f"(connection {settings.conn_id!r}): {code}: {detail}".rstrip(": ")
    )
    if code == "invalid_client":  # OAuth 2.0 (RFC 6749 5.2): the client's own credentials were refused
        message += f" (check extra.consumer_key and extra.consumer_secret of connection {settings.conn_id!r})"
    if method == SOAP_LOGIN and code == "INVALID_OPERATION":
        message += (
            f" — SOAP login() is retired (API v65.0 and later, and orgs that switched it off; this connection "
            f"uses v{settings.version}); configure a connected app: extra.consumer_key + extra.consumer_secret"
        )
    return message


class SalesforceSession:
    """A logged-in client plus what the engine needs around it: re-login, request counters and a
    wrapper that retries a call once the session is renewed.

    simple-salesforce's REST calls log in again by themselves on ``INVALID_SESSION_ID``; its Bulk
    2.0 calls do not, so everything Bulk goes through ``call``.
    """

    def __init__(
        self, settings: SalesforceSettings, sf: Salesforce, http: requests.Session, counts: Counter[str]
    ) -> None:
        self.settings = settings
        self.sf = sf
        self.http = http
        self.counts = counts
        self.relogins = 0

    @property
    def method(self) -> str:
        return self.settings.auth_method()

    @property
    def instance_url(self) -> str:
        return f"https://{self.sf.sf_instance}"

    def requests_by_kind(self) -> dict[str, int]:
        """HTTP requests sent so far by kind (login, rest_query, bulk_ingest, bulk_query, rest)
        and the retries granted on transient answers (``retries``)."""
        return dict(self.counts)

    def relogin(self) -> None:
        """Open a new session with the same credentials (the old one expired)."""
        try:
            self.sf._refresh_session()  # simple-salesforce's own re-login path (same HTTP session)
        except SalesforceAuthenticationFailed as exc:
            raise SalesforceLoginError(_login_failure(self.settings, self.method, exc)) from None
        self.relogins += 1
        logger.info("Salesforce session renewed (%s)", self.method)

    def bulk2(self, sobject: str = "User") -> SFBulk2Type:
        """simple-salesforce's Bulk 2.0 handle for ``sobject``, built fresh so that it carries the
        current session id (the handle copies the token when it is created)."""
        return getattr(self.sf.bulk2, sobject)

    def call(self, fn: Callable[[], T], what: str = "Salesforce call") -> T:
        """Run ``fn``; on ``INVALID_SESSION_ID`` log in again and run it again. ``fn`` must fetch
        its client anew (``lambda: session.bulk2().…``) so the retry uses the new token."""
        for attempt in range(MAX_RELOGINS + 1):
            try:
                return fn()
            except SalesforceExpiredSession:
                if attempt == MAX_RELOGINS:
                    raise
                logger.info("%s: session expired or invalid; logging in again", what)
                self.relogin()
        raise AssertionError("unreachable")

    def query_all(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a REST SOQL query (fine for small objects such as Profile)."""
        result = self.call(lambda: self.sf.query_all(soql), f"query {soql!r}")
        return [{k: v for k, v in rec.items() if k != "attributes"} for rec in result.get("records", [])]


def connect(settings: SalesforceSettings) -> SalesforceSession:
    """Log in with the method the settings select and wrap the client (raises
    ``SalesforceLoginError`` with a message naming method, user and Salesforce's code)."""
    counts: Counter[str] = Counter()
    http = build_http_session(settings, counts)
    return SalesforceSession(settings, login(settings, http), http, counts)
