"""The Entra user attributes a mapping may read, and where Microsoft Graph keeps each one.

Entra's provisioning lists three kinds of user source attribute, and so does the mapping table:

- Graph ``user`` properties by their own names (``givenName``, ``employeeId``...).
- ``extensionAttribute1`` to ``extensionAttribute15``, the Exchange custom attributes. Entra's
  attribute-mapping source list and its expression reference use these names (its
  FormatDateTime example reads ``[extensionAttribute1]``:
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/functions-for-customizing-application-data).
  Graph has no such properties: they are the fields of the complex property
  ``onPremisesExtensionAttributes`` (https://learn.microsoft.com/en-us/graph/api/resources/onpremisesextensionattributes),
  which ``$select`` names as a whole and Graph returns as an object holding all fifteen, unset
  ones null (https://learn.microsoft.com/en-us/graph/extensibility-overview, "Extension
  attributes"). So an extract selects ``onPremisesExtensionAttributes`` once, whichever of the
  fifteen the table reads, and each becomes its own USERS column.
- Directory extensions, ``extension_{appId without dashes}_{name}``, registered by an application
  (https://learn.microsoft.com/en-us/graph/api/resources/extensionproperty; Entra maps them under
  that name: https://learn.microsoft.com/en-us/graph/synchronization-configure-with-directory-extension-attributes,
  https://learn.microsoft.com/en-us/entra/identity/app-provisioning/user-provisioning-sync-attributes-for-mapping).
  Graph v1.0 returns one only when ``$select`` names it, and leaves it out of a user that has no
  value (setting it to null deletes it). Its value is a String, Integer, LargeInteger, Boolean,
  DateTime (ISO 8601 text), Binary (base64 text) or, when multi-valued, a list of them. A tenant
  may hold many, so only those the table reads are selected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

GRAPH_USER_ATTRIBUTES = frozenset(
    (
        "aboutMe",
        "accountEnabled",
        "ageGroup",
        "assignedLicenses",
        "assignedPlans",
        "authorizationInfo",
        "birthday",
        "businessPhones",
        "city",
        "companyName",
        "consentProvidedForMinor",
        "country",
        "createdDateTime",
        "creationType",
        "customSecurityAttributes",
        "deletedDateTime",
        "department",
        "displayName",
        "employeeHireDate",
        "employeeId",
        "employeeLeaveDateTime",
        "employeeOrgData",
        "employeeType",
        "externalUserState",
        "externalUserStateChangeDateTime",
        "faxNumber",
        "givenName",
        "hireDate",
        "id",
        "identities",
        "imAddresses",
        "interests",
        "isManagementRestricted",
        "isResourceAccount",
        "jobTitle",
        "lastPasswordChangeDateTime",
        "legalAgeGroupClassification",
        "licenseAssignmentStates",
        "mail",
        "mailNickname",
        "mailboxSettings",
        "mobilePhone",
        "mySite",
        "officeLocation",
        "onPremisesDistinguishedName",
        "onPremisesDomainName",
        "onPremisesExtensionAttributes",
        "onPremisesImmutableId",
        "onPremisesLastSyncDateTime",
        "onPremisesProvisioningErrors",
        "onPremisesSamAccountName",
        "onPremisesSecurityIdentifier",
        "onPremisesSyncEnabled",
        "onPremisesUserPrincipalName",
        "otherMails",
        "passwordPolicies",
        "passwordProfile",
        "pastProjects",
        "postalCode",
        "preferredDataLocation",
        "preferredLanguage",
        "preferredName",
        "provisionedPlans",
        "proxyAddresses",
        "responsibilities",
        "schools",
        "securityIdentifier",
        "serviceProvisioningErrors",
        "showInAddressList",
        "signInSessionsValidFromDateTime",
        "skills",
        "state",
        "streetAddress",
        "surname",
        "usageLocation",
        "userPrincipalName",
        "userType",
    )
)
"""Microsoft Graph v1.0 ``user`` properties that ``$select`` accepts (a typo here would make
every extract fail with 400, so the table is checked against this list when it loads)."""


EXTENSION_ATTRIBUTES_PROPERTY = "onPremisesExtensionAttributes"
"""The Graph user property that holds ``extensionAttribute1`` to ``extensionAttribute15``."""
EXTENSION_ATTRIBUTES = tuple(f"extensionAttribute{number}" for number in range(1, 16))
"""Entra's names for the fifteen fields of ``onPremisesExtensionAttributes``, in order."""
_EXTENSION_ATTRIBUTE_NAMES = frozenset(EXTENSION_ATTRIBUTES)
_EXTENSION_ATTRIBUTE_LIKE = re.compile(r"^extensionattribute\d*$", re.IGNORECASE)

DIRECTORY_EXTENSION = re.compile(r"^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$")
"""``extension_`` + the owner application's appId without dashes (32 hex digits) + ``_`` + name."""
DIRECTORY_EXTENSION_SHAPE = "extension_<appId: 32 hex digits, no dashes>_<name>"


def is_extension_attribute(name: str) -> bool:
    """``extensionAttribute1`` … ``extensionAttribute15`` (exact case, as Entra lists them)."""
    return name in _EXTENSION_ATTRIBUTE_NAMES


def is_directory_extension(name: str) -> bool:
    return DIRECTORY_EXTENSION.match(name) is not None


def is_custom_data_name(name: str) -> bool:
    """Shaped like an extension attribute or a directory extension, valid or not (any case)."""
    return _EXTENSION_ATTRIBUTE_LIKE.match(name) is not None or name.lower().startswith("extension_")


def graph_attribute_problem(name: str) -> str | None:
    """None when Graph can supply the source attribute ``name``, else why not (for a load error).

    Names shaped like an extension attribute or a directory extension but not valid get a reason
    saying which names are: ``extensionAttribute16`` is not one of Entra's fifteen, and
    ``extension_abc_name`` has no 32-digit appId. Other unknown names return the generic reason
    (the caller adds a spelling suggestion)."""
    if name in GRAPH_USER_ATTRIBUTES or is_extension_attribute(name) or is_directory_extension(name):
        return None
    if not is_custom_data_name(name):
        return f"unknown source attribute [{name}]: not a Microsoft Graph user property"
    if _EXTENSION_ATTRIBUTE_LIKE.match(name):
        return (
            f"unknown source attribute [{name}]: the extension attributes are extensionAttribute1 to "
            "extensionAttribute15 (Graph's onPremisesExtensionAttributes)"
        )
    return f"unknown source attribute [{name}]: a directory extension is named {DIRECTORY_EXTENSION_SHAPE}"


def select_properties(attributes: Iterable[str]) -> list[str]:
    """The Graph user properties ``$select`` must name to supply ``attributes`` (source attribute
    names), in first-use order: each extension attribute is read through
    ``onPremisesExtensionAttributes``; every other name is its own property."""
    properties: dict[str, None] = {}
    for name in attributes:
        properties[EXTENSION_ATTRIBUTES_PROPERTY if is_extension_attribute(name) else name] = None
    return list(properties)


def extension_attribute_values(containers: Iterable[Mapping[str, Any] | None], name: str) -> list[Any]:
    """``name``'s value in each ``onPremisesExtensionAttributes`` object (None when the object or
    the field is absent or null, as for any other attribute)."""
    return [container.get(name) if isinstance(container, Mapping) else None for container in containers]
