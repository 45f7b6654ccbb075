"""What it takes to reach one Salesforce org (``SalesforceSettings``), read from an Airflow
``salesforce`` connection, and the login method those settings select.

Apart from ``client`` so that building an ``Engine`` (every task process) and the Airflow hooks
read the settings without importing simple-salesforce, requests and PyJWT: only the stages that
talk to Salesforce import ``client``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from include.provisioning.settings import (
    SALESFORCE_CONN_ID,
    SECONDS,
    ConnectionSettings,
    SettingsError,
    connection_from_env,
    parse_number,
    parse_verify,
)

DEFAULT_API_VERSION = "62.0"
SOAP_LOGIN_LAST_VERSION = 64
"""SOAP ``login()`` is unavailable from API v65.0 (Salesforce release notes, Summer '25 on)."""
DEFAULT_TIMEOUT_SECONDS = 300.0
CLIENT_CREDENTIALS = "OAuth client credentials"
JWT_BEARER = "OAuth JWT bearer"
SOAP_LOGIN = "SOAP login()"


@dataclass(frozen=True)
class SalesforceSettings:
    """What it takes to reach one org. Secrets are kept out of ``repr`` (logs, tracebacks)."""

    conn_id: str = SALESFORCE_CONN_ID
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    domain: str = "login"
    instance_url: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)
    private_key_file_path: str | None = None
    version: str = DEFAULT_API_VERSION
    verify: str | bool | None = None
    """CA bundle path, True/False; None: ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` if set, else
    requests' own bundle (read explicitly, because ``trust_env`` is off)."""
    timeout: float = DEFAULT_TIMEOUT_SECONDS

    @classmethod
    def from_connection(cls, conn: ConnectionSettings) -> SalesforceSettings:
        """Read the Airflow Salesforce provider's fields: login, password and the extras
        ``security_token``, ``domain``, ``instance_url``, ``consumer_key``, ``consumer_secret``,
        ``private_key`` / ``private_key_file_path``, ``version``, plus ``verify`` and ``timeout``.
        Extras may also carry the provider's old ``extra__salesforce__`` prefix."""
        extra = conn.extra or {}

        def get(name: str) -> Any:
            value = extra.get(name)
            if value in (None, ""):
                value = extra.get(f"extra__salesforce__{name}")
            return None if value in (None, "") else value

        instance_url = get("instance_url") or (_as_url(conn.host) if conn.host else None)
        domain = get("domain") or _domain_from_instance(instance_url) or "login"
        version = str(get("version") or DEFAULT_API_VERSION).removeprefix("v")
        timeout_raw = get("timeout")
        timeout = (
            parse_number(timeout_raw, f"connection {conn.conn_id!r}: extra.timeout", SECONDS)
            if timeout_raw is not None
            else DEFAULT_TIMEOUT_SECONDS
        )
        settings = cls(
            conn_id=conn.conn_id,
            username=conn.login or None,
            password=conn.password or None,
            security_token=get("security_token"),
            domain=str(domain),
            instance_url=instance_url,
            consumer_key=get("consumer_key"),
            consumer_secret=get("consumer_secret"),
            private_key=get("private_key"),
            private_key_file_path=get("private_key_file_path"),
            version=version,
            verify=parse_verify(get("verify"), "extra.verify"),
            timeout=timeout,
        )
        settings.auth_method()  # fail now, with the connection's name, when nothing fits
        return settings

    def auth_method(self) -> str:
        """The login method these settings select (the first that has all its fields)."""
        if self.consumer_key and self.consumer_secret:
            return CLIENT_CREDENTIALS
        if self.consumer_key and self.username and (self.private_key or self.private_key_file_path):
            return JWT_BEARER
        if self.username and self.password:
            return SOAP_LOGIN
        raise SettingsError(
            f"connection {self.conn_id!r} has no complete Salesforce login: give extra.consumer_key + "
            "extra.consumer_secret (client credentials), or extra.consumer_key + login + extra.private_key or "
            "extra.private_key_file_path (JWT bearer), or login + password + extra.security_token (SOAP login)"
        )

    @property
    def login_url(self) -> str:
        return f"https://{self.domain}.salesforce.com"

    def resolved_verify(self) -> str | bool:
        if self.verify is not None:
            return self.verify
        return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


def _as_url(host: str) -> str:
    return host if "://" in host else f"https://{host}"


def _domain_from_instance(instance_url: str | None) -> str | None:
    """``https://acme.my.salesforce.com`` → ``acme.my`` (the My Domain login host that client
    credentials need); anything else gives no hint."""
    if not instance_url:
        return None
    host = urlsplit(instance_url).hostname or ""
    return host.removesuffix(".salesforce.com") if host.endswith(".my.salesforce.com") else None


def settings_from_env(environ: Mapping[str, str] | None = None) -> SalesforceSettings:
    """``SalesforceSettings`` from ``AIRFLOW_CONN_SALESFORCE_DEFAULT`` (CLI and tests)."""
    return SalesforceSettings.from_connection(connection_from_env(SALESFORCE_CONN_ID, environ))
