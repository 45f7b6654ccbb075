"""Static facts about Graph v1.0 resource types that the emulator needs.

The property lists let ``$select`` reject names Graph does not know (as Graph does) while
every property that appears on a fixture record is accepted as well.
"""

from __future__ import annotations

from typing import Any

DEFAULT_APP_ROLE_ID = "00000000-0000-0000-0000-000000000000"

# GET /users without $select returns exactly these (user resource docs, "default properties").
USER_DEFAULT_PROPERTIES = [
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
]

# Collection-valued user properties come back as [] rather than null when empty.
USER_COLLECTION_PROPERTIES = [
    "businessPhones",
    "otherMails",
    "proxyAddresses",
    "imAddresses",
    "identities",
    "assignedLicenses",
    "assignedPlans",
    "provisionedPlans",
    "licenseAssignmentStates",
    "onPremisesProvisioningErrors",
    "serviceProvisioningErrors",
    "interests",
    "pastProjects",
    "responsibilities",
    "schools",
    "skills",
]
USER_PROPERTY_DEFAULTS: dict[str, Any] = dict.fromkeys(USER_COLLECTION_PROPERTIES, ())

USER_PROPERTIES = [
    *USER_DEFAULT_PROPERTIES,
    *USER_COLLECTION_PROPERTIES,
    "aboutMe",
    "accountEnabled",
    "ageGroup",
    "authorizationInfo",
    "birthday",
    "city",
    "companyName",
    "consentProvidedForMinor",
    "country",
    "createdDateTime",
    "creationType",
    "customSecurityAttributes",
    "deletedDateTime",
    "department",
    "employeeHireDate",
    "employeeId",
    "employeeLeaveDateTime",
    "employeeOrgData",
    "employeeType",
    "externalUserState",
    "externalUserStateChangeDateTime",
    "faxNumber",
    "hireDate",
    "isManagementRestricted",
    "isResourceAccount",
    "lastPasswordChangeDateTime",
    "legalAgeGroupClassification",
    "mailboxSettings",
    "mailNickname",
    "mySite",
    "onPremisesDistinguishedName",
    "onPremisesDomainName",
    "onPremisesExtensionAttributes",
    "onPremisesImmutableId",
    "onPremisesLastSyncDateTime",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName",
    "passwordPolicies",
    "passwordProfile",
    "postalCode",
    "preferredDataLocation",
    "preferredName",
    "printerProperties",
    "securityIdentifier",
    "showInAddressList",
    "signInActivity",
    "signInSessionsValidFromDateTime",
    "state",
    "streetAddress",
    "usageLocation",
    "userType",
    "manager",
    "memberOf",
    "transitiveMemberOf",
    "appRoleAssignments",
]

GROUP_PROPERTIES = [
    "id",
    "displayName",
    "description",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "groupTypes",
    "createdDateTime",
    "deletedDateTime",
    "visibility",
    "onPremisesSyncEnabled",
    "securityIdentifier",
]

APP_ROLE_ASSIGNMENT_PROPERTIES = [
    "id",
    "deletedDateTime",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
]

SERVICE_PRINCIPAL_DEFAULTS: dict[str, Any] = {
    "deletedDateTime": None,
    "accountEnabled": True,
    "appRoleAssignmentRequired": True,
    "servicePrincipalType": "Application",
    "signInAudience": "AzureADMyOrg",
    "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
    "servicePrincipalNames": [],
    "oauth2PermissionScopes": [],
}

APPLICATION_DEFAULTS: dict[str, Any] = {
    "deletedDateTime": None,
    "signInAudience": "AzureADMyOrg",
    "identifierUris": [],
    "tags": [],
}
