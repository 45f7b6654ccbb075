"""The connection to Microsoft Graph: the SDK stack, raw requests, retries, errors (settings: ``settings.py``).

Every request goes through msgraph-sdk's own pipeline (azure-identity credential, kiota's
bearer-token provider, ``GraphRequestAdapter`` over ``GraphClientFactory``'s middleware with
its ``RetryHandler``), so authentication, CAE claims challenges and throttling retries are the
SDK's. What comes back is read as raw bytes and parsed with orjson: typed models cost about
6 ms per user (docs/external-apis.md, Microsoft Graph), which would dominate a 100,000-user cycle.

On top of the SDK this module adds what the SDK leaves out: a bounded retry of 500/502 and of
transport errors, one token renewal on a 401 (a token revoked or expired on the server while
still cached here), fail-fast authentication errors that name the tenant and client id
(never the secret), and request counts for the cycle summary.

One ``GraphClient`` lives inside one ``asyncio.run``: the credential's aiohttp session and the
httpx pool belong to the loop they were opened on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import random
import re
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson

from include.provisioning.errors import AuthenticationError, TransientError
from include.provisioning.graph.settings import GraphSettings  # defined apart; importers still find it here
from include.provisioning.settings import SettingsError

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
"""Throttling and the transient server errors Graph documents as worth retrying."""
MISSING_REPLY = 0
"""Status given to a ``$batch`` item the envelope did not answer: retried like a 503."""

T = TypeVar("T")


# --- errors -----------------------------------------------------------------------------------


class GraphError(TransientError):
    """Graph answered with an error the extraction cannot work around; the message says which
    request (kind and path), the status, Graph's error code and message."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class GraphAuthError(GraphError, AuthenticationError):
    """The credentials or permissions are wrong: retrying cannot help, so the cycle stops at once."""


# --- retries ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying throttled and transient failures.

    ``sdk_retries`` configures kiota's ``RetryHandler`` (429/503/504 on each HTTP request,
    honouring ``Retry-After``); ``max_attempts`` bounds this module's own retries, which also
    cover 500/502, transport errors and ``$batch`` items (the SDK never retries those).
    """

    sdk_retries: int = 5
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """``Retry-After`` when the server gave one (capped), else exponential backoff with jitter."""
        if retry_after:
            try:
                return min(self.max_delay, max(0.0, float(retry_after)))
            except ValueError:
                pass
        backoff = self.base_delay * 2 ** max(0, attempt - 1)
        return min(self.max_delay, backoff * (0.75 + random.random() / 2))


INTERACTIVE_RETRY = RetryPolicy(sdk_retries=0, max_attempts=1)
"""For checks a person waits for (``validate-config --connect``, the Test button), who can run them
again: no retries of our own (azure-identity still retries the token request, ~5 s when the host
is unreachable)."""


# --- replies ----------------------------------------------------------------------------------


@dataclass
class GraphReply:
    """One answer (a plain response or a ``$batch`` item): status, headers, parsed JSON body."""

    status: int
    headers: Mapping[str, str]
    body: Any
    text: str = ""

    @classmethod
    def from_response(cls, response: httpx.Response) -> GraphReply:
        content = response.content
        body: Any = None
        text = ""
        if content:
            try:
                body = orjson.loads(content)
            except orjson.JSONDecodeError:
                text = content[:300].decode("utf-8", "replace")
        return cls(response.status_code, response.headers, body, text)

    @classmethod
    def from_batch_item(cls, item: Mapping[str, Any]) -> GraphReply:
        headers = httpx.Headers({str(k): str(v) for k, v in (item.get("headers") or {}).items()})
        body = item.get("body")
        text = ""
        if isinstance(body, str):
            # Graph's JSON batching (docs/external-apis.md): a body that is not JSON comes base64-encoded.
            try:
                body = orjson.loads(base64.b64decode(body, validate=True))
            except (binascii.Error, ValueError):
                text, body = body[:300], None
        status = item.get("status")
        return cls(int(status) if isinstance(status, int) else MISSING_REPLY, headers, body, text)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_code(self) -> str | None:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error.get("code") if isinstance(error, dict) else None

    @property
    def error_message(self) -> str:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        return self.text or "(no error body)"

    def describe(self) -> str:
        code = self.error_code
        return f"{self.status} {code + ': ' if code else ''}{self.error_message}"


def describe_url(url: str) -> str:
    """The path of a request, without its query (which may hold long id lists)."""
    path = urlsplit(url).path or url
    return path if len(path) <= 200 else path[:200] + "..."


_SSL_CONTEXT_REPR = re.compile(r"\s*ssl:<[^>]*>")
"""aiohttp's connection errors end in ``ssl:<ssl.SSLContext object at 0x...>``: noise to a person."""


def unreachable_message(settings: GraphSettings, kind: str, target: str, attempts: int, exc: BaseException) -> str:
    """A request that never got an answer, with the setting that decides where it went.

    ``ServiceRequestError`` is azure-identity's (the token request to ``extra.authority``);
    ``httpx`` errors are the Graph request's own (``extra.base_url``, or host and port)."""
    from azure.core.exceptions import ServiceRequestError

    reason = _SSL_CONTEXT_REPR.sub("", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ServiceRequestError):
        where = f"Entra's token endpoint at {settings.authority}"
        fix = f"check extra.authority of connection {settings.conn_id!r}, the network and any proxy"
    else:
        where = f"Graph at {settings.base_url}"
        fix = f"check extra.base_url (or host and port) of connection {settings.conn_id!r}, the network and any proxy"
    return (
        f"Graph {kind} request {describe_url(target)} could not be sent after {attempts} attempt(s): "
        f"{where} did not answer: {reason} ({fix})"
    )


# --- the credential ---------------------------------------------------------------------------


class RenewableCredential:
    """An async ``TokenCredential`` whose cached token can be thrown away.

    azure-identity caches the token until shortly before it expires. When Graph rejects a
    token the cache still trusts (revoked, or expired early on the server), asking again
    would return the same token; a fresh credential fetches a new one.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._inner = factory()

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return await self._inner.get_token(*scopes, **kwargs)

    async def renew(self) -> None:
        old, self._inner = self._inner, self._factory()
        await old.close()

    async def close(self) -> None:
        await self._inner.close()


_AADSTS = re.compile(r"(AADSTS\d+):\s*([^\r\n]*)")


def token_error_message(settings: GraphSettings, exc: BaseException) -> str:
    """Entra's AADSTS code and description, the tenant, the client id and the fix."""
    text = str(exc).replace(settings.client_secret, "***") if settings.client_secret else str(exc)
    match = _AADSTS.search(text)
    reason = f"{match.group(1)}: {match.group(2).strip()}" if match else text.strip().splitlines()[0]
    return (
        f"Graph authentication failed for {settings.who()} at {settings.authority}: {reason} "
        f"(check the client id, secret and extra.tenant_id of connection {settings.conn_id!r})"
    )


# --- transport --------------------------------------------------------------------------------


class CountingTransport(httpx.AsyncBaseTransport):
    """Innermost transport: sees every HTTP request, including the SDK's own retries."""

    def __init__(self, inner: httpx.AsyncBaseTransport, counts: Counter[str]) -> None:
        self.inner = inner
        self.counts = counts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.counts["graph.http"] += 1
        response = await self.inner.handle_async_request(request)
        if response.status_code == 429:
            self.counts["graph.throttled"] += 1
        elif response.status_code >= 500:
            self.counts["graph.server_errors"] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


# --- the client -------------------------------------------------------------------------------


class GraphClient:
    """msgraph-sdk's stack for one cycle, with raw requests and ``$batch`` on top.

    Use as ``async with GraphClient(settings) as client:`` inside the cycle's ``asyncio.run``.
    ``requests`` counts by kind: ``graph.http`` (every HTTP request sent, retries included),
    ``graph.batch`` (``$batch`` envelopes), ``graph.<kind>`` (logical calls, batched or not),
    ``graph.throttled``, ``graph.server_errors`` and ``graph.retries``.
    """

    BATCH_LIMIT = 20

    def __init__(self, settings: GraphSettings, *, retry: RetryPolicy | None = None, concurrency: int = 4) -> None:
        self.settings = settings
        self.retry = retry or RetryPolicy()
        self.requests: Counter[str] = Counter()
        self._concurrency = max(1, concurrency)
        self._slots: asyncio.Semaphore | None = None
        self._http: httpx.AsyncClient | None = None
        self._credential: RenewableCredential | None = None
        self._adapter: Any = None
        self._sdk: Any = None

    # --- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> GraphClient:
        self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _ssl(self) -> ssl.SSLContext | bool:
        verify = self.settings.verify
        if isinstance(verify, str):
            try:
                return ssl.create_default_context(cafile=verify)
            except (OSError, ssl.SSLError) as exc:
                raise SettingsError(
                    f"connection {self.settings.conn_id!r}: extra.verify {verify!r} is not a readable CA bundle: {exc}"
                ) from exc
        return verify

    def open(self) -> None:
        """Build the SDK stack (no request is sent until the first call)."""
        from azure.identity.aio import ClientSecretCredential
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph import GraphRequestAdapter
        from msgraph.graph_request_adapter import options as graph_default_options
        from msgraph_core import GraphClientFactory

        settings = self.settings
        verify = self._ssl()
        credential_kwargs: dict[str, Any] = {"authority": settings.authority}
        if isinstance(settings.verify, str) or settings.verify is False:
            credential_kwargs["connection_verify"] = settings.verify

        def new_credential() -> Any:
            return ClientSecretCredential(
                settings.tenant_id, settings.client_id, settings.client_secret, **credential_kwargs
            )

        self._credential = RenewableCredential(new_credential)
        transport = CountingTransport(
            httpx.AsyncHTTPTransport(
                verify=verify,
                http2=True,
                limits=httpx.Limits(
                    max_connections=self._concurrency + 2, max_keepalive_connections=self._concurrency + 2
                ),
            ),
            self.requests,
        )
        http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(120.0, connect=15.0))
        options = dict(graph_default_options)
        options[RetryHandlerOption.get_key()] = RetryHandlerOption(delay=0.0, max_retries=self.retry.sdk_retries)
        self._http = GraphClientFactory.create_with_default_middleware(client=http, options=options)
        auth = AzureIdentityAuthenticationProvider(
            self._credential,
            scopes=list(settings.scopes),
            allowed_hosts=[settings.host, *settings.allowed_hosts],
        )
        self._adapter = GraphRequestAdapter(auth, self._http)
        self._adapter.base_url = settings.base_url
        self._slots = asyncio.Semaphore(self._concurrency)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._credential is not None:
            await self._credential.close()
            self._credential = None

    @property
    def sdk(self) -> Any:
        """A ``GraphServiceClient`` on the same adapter, for the few typed calls."""
        if self._adapter is None:
            raise RuntimeError("GraphClient is not open: use it as 'async with GraphClient(settings)'")
        if self._sdk is None:
            from msgraph import GraphServiceClient

            self._sdk = GraphServiceClient(request_adapter=self._adapter)
        return self._sdk

    # --- URLs -------------------------------------------------------------------------------

    def absolute(self, url: str) -> str:
        """``/users?...`` → ``{base_url}/users?...``; absolute links (nextLink) stay verbatim."""
        return url if "://" in url else f"{self.settings.base_url}{url}"

    def relative(self, url: str) -> str | None:
        """The form ``$batch`` items take (relative to the version root), or None for a link
        on another host or version, which then goes as a request of its own."""
        if "://" not in url:
            return url
        base = self.settings.base_url
        if url.startswith(base + "/") or url.startswith(base + "?"):
            return url[len(base) :]
        return None

    # --- errors -----------------------------------------------------------------------------

    def auth_error(self, kind: str, url: str, reply: GraphReply) -> GraphAuthError:
        hint = (
            "the token was refused; check the tenant and the app registration"
            if reply.status == 401
            else "grant the app the Application permissions User.Read.All, GroupMember.Read.All and "
            "Application.Read.All (Application.ReadWrite.OwnedBy to import roles), with admin consent"
        )
        return GraphAuthError(
            f"Graph refused the {kind} request {describe_url(url)} for {self.settings.who()}: "
            f"{reply.describe()} ({hint})",
            status=reply.status,
            code=reply.error_code,
        )

    def request_error(self, kind: str, url: str, reply: GraphReply, note: str = "") -> GraphError:
        return GraphError(
            f"Graph {kind} request {describe_url(url)} failed: {reply.describe()}{note}",
            status=reply.status,
            code=reply.error_code,
        )

    # --- sending ----------------------------------------------------------------------------

    async def _send_once(self, method: str, url: str, body: bytes | None, headers: Mapping[str, str] | None) -> Any:
        from azure.core.exceptions import ClientAuthenticationError
        from kiota_abstractions.method import Method
        from kiota_abstractions.native_response_handler import NativeResponseHandler
        from kiota_abstractions.request_information import RequestInformation
        from kiota_http.middleware.options import ResponseHandlerOption

        if self._adapter is None or self._slots is None:
            raise RuntimeError("GraphClient is not open: use it as 'async with GraphClient(settings)'")
        info = RequestInformation(Method[method.upper()])
        info.url = url
        info.headers.try_add("Accept", "application/json")
        for name, value in (headers or {}).items():
            info.headers.try_add(name, value)
        if body is not None:
            info.set_stream_content(body, "application/json")
        info.add_request_options([ResponseHandlerOption(NativeResponseHandler())])
        async with self._slots:
            try:
                return await self._adapter.send_primitive_async(info, "bytes", {})
            except ClientAuthenticationError as exc:
                raise GraphAuthError(token_error_message(self.settings, exc)) from None

    async def request(
        self,
        method: str,
        url: str,
        *,
        kind: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        count: bool = True,
    ) -> GraphReply:
        """One request with every retry this module owns.

        Returns the reply for any status the caller must judge (2xx, 404, 410, ...); raises
        ``GraphAuthError`` on 401/403 (after one token renewal) and ``GraphError`` once the
        retries of a throttled or failing request are used up.
        """
        from azure.core.exceptions import ServiceRequestError

        target = self.absolute(url)
        renewed = False
        attempt = 0
        if count:
            self.requests[f"graph.{kind}"] += 1
        while True:
            attempt += 1
            try:
                response = await self._send_once(method, target, body, headers)
            except (httpx.TransportError, ServiceRequestError) as exc:
                if attempt >= self.retry.max_attempts:
                    raise GraphError(unreachable_message(self.settings, kind, target, attempt, exc)) from exc
                self.requests["graph.retries"] += 1
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            reply = GraphReply.from_response(response)
            if reply.status == 401 and not renewed and self._credential is not None:
                renewed = True
                await self._credential.renew()
                self.requests["graph.retries"] += 1
                continue
            if reply.status in (401, 403):
                raise self.auth_error(kind, target, reply)
            if reply.status in RETRYABLE_STATUSES:
                if attempt >= self.retry.max_attempts:
                    raise self.request_error(kind, target, reply, f" (gave up after {attempt} attempts)")
                self.requests["graph.retries"] += 1
                await asyncio.sleep(self.retry.delay(attempt, reply.headers.get("retry-after")))
                continue
            return reply

    async def get_json(self, url: str, *, kind: str) -> dict[str, Any]:
        """GET that must succeed with a JSON object."""
        reply = await self.request("GET", url, kind=kind)
        if not reply.ok or not isinstance(reply.body, dict):
            raise self.request_error(kind, self.absolute(url), reply)
        return reply.body

    async def batch(self, calls: Sequence[BatchItem]) -> list[GraphReply]:
        """Up to 20 requests in one ``$batch`` envelope; one reply per item, in order.

        Items are answered independently: a throttled item comes back as its own 429 (the
        SDK does not retry it); the caller decides. An item the envelope left unanswered gets
        status ``MISSING_REPLY``.
        """
        if not calls:
            return []
        if len(calls) > self.BATCH_LIMIT:
            raise ValueError(f"a $batch holds at most {self.BATCH_LIMIT} requests, got {len(calls)}")
        items = []
        for index, call in enumerate(calls):
            relative = self.relative(call.url)
            if relative is None:
                raise ValueError(f"{call.url!r} cannot go in a $batch (another host or version)")
            item: dict[str, Any] = {"id": str(index), "method": call.method, "url": relative}
            headers = dict(call.headers or {})
            if call.body is not None:
                item["body"] = call.body
                headers.setdefault("Content-Type", "application/json")
            if headers:
                item["headers"] = headers
            items.append(item)
            self.requests[f"graph.{call.kind}"] += 1
        self.requests["graph.batch"] += 1
        reply = await self.request("POST", "/$batch", kind="batch", body=orjson.dumps({"requests": items}), count=False)
        responses = reply.body.get("responses") if isinstance(reply.body, dict) else None
        if not reply.ok or not isinstance(responses, list):
            raise self.request_error("batch", self.absolute("/$batch"), reply)
        by_id = {str(r.get("id")): r for r in responses if isinstance(r, dict)}
        missing = GraphReply(MISSING_REPLY, httpx.Headers(), None, "the $batch envelope did not answer this item")
        replies = []
        for index in range(len(calls)):
            item_reply = by_id.get(str(index))
            replies.append(GraphReply.from_batch_item(item_reply) if item_reply is not None else missing)
            if replies[-1].status == 429:
                self.requests["graph.throttled"] += 1
            elif replies[-1].status >= 500:
                self.requests["graph.server_errors"] += 1
        return replies

    async def typed(self, kind: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run a typed msgraph-sdk call, turning its exceptions into this module's errors."""
        from kiota_abstractions.api_error import APIError

        self.requests[f"graph.{kind}"] += 1
        try:
            return await call()
        except APIError as exc:
            status = exc.response_status_code
            error = getattr(exc, "error", None)
            code = getattr(error, "code", None)
            message = getattr(error, "message", None) or str(exc)
            text = f"Graph {kind} request failed: {status} {code + ': ' if code else ''}{message}"
            if status in (401, 403):
                raise GraphAuthError(f"{text} ({self.settings.who()})", status=status, code=code) from None
            raise GraphError(text, status=status, code=code) from None


@dataclass(eq=False)
class BatchItem:
    """A request that may travel inside a ``$batch``: relative URL (or absolute link), kind, body."""

    url: str
    kind: str
    method: str = "GET"
    body: Any = None
    headers: Mapping[str, str] | None = None
