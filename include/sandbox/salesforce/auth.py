"""Logging in, sessions and the daily API allowance.

Three ways in, as the real org offers them:

* SOAP ``login()`` (partner API, what simple-salesforce sends for username + password +
  security token): ``POST /services/Soap/u/{version}``. Retired step by step by Salesforce
  (off by default in new orgs, gone from v65.0), so the fixture can switch it off with
  ``"soap_login_enabled": false`` and versions >= 65.0 refuse it, with the real faults
  (``INVALID_OPERATION``, reported in OpenFn/adaptors#1715 and forcedotcom/wsc#363).
* OAuth 2.0 ``POST /services/oauth2/token``: client credentials (consumer key/secret in
  HTTP Basic or the form; the app's ``run_as`` user), the JWT bearer flow (RS256 assertion
  verified with the app's ``jwt_certificate``) and the username-password flow.
* simple-salesforce always logs in at ``https://{domain}.salesforce.com/...``; with
  ``domain="127.0.0.1:PORT/login"`` that becomes ``/login.salesforce.com/services/...`` on
  the emulator, so both endpoints are also served under ``/{anything}.salesforce.com/``.

A session is an access token bound to a user. Sessions time out after ``session_seconds``
(fixture extension, default 7200, Salesforce's default "Timeout value" of 2 hours) without
use, and ``POST /_sandbox/sessions/expire`` ends all of them. Every authenticated REST or
Bulk request counts against ``daily_api_requests`` (fixture extension; see
``DEFAULT_DAILY_API_REQUESTS``); past it the org answers 403 ``REQUEST_LIMIT_EXCEEDED``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import parse_qs, unquote_plus

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from starlette.requests import Request
from starlette.responses import Response

from include.sandbox.core.service import json_response
from include.sandbox.salesforce.exceptions import invalid_session, request_limit_exceeded
from include.sandbox.salesforce.models import Org

DEFAULT_SESSION_SECONDS = 7200
DEFAULT_DAILY_API_REQUESTS = 1_000_000
"""The sandbox default: generous so that 100,000-user benchmarks never hit it. Real
Enterprise orgs get 100,000 + 1,000 per licence a day; set ``daily_api_requests`` in the
fixture to test the limit."""
SOAP_LOGIN_LAST_VERSION = 64
PARTNER_NS = "urn:partner.soap.sforce.com"
INVALID_LOGIN_MESSAGE = "Invalid username, password, security token; or user locked out."


@dataclass
class Session:
    """One access token; ``user_id`` is the user the API acts as."""

    token: str
    user_id: str
    username: str
    organization_id: str
    kind: str  # soap, client_credentials, jwt, password
    issued_at: float
    last_used: float
    app: str | None = None


class OAuthError(Exception):
    """An OAuth token-endpoint failure: ``{"error", "error_description"}`` with 400."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def response(self) -> Response:
        return json_response({"error": self.error, "error_description": self.description}, self.status)


class SoapFaultError(Exception):
    """A SOAP fault of the partner API (HTTP 500, ``sf:exceptionCode`` in the detail)."""

    def __init__(self, code: str, message: str, fault_type: str = "UnexpectedErrorFault") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fault_type = fault_type

    def response(self) -> Response:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:sf="urn:fault.partner.soap.sforce.com" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><soapenv:Fault>"
            f"<faultcode>sf:{self.code}</faultcode>"
            f"<faultstring>{escape(self.code)}: {escape(self.message)}</faultstring>"
            f'<detail><sf:{self.fault_type} xsi:type="sf:{self.fault_type}">'
            f"<sf:exceptionCode>{escape(self.code)}</sf:exceptionCode>"
            f"<sf:exceptionMessage>{escape(self.message)}</sf:exceptionMessage>"
            f"</sf:{self.fault_type}></detail>"
            "</soapenv:Fault></soapenv:Body></soapenv:Envelope>"
        )
        return Response(body, status_code=500, media_type="text/xml; charset=utf-8")


def _invalid_login() -> SoapFaultError:
    return SoapFaultError("INVALID_LOGIN", INVALID_LOGIN_MESSAGE, "LoginFault")


class Auth:
    """Sessions and API usage of the current org (``get_org`` follows control-API swaps)."""

    def __init__(self, get_org: Callable[[], Org], base_url: str) -> None:
        self._get_org = get_org
        self.base_url = base_url.rstrip("/")
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._api_used = 0
        self._api_day = self._today()

    # --- settings from the fixture ---------------------------------------------------------

    @property
    def org(self) -> Org:
        return self._get_org()

    def session_seconds(self) -> int:
        return int(self.org.extensions.get("session_seconds", DEFAULT_SESSION_SECONDS))

    def daily_limit(self) -> int:
        return int(self.org.extensions.get("daily_api_requests", DEFAULT_DAILY_API_REQUESTS))

    @staticmethod
    def _today() -> int:
        return int(time.time() // 86400)

    # --- sessions ----------------------------------------------------------------------

    def reset(self) -> None:
        """A new org (``PUT /_sandbox/state``): no sessions, a fresh daily allowance."""
        with self._lock:
            self._sessions.clear()
            self._api_used = 0
            self._api_day = self._today()

    def expire_all(self) -> int:
        with self._lock:
            count = len(self._sessions)
            self._sessions.clear()
        return count

    def open_session(self, user_id: str, kind: str, app: str | None = None) -> Session:
        org = self.org
        now = time.time()
        # Salesforce session ids start with the 15-character org id and a '!'.
        token = f"{org.organization_id[:15]}!{secrets.token_urlsafe(72)}"
        session = Session(token, user_id, org.user_value(user_id, "Username"), org.organization_id, kind, now, now, app)
        with self._lock:
            self._sessions[token] = session
        return session

    def api_usage(self) -> tuple[int, int]:
        """(requests used today, daily allowance)."""
        with self._lock:
            if self._api_day != self._today():
                self._api_day, self._api_used = self._today(), 0
            return self._api_used, self.daily_limit()

    def limit_info(self) -> str:
        """The ``Sforce-Limit-Info`` response header (``api-usage=18/5000``)."""
        used, limit = self.api_usage()
        return f"api-usage={used}/{limit}"

    def check(self, request: Request) -> Session:
        """The request's live session, counted against the allowance; raises ``ApiError``."""
        token = _bearer_token(request)
        now = time.time()
        timeout = self.session_seconds()
        with self._lock:
            session = self._sessions.get(token) if token else None
            if session is None:
                raise invalid_session()
            if now - session.last_used > timeout:
                del self._sessions[token]
                raise invalid_session()
            if self._api_day != self._today():
                self._api_day, self._api_used = self._today(), 0
            if self._api_used >= self.daily_limit():
                raise request_limit_exceeded()
            self._api_used += 1
            session.last_used = now
        org = self.org
        if session.organization_id != org.organization_id or session.user_id not in org.users:
            raise invalid_session()
        request.scope["salesforce.session"] = session
        return session

    def session_of(self, request: Request) -> Session:
        """The session ``check`` already accepted for this request (not counted again)."""
        session = request.scope.get("salesforce.session")
        return session if isinstance(session, Session) else self.check(request)

    async def authenticate(self, request: Request) -> str:
        """For the Bulk routes: the session user's Id (raises ``ApiError``)."""
        return authenticate(request, self).user_id

    # --- SOAP login ----------------------------------------------------------------------

    async def soap_login(self, request: Request) -> Response:
        version = request.path_params.get("version", "")
        try:
            username, password = _parse_login(await request.body())
            major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
            if major > SOAP_LOGIN_LAST_VERSION:
                raise SoapFaultError(
                    "INVALID_OPERATION",
                    f"The SOAP Login operation is not available in the API version specified ({version}). "
                    "Refer to the documentation for supported versions.",
                )
            if self.org.extensions.get("soap_login_enabled", True) is False:
                raise SoapFaultError(
                    "INVALID_OPERATION",
                    "SOAP API login() is disabled by default in this org. Contact the org administrator to enable "
                    "SOAP API login().",
                )
            user_id = self._check_password(username, password, with_token=True)
            if user_id is None:
                raise _invalid_login()
        except SoapFaultError as fault:
            return fault.response()
        session = self.open_session(user_id, "soap")
        return Response(self._login_result(session, version), media_type="text/xml; charset=utf-8")

    def _check_password(self, username: str, password: str, *, with_token: bool) -> str | None:
        """The user Id when ``username`` may log in with ``password`` (+ security token)."""
        org = self.org
        for login in org.logins:
            if str(login.get("username", "")).lower() != username.lower():
                continue
            expected = str(login.get("password", ""))
            token = str(login.get("security_token") or "")
            accepted = {expected + token} if with_token else {expected, expected + token}
            if token == "":
                accepted.add(expected)
            if password not in accepted:
                return None
            user_id = org.user_id_by_username(username)
            if user_id is None or not org.user_value(user_id, "IsActive"):
                return None
            return user_id
        return None

    def _login_result(self, session: Session, version: str) -> str:
        org = self.org
        user = org.get_user(session.user_id) or {}
        org15 = org.organization_id[:15]
        info = {
            "accessibilityMode": "false",
            "chatterExternal": "false",
            "currencySymbol": "$",
            "orgAttachmentFileSizeLimit": "5242880",
            "orgDefaultCurrencyIsoCode": "USD",
            "orgDefaultCurrencyLocale": "en_US",
            "orgDisallowHtmlAttachments": "false",
            "orgHasPersonAccounts": "false",
            "organizationId": org.organization_id,
            "organizationMultiCurrency": "false",
            "organizationName": str(org.extensions.get("organization_name", "Sandbox Org")),
            "profileId": user.get("ProfileId") or "",
            "roleId": None,
            "sessionSecondsValid": str(self.session_seconds()),
            "userDefaultCurrencyIsoCode": None,
            "userEmail": user.get("Email") or "",
            "userFullName": user.get("Name") or "",
            "userId": session.user_id,
            "userLanguage": user.get("LanguageLocaleKey") or "en_US",
            "userLocale": user.get("LocaleSidKey") or "en_US",
            "userName": session.username,
            "userTimeZone": user.get("TimeZoneSidKey") or "America/Los_Angeles",
            "userType": user.get("UserType") or "Standard",
            "userUiSkin": "Theme3",
        }
        info_xml = "".join(
            f'<{k} xsi:nil="true"/>' if v is None else f"<{k}>{escape(v)}</{k}>" for k, v in info.items()
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            f'xmlns="{PARTNER_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            "<soapenv:Body><loginResponse><result>"
            f"<metadataServerUrl>{self.base_url}/services/Soap/m/{version}/{org15}</metadataServerUrl>"
            "<passwordExpired>false</passwordExpired>"
            f"<sandbox>{str(bool(org.extensions.get('is_sandbox', False))).lower()}</sandbox>"
            f"<serverUrl>{self.base_url}/services/Soap/u/{version}/{org15}</serverUrl>"
            f"<sessionId>{escape(session.token)}</sessionId>"
            f"<userId>{session.user_id}</userId>"
            f"<userInfo>{info_xml}</userInfo>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )

    # --- OAuth 2.0 token endpoint --------------------------------------------------------

    async def oauth_token(self, request: Request) -> Response:
        try:
            form = _form(await request.body())
            grant = form.get("grant_type", "")
            if grant == "client_credentials":
                session = self._client_credentials(request, form)
            elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
                session = self._jwt_bearer(form)
            elif grant == "password":
                session = self._password_grant(request, form)
            else:
                raise OAuthError("unsupported_grant_type", "grant type not supported")
        except OAuthError as exc:
            return exc.response()
        return json_response(self._token_body(session))

    def _app(self, client_id: str | None) -> dict[str, Any]:
        for app in self.org.connected_apps:
            if client_id and app.get("consumer_key") == client_id:
                return app
        raise OAuthError("invalid_client_id", "client identifier invalid")

    def _client_secret_pair(self, request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise OAuthError("invalid_client", "invalid client credentials") from None
            key, _, secret = decoded.partition(":")
            return unquote_plus(key), unquote_plus(secret)
        return form.get("client_id"), form.get("client_secret")

    def _client_credentials(self, request: Request, form: dict[str, str]) -> Session:
        key, secret = self._client_secret_pair(request, form)
        app = self._app(key)
        if not secret or not hmac.compare_digest(str(app.get("consumer_secret", "")), secret):
            raise OAuthError("invalid_client", "invalid client credentials")
        run_as = app.get("run_as")
        user_id = self.org.user_id_by_username(str(run_as)) if run_as else None
        if user_id is None or not self.org.user_value(user_id, "IsActive"):
            raise OAuthError("invalid_grant", "no client credentials user enabled")
        return self.open_session(user_id, "client_credentials", app.get("consumer_key"))

    def _password_grant(self, request: Request, form: dict[str, str]) -> Session:
        key, secret = self._client_secret_pair(request, form)
        app = self._app(key)
        if not secret or not hmac.compare_digest(str(app.get("consumer_secret", "")), secret):
            raise OAuthError("invalid_client", "invalid client credentials")
        user_id = self._check_password(form.get("username", ""), form.get("password", ""), with_token=False)
        if user_id is None:
            raise OAuthError("invalid_grant", "authentication failure")
        return self.open_session(user_id, "password", app.get("consumer_key"))

    def _jwt_bearer(self, form: dict[str, str]) -> Session:
        assertion = form.get("assertion", "")
        try:
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "invalid assertion") from None
        app = self._app(str(claims.get("iss") or ""))
        certificate = app.get("jwt_certificate")
        if not certificate:
            raise OAuthError("invalid_grant", "invalid assertion")
        try:
            jwt.decode(
                assertion,
                _public_key(str(certificate)),
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False, "verify_nbf": False},
            )
        except (jwt.PyJWTError, ValueError):
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if not self._audience_ok(claims.get("aud")):
            raise OAuthError("invalid_grant", "audience is invalid")
        try:
            expires = float(claims.get("exp"))
        except (TypeError, ValueError):
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if expires < time.time():
            raise OAuthError("invalid_grant", "expired authorization code")
        user_id = self.org.user_id_by_username(str(claims.get("sub") or ""))
        if user_id is None or not self.org.user_value(user_id, "IsActive"):
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")
        return self.open_session(user_id, "jwt", app.get("consumer_key"))

    def _audience_ok(self, aud: Any) -> bool:
        """Salesforce wants its login host (``https://login.salesforce.com``, ``test``, or a
        My Domain ``https://x.my.salesforce.com``). simple-salesforce puts
        ``https://{domain}.salesforce.com`` there, which with the login-domain trick is
        ``https://127.0.0.1:PORT/login.salesforce.com``: any https URL ending in
        ``.salesforce.com``, or on this emulator's own URL, is accepted."""
        values = aud if isinstance(aud, list) else [aud]
        return any(
            isinstance(v, str)
            and v.startswith("https://")
            and (v.rstrip("/").endswith(".salesforce.com") or v.startswith(self.base_url))
            for v in values
        )

    def _token_body(self, session: Session) -> dict[str, Any]:
        issued_at = str(int(session.issued_at * 1000))
        identity = f"{self.base_url}/id/{session.organization_id}/{session.user_id}"
        app = next((a for a in self.org.connected_apps if a.get("consumer_key") == session.app), {})
        secret = str(app.get("consumer_secret", "")).encode()
        # signature: Base64 HMAC-SHA256 of id + issued_at keyed with the consumer secret
        # (OAuth 2.0 web server flow docs, "signature").
        signature = base64.b64encode(hmac.new(secret, (identity + issued_at).encode(), hashlib.sha256).digest())
        return {
            "access_token": session.token,
            "signature": signature.decode(),
            "scope": str(app.get("scope", "api")),
            "instance_url": self.base_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }


def authenticate(request: Request, auth: Auth | None = None) -> Session:
    """The request's session, counted against the daily allowance.

    Raises ``ApiError`` (401 ``INVALID_SESSION_ID`` or 403 ``REQUEST_LIMIT_EXCEEDED``),
    whose ``body()`` and ``status`` the route sends. ``auth`` defaults to the one the Salesforce app
    put in the ASGI scope, so route code only needs the request.
    """
    auth = auth or request.scope.get("salesforce.auth")
    if auth is None:
        raise RuntimeError("authenticate() needs the Salesforce Auth (no 'salesforce.auth' in the request scope)")
    return auth.check(request)


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    session_header = request.headers.get("x-sfdc-session")
    return session_header.strip() if session_header else None


def _form(raw: bytes) -> dict[str, str]:
    parsed = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _parse_login(raw: bytes) -> tuple[str, str]:
    """Username and password of a partner ``login`` call (any namespace prefix)."""
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise SoapFaultError("UNKNOWN_EXCEPTION", f"Unable to parse the request: {exc}") from None
    login = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "login"), None)
    if login is None:
        raise SoapFaultError("INVALID_OPERATION", "No operation available for request login")
    values: dict[str, str] = {}
    for child in login:
        values[child.tag.rsplit("}", 1)[-1]] = child.text or ""
    if not values.get("username"):
        raise _invalid_login()
    return values["username"].strip(), values.get("password", "")


def _public_key(pem: str) -> Any:
    data = pem.encode()
    if b"BEGIN CERTIFICATE" in data:
        return x509.load_pem_x509_certificate(data).public_key()
    return load_pem_public_key(data)


def expire_sessions_route(auth: Auth) -> Callable[[Request], Any]:
    """``POST /_sandbox/sessions/expire``: every session becomes invalid (the next call
    gets ``INVALID_SESSION_ID``, as after a real timeout)."""

    async def expire(request: Request) -> Response:
        return json_response({"expired": auth.expire_all()})

    return expire
