"""The Graph side of the engine: the client, the extraction of assigned users, app roles.

The cycle calls, inside one ``asyncio.run``::

    async with GraphClient(GraphSettings.from_env()) as client:
        roles = await read_app_roles(client, sp_id)
        extraction = await extract(client, service_principal_id=sp_id, select=[...], mode=Mode.AUTO,
                                   delta_link=saved, known=snapshot_roles)
"""

from typing import TYPE_CHECKING

from include.provisioning.lazy_modules import exported_from

if TYPE_CHECKING:
    from include.provisioning.graph.client import GraphAuthError, GraphClient, GraphError, RetryPolicy
    from include.provisioning.graph.extract import DeltaTokenExpired, Extraction
    from include.provisioning.graph.roles import RoleSyncResult, read_app_roles, sync_app_roles_from_profiles
    from include.provisioning.graph.settings import GraphSettings

# Imported on first use, not with the package: the engine and the Airflow hooks import
# ``graph.settings`` (and the mapping ``graph.user_attributes``) in every task process, and only the
# stages that talk to Graph need httpx and the client stack. ``extract`` the function is not among
# them: once the submodule ``graph.extract`` is imported, the package's ``extract`` is that module.
__getattr__ = exported_from(
    __name__,
    {
        "GraphAuthError": "client",
        "GraphClient": "client",
        "GraphError": "client",
        "RetryPolicy": "client",
        "GraphSettings": "settings",
        "DeltaTokenExpired": "extract",
        "Extraction": "extract",
        "RoleSyncResult": "roles",
        "read_app_roles": "roles",
        "sync_app_roles_from_profiles": "roles",
    },
)

__all__ = [
    "DeltaTokenExpired",
    "Extraction",
    "GraphAuthError",
    "GraphClient",
    "GraphError",
    "GraphSettings",
    "RetryPolicy",
    "RoleSyncResult",
    "read_app_roles",
    "sync_app_roles_from_profiles",
]
