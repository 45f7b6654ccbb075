"""The Entra ID v2.0 endpoints a confidential client needs: token, OIDC discovery, instance discovery.

azure-identity's async ``ClientSecretCredential`` posts straight to
``{authority}/{tenant}/oauth2/v2.0/token``; the sync one goes through MSAL, which first reads
``{authority}/{tenant}/v2.0/.well-known/openid-configuration`` (and, unless
``disable_instance_discovery=True``, ``/common/discovery/instance``). All three are served
so either path works against the sandbox.
"""

from __future__ import annotations

import contextlib
from typing import Any
from urllib.parse import urlsplit

import orjson

from include.sandbox.graph import exceptions as errors
from include.sandbox.graph.models import Tenant
from include.sandbox.graph.tokens import DEFAULT_LIFETIME_SECONDS, TokenStore

GENERIC_TENANTS = ("common", "organizations", "consumers")
CLAIMS_SUPPORTED = [
    "sub",
    "iss",
    "cloud_instance_name",
    "cloud_instance_host_name",
    "cloud_graph_host_name",
    "msgraph_host",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "acr",
    "nonce",
    "preferred_username",
    "name",
    "tid",
    "ver",
    "at_hash",
    "c_hash",
    "email",
]


def _wants_cae(claims: str | None) -> bool:
    """azure-identity sends ``{"access_token": {"xms_cc": {"values": ["CP1"]}}}`` when CAE is on."""
    if not claims:
        return False
    with contextlib.suppress(orjson.JSONDecodeError, AttributeError, TypeError):
        values = orjson.loads(claims).get("access_token", {}).get("xms_cc", {}).get("values", [])
        return "CP1" in values
    return False


def issue_token(
    tenant: Tenant, tokens: TokenStore, tenant_segment: str, form: dict[str, str], issuer_base: str
) -> dict[str, Any]:
    """The client-credentials grant; raises ``EntraError`` exactly where Entra refuses."""
    if tenant_segment.lower() != tenant.tenant_id.lower():
        raise errors.unknown_tenant(tenant_segment)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise errors.missing_parameter("grant_type")
    if grant_type != "client_credentials":
        raise errors.unsupported_grant_type(grant_type)
    client_id = form.get("client_id")
    if not client_id:
        raise errors.missing_parameter("client_id")
    scope = form.get("scope")
    if not scope:
        raise errors.missing_parameter("scope")
    if client_id not in tenant.clients:
        raise errors.unknown_application(client_id, tenant_segment)
    secret = form.get("client_secret")
    if not secret:
        raise errors.missing_client_credential()
    if secret != tenant.clients[client_id]:
        raise errors.invalid_client_secret(client_id)
    scopes = scope.split()
    # Client credentials need exactly one resource's "/.default" scope.
    if len(scopes) != 1 or not scopes[0].endswith("/.default") or scopes[0] == "/.default":
        raise errors.invalid_scope(scope)
    lifetime = int(tenant.extensions.get("token_lifetime_seconds", DEFAULT_LIFETIME_SECONDS))
    token = tokens.issue(
        client_id=client_id,
        tenant_id=tenant.tenant_id,
        audience=scopes[0].removesuffix("/.default"),
        object_id=tenant.sp["id"],
        lifetime=lifetime,
        cae_capable=_wants_cae(form.get("claims")),
        issuer_base=issuer_base,
    )
    return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}


def openid_configuration(tenant: Tenant, tenant_segment: str, base_url: str) -> dict[str, Any]:
    if tenant_segment.lower() in GENERIC_TENANTS:
        issuer_tenant = "{tenantid}"
    elif tenant_segment.lower() == tenant.tenant_id.lower():
        issuer_tenant = tenant.tenant_id
    else:
        err = errors.unknown_tenant(tenant_segment)
        raise errors.EntraError(400, "invalid_tenant", err.aadsts, err.description)
    root = f"{base_url}/{tenant_segment}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base_url}/{issuer_tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base_url}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": CLAIMS_SUPPORTED,
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }


def instance_discovery(authorization_endpoint: str | None, base_url: str) -> dict[str, Any]:
    """MSAL's instance discovery answer, pointing tenant discovery back at the sandbox."""
    tenant = "common"
    if authorization_endpoint:
        parts = [p for p in urlsplit(authorization_endpoint).path.split("/") if p]
        if parts:
            tenant = parts[0]
    host = urlsplit(base_url).netloc
    return {
        "tenant_discovery_endpoint": f"{base_url}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }
