"""Access tokens issued by the emulated Entra token endpoint and checked by the Graph API.

Tokens look like Entra's (three base64url JWT segments with the usual claims) so that code
which peeks at them keeps working, but they are validated by lookup, not by signature: the
sandbox only needs to know who holds a token, whether it has expired (by its lifetime, or
because a test called ``POST /_sandbox/tokens/expire``) or been revoked (``/revoke``, which
CAE-capable clients answer by fetching a new token after Graph's claims challenge).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson

DEFAULT_LIFETIME_SECONDS = 3599
# Graph's own application id: the `aud`/`client_id` in Graph's WWW-Authenticate challenges.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


@dataclass
class IssuedToken:
    client_id: str
    tenant_id: str
    expires_at: float
    cae_capable: bool
    revoked: bool = False


class TokenVerdict:
    """Why a bearer token was refused (or ``OK``)."""

    OK = "ok"
    EMPTY = "empty"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    REVOKED = "revoked"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


class TokenStore:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._tokens: dict[str, IssuedToken] = {}
        self._lock = threading.Lock()

    def issue(
        self,
        *,
        client_id: str,
        tenant_id: str,
        audience: str,
        object_id: str,
        lifetime: int,
        cae_capable: bool,
        issuer_base: str,
    ) -> str:
        now = self.clock()
        claims = {
            "aud": audience,
            "iss": f"{issuer_base}/{tenant_id}/",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + lifetime),
            "aio": secrets.token_urlsafe(16),
            "app_displayname": "sandbox",
            "appid": client_id,
            "appidacr": "1",
            "idp": f"{issuer_base}/{tenant_id}/",
            "idtyp": "app",
            "oid": object_id,
            "sub": object_id,
            "tid": tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        if cae_capable:
            claims["xms_cc"] = ["CP1"]
        header = {"typ": "JWT", "alg": "RS256", "kid": "sandbox", "x5t": "sandbox"}
        token = ".".join((_b64(orjson.dumps(header)), _b64(orjson.dumps(claims)), _b64(secrets.token_bytes(64))))
        with self._lock:
            self._prune(now)
            self._tokens[token] = IssuedToken(client_id, tenant_id, now + lifetime, cae_capable)
        return token

    def _prune(self, now: float) -> None:
        if len(self._tokens) > 10_000:
            for key in [k for k, v in self._tokens.items() if v.expires_at < now - 3600]:
                del self._tokens[key]

    def check(self, authorization: str | None) -> tuple[str, IssuedToken | None]:
        if not authorization:
            return TokenVerdict.EMPTY, None
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return TokenVerdict.EMPTY, None
        if token.count(".") != 2:
            return TokenVerdict.MALFORMED, None
        with self._lock:
            issued = self._tokens.get(token)
        if issued is None:
            return TokenVerdict.UNKNOWN, None
        if issued.revoked:
            return TokenVerdict.REVOKED, issued
        if issued.expires_at <= self.clock():
            return TokenVerdict.EXPIRED, issued
        return TokenVerdict.OK, issued

    def expire_all(self) -> int:
        now = self.clock()
        with self._lock:
            live = [t for t in self._tokens.values() if t.expires_at > now]
            for issued in live:
                issued.expires_at = now - 1
        return len(live)

    def revoke_all(self) -> int:
        with self._lock:
            live = [t for t in self._tokens.values() if not t.revoked]
            for issued in live:
                issued.revoked = True
        return len(live)


def new_trace_id() -> str:
    return str(uuid.uuid4())
