"""The emulated org: its users, profiles, licences and credentials, and the User rules.

``Org`` is what every front end (REST, Bulk 2.0, the control API) shares. Writes go
through ``insert_user`` / ``update_user`` / ``upsert_user``, which apply, per record and
in Salesforce's order, the field rules of ``validation.UserSchema`` and the org rules
kept here: references must exist, usernames are unique in this org (case-insensitively)
and in every other org (``usernames_taken_elsewhere``), nicknames and federation ids are
unique, and active users consume a licence of their profile's licence type.

Scale: users are stored as one list per user (a slot per field, see
``validation.FIELD_INDEX``), with indexes for username, nickname and federation id and a
per-licence count of active users maintained incrementally, so each write is O(1) and a
100,000-row Bulk insert or a 1,000,000-user fixture stays fast.

Callers that write many records hold ``org.lock`` around the batch; each method also
takes it (it is re-entrant), so single calls are safe on their own.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from include.provisioning.gc_pause import collector_paused
from include.sandbox.salesforce.exceptions import RecordError, SoqlError, UnknownFieldError
from include.sandbox.salesforce.picklists import PICKLIST_VALUES
from include.sandbox.salesforce.validation import (
    COMPUTED_FIELDS,
    FIELD_INDEX,
    KEY_PREFIXES,
    REQUIRED_ON_CREATE,
    USER_FIELDS,
    UserSchema,
    make_id,
    missing_required,
    to_id18,
)

__all__ = ["Org", "RecordError", "SoqlError", "UnknownFieldError"]

I = FIELD_INDEX  # noqa: E741  (short alias: rows are indexed on every write)
N_FIELDS = len(USER_FIELDS)
# the slots every insert writes, looked up once (a Bulk insert writes tens of thousands of rows)
_ID, _NAME, _FIRST_NAME, _LAST_NAME, _USER_TYPE = I["Id"], I["Name"], I["FirstName"], I["LastName"], I["UserType"]
_CREATED_DATE, _LAST_MODIFIED_DATE, _SYSTEM_MODSTAMP = I["CreatedDate"], I["LastModifiedDate"], I["SystemModstamp"]
_CREATED_BY_ID, _LAST_MODIFIED_BY_ID = I["CreatedById"], I["LastModifiedById"]
SCHEMA = UserSchema()

DUPLICATE_USERNAME_MESSAGE = (
    "Duplicate Username.<br>The username already exists in this or another Salesforce organization. "
    "Usernames must be unique across all Salesforce organizations. To resolve, use a different username "
    "(it doesn't need to match the user's email address). "
)
DUPLICATE_NICKNAME_MESSAGE = (
    "Duplicate Nickname.<br>Another user has already selected this nickname.<br>Please select another."
)
UPSERT_KEYS = ("Id", "Username", "CommunityNickname", "FederationIdentifier")
"""Fields an upsert may match on: ``Id`` and the unique idLookup fields of User."""

FIXTURE_KEYS = (
    "organization_id",
    "api_version",
    "user_licenses",
    "profiles",
    "users",
    "usernames_taken_elsewhere",
    "logins",
    "connected_apps",
)
DUMP_ALWAYS = (
    "Id",
    "Username",
    "Email",
    "LastName",
    "FirstName",
    "Alias",
    "CommunityNickname",
    "ProfileId",
    "IsActive",
    "FederationIdentifier",
    "TimeZoneSidKey",
    "LocaleSidKey",
    "EmailEncodingKey",
    "LanguageLocaleKey",
)
"""User fields written by ``dump`` even when null (the fixture format's example record)."""


_second_cache: list[Any] = [None, ""]
_MILLIS = [f"{milli:03d}+0000" for milli in range(1000)]
"""The end of a datetime text after its second, by millisecond."""


def sf_datetime(moment: datetime | None = None) -> str:
    """Salesforce's REST/Bulk datetime text, e.g. ``2024-01-02T21:33:43.000+0000``.

    The formatted second is cached and the milliseconds are looked up: a Bulk insert stamps
    thousands of rows per second.
    """
    if moment is not None:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    now = time.time()
    second = int(now)
    if _second_cache[0] != second:
        _second_cache[0] = second
        _second_cache[1] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    return _second_cache[1] + _MILLIS[int((now - second) * 1000)]


_USER_TYPES = {"Chatter Free": "CsnOnly", "Chatter External": "CspLitePortal"}


def license_user_type(license_name: str) -> str:
    """``User.UserType`` follows the profile's licence (User object reference, UserType)."""
    return _USER_TYPES.get(license_name, "Standard")


@dataclass
class UserLicense:
    id: str
    name: str
    total: int
    used: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {
            **self.extra,
            "Id": self.id,
            "Name": self.name,
            "TotalLicenses": self.total,
            "UsedLicenses": self.used,
            "MasterLabel": self.extra.get("MasterLabel", self.name),
            "LicenseDefinitionKey": self.extra.get("LicenseDefinitionKey", "SFDC"),
            "Status": self.extra.get("Status", "Active"),
        }


@dataclass
class Profile:
    id: str
    name: str
    license_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self, org: Org) -> dict[str, Any]:
        lic = org.licenses[self.license_id]
        return {
            **self.extra,
            "Id": self.id,
            "Name": self.name,
            "UserLicenseId": self.license_id,
            "UserType": license_user_type(lic.name),
            "Description": self.extra.get("Description"),
        }


def _fixture_error(message: str) -> ValueError:
    return ValueError(message)


def _require_id(value: Any, kind: str, where: str) -> str:
    canonical = to_id18(value) if isinstance(value, str) else None
    if canonical is None or not canonical.startswith(KEY_PREFIXES[kind]):
        raise _fixture_error(
            f"{where}: {value!r} is not a {kind} id (15/18 characters starting with {KEY_PREFIXES[kind]!r},"
            " with a correct case-safe suffix)"
        )
    return canonical


class Org:
    """One Salesforce org's state and the rules of writing User records."""

    def __init__(self, organization_id: str, api_version: str) -> None:
        self.lock = threading.RLock()
        self.organization_id = organization_id
        self.api_version = api_version
        self.licenses: dict[str, UserLicense] = {}
        self.profiles: dict[str, Profile] = {}
        self.permission_sets: dict[str, dict[str, Any]] = {}
        self.users: dict[str, list[Any]] = {}
        self.usernames_taken_elsewhere: set[str] = set()
        self._taken_elsewhere_raw: list[str] = []
        self.logins: list[dict[str, Any]] = []
        self.connected_apps: list[dict[str, Any]] = []
        self.extensions: dict[str, Any] = {}
        self._by_username: dict[str, str] = {}
        self._by_nickname: dict[str, str] = {}
        self._by_federation: dict[str, str] = {}
        self._next_number = 1

    # --- reading -----------------------------------------------------------------------

    def user_id_by_username(self, username: str) -> str | None:
        return self._by_username.get(username.lower())

    def get_user(self, user_id: str) -> dict[str, Any] | None:
        """All fields of one user as a flat record, or None."""
        canonical = to_id18(user_id)
        row = self.users.get(canonical) if canonical else None
        if row is None:
            return None
        return {f.name: row[i] for i, f in enumerate(USER_FIELDS)}

    def user_value(self, user_id: str, field_name: str) -> Any:
        row = self.users[user_id]
        return row[I[field_name]]

    def query(self, soql: str, *, include_deleted: bool = False) -> tuple[list[str], list[dict[str, Any]]]:
        """Run SOQL; returns the selected names in SELECT order and flat records.

        Relationship fields come back under their dotted name (``Profile.Name``), as Bulk
        query CSV headers name them. ``SELECT COUNT() ...`` returns ``(["COUNT()"],
        [{"COUNT()": n}])``. Users are never deleted, so ``include_deleted`` changes nothing.
        """
        from include.sandbox.salesforce.soql import run_query

        result = run_query(self, soql)
        if result.count_only:
            return ["COUNT()"], [{"COUNT()": result.total_size}]
        return result.fields, result.records

    def check_user_columns(self, columns: list[str], operation: str) -> None:
        """Refuse a Bulk upload whose header names unknown or unwritable fields.

        ``operation`` is insert, update or upsert. Raises ``UnknownFieldError`` (the job
        fails with ``InvalidBatch : Field name not found : Foo``) or ``RecordError``.
        """
        SCHEMA.check_columns(columns, creating=operation == "insert", allow_id=operation != "insert")

    # --- writing -----------------------------------------------------------------------

    def insert_user(self, fields: dict[str, Any], *, actor: str | None = None) -> str:
        """Create a user; returns its new 18-character Id or raises ``RecordError``."""
        return self.insert_converted(SCHEMA.convert(fields, creating=True), actor=actor)

    def insert_converted(self, values: dict[str, Any], *, actor: str | None = None) -> str:
        """``insert_user`` of a record ``UserSchema.convert`` (or ``convert_rows``) made; the
        record is this call's to keep."""
        with self.lock:
            if values.get("IsActive") is None:
                values["IsActive"] = True
            error = missing_required(values)
            if error:
                raise error
            self._check_references(values)
            username_key = values["Username"].lower()
            if username_key in self._by_username or username_key in self.usernames_taken_elsewhere:
                raise RecordError("DUPLICATE_USERNAME", DUPLICATE_USERNAME_MESSAGE, ["Username"])
            nickname = values.get("CommunityNickname")
            if nickname is None:
                nickname = values["CommunityNickname"] = self._generate_nickname(values["Username"])
            elif nickname.lower() in self._by_nickname:
                raise RecordError("DUPLICATE_COMM_NICKNAME", DUPLICATE_NICKNAME_MESSAGE, ["CommunityNickname"])
            federation = values.get("FederationIdentifier")
            if federation is not None and federation in self._by_federation:
                raise self._duplicate_federation(self._by_federation[federation])
            license_id = self.profiles[values["ProfileId"]].license_id
            if values["IsActive"]:
                self._take_license(license_id)
            user_id = self._new_user_id()
            now = sf_datetime()
            row: list[Any] = [None] * N_FIELDS
            for name, value in values.items():
                row[I[name]] = value
            row[_ID] = user_id
            row[_CREATED_DATE] = row[_LAST_MODIFIED_DATE] = row[_SYSTEM_MODSTAMP] = now
            row[_CREATED_BY_ID] = row[_LAST_MODIFIED_BY_ID] = actor or user_id
            self._derive(row, license_id)
            self.users[user_id] = row
            self._by_username[username_key] = user_id
            self._by_nickname[nickname.lower()] = user_id
            if federation is not None:
                self._by_federation[federation] = user_id
            return user_id

    def update_user(self, user_id: str, fields: dict[str, Any], *, actor: str | None = None) -> None:
        """Change the given fields of one user (None sets null, "" leaves a field alone)."""
        canonical = self._existing_user_id(user_id)
        self._update_values(canonical, SCHEMA.convert(fields, creating=False), actor)

    def update_converted(self, user_id: str, values: dict[str, Any] | RecordError, *, actor: str | None = None) -> str:
        """``update_user`` of a record ``UserSchema.convert_rows`` made (or the error it met
        converting it, raised after the Id's own checks, as ``update_user`` meets them);
        returns the user's 18-character Id."""
        canonical = self._existing_user_id(user_id)
        if isinstance(values, RecordError):
            raise values
        self._update_values(canonical, values, actor)
        return canonical

    def _update_values(self, canonical: str, values: dict[str, Any], actor: str | None) -> None:
        with self.lock:
            row = self.users.get(canonical)
            if row is None:
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
            nulled = [name for name, value in values.items() if value is None and not _field(name).nillable]
            if nulled:
                if "IsActive" in nulled:
                    raise RecordError(
                        "INVALID_TYPE_ON_FIELD_IN_RECORD", "Active: value not of required type: ", ["IsActive"]
                    )
                ordered = [n for n in _REQUIRED_ORDER if n in nulled]
                raise RecordError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(ordered)}]", ordered
                )
            self._check_references(values)
            username = values.get("Username")
            if username is not None:
                key = username.lower()
                owner = self._by_username.get(key)
                taken_elsewhere = owner is None and key in self.usernames_taken_elsewhere
                if (owner is not None and owner != canonical) or taken_elsewhere:
                    raise RecordError("DUPLICATE_USERNAME", DUPLICATE_USERNAME_MESSAGE, ["Username"])
            nickname = values.get("CommunityNickname")
            if nickname is not None and self._by_nickname.get(nickname.lower(), canonical) != canonical:
                raise RecordError("DUPLICATE_COMM_NICKNAME", DUPLICATE_NICKNAME_MESSAGE, ["CommunityNickname"])
            federation = values.get("FederationIdentifier")
            if federation is not None and self._by_federation.get(federation, canonical) != canonical:
                raise self._duplicate_federation(self._by_federation[federation])
            old_license = self._license_of(row) if row[I["IsActive"]] else None
            new_active = values.get("IsActive", row[I["IsActive"]])
            new_profile = values.get("ProfileId", row[I["ProfileId"]])
            new_license = self.profiles[new_profile].license_id if new_active else None
            if new_license is not None and new_license != old_license:
                self._take_license(new_license)
            if old_license is not None and old_license != new_license:
                self.licenses[old_license].used -= 1
            self._reindex(canonical, row, values)
            for name, value in values.items():
                row[I[name]] = value
            row[_LAST_MODIFIED_DATE] = row[_SYSTEM_MODSTAMP] = sf_datetime()
            row[_LAST_MODIFIED_BY_ID] = actor or row[_LAST_MODIFIED_BY_ID]
            self._derive(row, self._license_of(row))

    def upsert_user(
        self, external_id_field: str, fields: dict[str, Any], *, actor: str | None = None
    ) -> tuple[str, bool]:
        """Update the user matching ``fields[external_id_field]`` or create one.

        Returns ``(Id, created)``. A row without a value for the key fails with
        ``MISSING_ARGUMENT`` (``<Field> not specified``), as Bulk reports it.
        """
        key_field = next((k for k in UPSERT_KEYS if k.lower() == external_id_field.lower()), None)
        if key_field is None:
            SCHEMA.resolve(external_id_field)
            raise RecordError(
                "INVALID_FIELD", f"Field {external_id_field} is not an External ID or indexed field for User", []
            )
        value = next((v for k, v in fields.items() if k.lower() == key_field.lower()), None)
        with self.lock:
            if key_field == "Id":
                if value in (None, ""):
                    return self.insert_user({k: v for k, v in fields.items() if k.lower() != "id"}, actor=actor), True
                self.update_user(str(value), fields, actor=actor)
                return self._existing_user_id(str(value)), False
            if value in (None, ""):
                raise RecordError("MISSING_ARGUMENT", f"{key_field} not specified", [])
            existing = self._find_by_key(key_field, str(value))
            if existing is None:
                return self.insert_user(fields, actor=actor), True
            self.update_user(existing, fields, actor=actor)
            return existing, False

    def delete_user(self, user_id: str) -> None:
        """Users cannot be deleted, only deactivated (User object reference)."""
        raise RecordError("INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted", [])

    # --- helpers -----------------------------------------------------------------------

    def _existing_user_id(self, user_id: str) -> str:
        if user_id in (None, ""):
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", [])
        canonical = to_id18(user_id)
        if canonical is None:
            raise RecordError("MALFORMED_ID", f"User ID: id value of incorrect type: {user_id}", ["Id"])
        if not canonical.startswith(KEY_PREFIXES["User"]):
            raise RecordError("MALFORMED_ID", f"User ID: id value of incorrect type: {user_id}", ["Id"])
        return canonical

    def _find_by_key(self, key_field: str, value: str) -> str | None:
        if key_field == "Username":
            return self._by_username.get(value.lower())
        if key_field == "CommunityNickname":
            return self._by_nickname.get(value.lower())
        return self._by_federation.get(value)

    def _check_references(self, values: dict[str, Any]) -> None:
        profile = values.get("ProfileId")
        if profile is not None and profile not in self.profiles:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["ProfileId"])
        manager = values.get("ManagerId")
        if manager is not None and manager not in self.users:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["ManagerId"])

    def _take_license(self, license_id: str) -> None:
        lic = self.licenses[license_id]
        if lic.used >= lic.total:
            raise RecordError("LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded", [])
        lic.used += 1

    def _license_of(self, row: list[Any]) -> str:
        return self.profiles[row[I["ProfileId"]]].license_id

    def _duplicate_federation(self, owner: str) -> RecordError:
        return RecordError(
            "DUPLICATE_VALUE",
            f"duplicate value found: FederationIdentifier duplicates value on record with id: {owner}",
            ["FederationIdentifier"],
        )

    def _reindex(self, user_id: str, row: list[Any], values: dict[str, Any]) -> None:
        for name, index in (
            ("Username", self._by_username),
            ("CommunityNickname", self._by_nickname),
        ):
            if name in values:
                old = row[I[name]]
                if old is not None:
                    index.pop(old.lower(), None)
                index[values[name].lower()] = user_id
        if "FederationIdentifier" in values:
            old = row[I["FederationIdentifier"]]
            if old is not None:
                self._by_federation.pop(old, None)
            if values["FederationIdentifier"] is not None:
                self._by_federation[values["FederationIdentifier"]] = user_id

    def _derive(self, row: list[Any], license_id: str) -> None:
        """Fill the computed fields of a stored ``row`` whose profile has licence ``license_id``."""
        first, last = row[_FIRST_NAME], row[_LAST_NAME]
        row[_NAME] = f"{first} {last}" if first else last
        row[_USER_TYPE] = license_user_type(self.licenses[license_id].name)

    def _generate_nickname(self, username: str) -> str:
        """Salesforce fills CommunityNickname when it is omitted; we use the username's
        local part (up to 40 characters), numbered when taken: ``jdoe``, ``jdoe1``, ..."""
        base = username.split("@", 1)[0][:40] or "user"
        candidate, n = base, 0
        while candidate.lower() in self._by_nickname:
            n += 1
            suffix = str(n)
            candidate = base[: 40 - len(suffix)] + suffix
        return candidate

    def _new_user_id(self) -> str:
        while True:
            candidate = make_id(KEY_PREFIXES["User"], self._next_number)
            self._next_number += 1
            if candidate not in self.users:
                return candidate

    def new_id(self, kind: str) -> str:
        """A fresh id of another key prefix (e.g. for a session's or a job's records)."""
        with self.lock:
            number = self._next_number
            self._next_number += 1
        return make_id(KEY_PREFIXES.get(kind, kind), number)

    # --- fixture format ----------------------------------------------------------------

    @classmethod
    def load(cls, fixture: dict[str, Any]) -> Org:
        """Build an org from the fixture format (docs/sandbox-fixtures.md).

        Refuses inconsistent fixtures with a ValueError naming the record: ids of the
        wrong kind, a profile with an unknown licence, duplicate usernames or nicknames, a
        user with an unknown profile, bad picklist values, more active users than licences.
        """
        if not isinstance(fixture, dict):
            raise _fixture_error("the org fixture must be a JSON object")
        org = cls(
            _require_id(fixture.get("organization_id"), "Organization", "organization_id"),
            str(fixture.get("api_version") or "62.0"),
        )
        if not _is_version(org.api_version):
            raise _fixture_error(f"api_version: {org.api_version!r} is not a version like '62.0'")
        for n, raw in enumerate(_list(fixture, "user_licenses")):
            where = f"user_licenses[{n}]"
            lic_id = _require_id(raw.get("Id"), "UserLicense", f"{where}.Id")
            total = raw.get("TotalLicenses")
            if not isinstance(total, int) or isinstance(total, bool) or total < 0:
                raise _fixture_error(f"{where}.TotalLicenses must be a non-negative integer, got {total!r}")
            if not isinstance(raw.get("Name"), str):
                raise _fixture_error(f"{where}.Name must be a string")
            extra = {k: v for k, v in raw.items() if k not in ("Id", "Name", "TotalLicenses", "UsedLicenses")}
            org.licenses[lic_id] = UserLicense(lic_id, raw["Name"], total, extra=extra)
        for n, raw in enumerate(_list(fixture, "profiles")):
            where = f"profiles[{n}]"
            profile_id = _require_id(raw.get("Id"), "Profile", f"{where}.Id")
            lic_id = _require_id(raw.get("UserLicenseId"), "UserLicense", f"{where}.UserLicenseId")
            if lic_id not in org.licenses:
                raise _fixture_error(f"{where} ({raw.get('Name')!r}) names an unknown UserLicenseId {lic_id}")
            if not isinstance(raw.get("Name"), str):
                raise _fixture_error(f"{where}.Name must be a string")
            extra = {k: v for k, v in raw.items() if k not in ("Id", "Name", "UserLicenseId")}
            org.profiles[profile_id] = Profile(profile_id, raw["Name"], lic_id, extra)
        for n, raw in enumerate(_list(fixture, "permission_sets")):
            ps_id = _require_id(raw.get("Id"), "PermissionSet", f"permission_sets[{n}].Id")
            org.permission_sets[ps_id] = {**raw, "Id": ps_id}
        org._taken_elsewhere_raw = [str(u) for u in _list(fixture, "usernames_taken_elsewhere")]
        org.usernames_taken_elsewhere = {u.lower() for u in org._taken_elsewhere_raw}
        org.logins = [dict(x) for x in _list(fixture, "logins")]
        org.connected_apps = [dict(x) for x in _list(fixture, "connected_apps")]
        org.extensions = {k: v for k, v in fixture.items() if k not in (*FIXTURE_KEYS, "permission_sets")}
        _load_users(org, _list(fixture, "users"))
        return org

    def dump(self) -> dict[str, Any]:
        """The whole state in the fixture format; users carry their Id and system fields."""
        with self.lock:
            users = []
            optional = [
                (i, f.name)
                for i, f in enumerate(USER_FIELDS)
                if f.name not in DUMP_ALWAYS and f.name not in COMPUTED_FIELDS
            ]
            always = [(I[name], name) for name in DUMP_ALWAYS]
            for row in self.users.values():
                record = {name: row[i] for i, name in always}
                for i, name in optional:
                    if row[i] is not None:
                        record[name] = row[i]
                users.append(record)
            return {
                "organization_id": self.organization_id,
                "api_version": self.api_version,
                "user_licenses": [
                    {**lic.extra, "Id": lic.id, "Name": lic.name, "TotalLicenses": lic.total}
                    for lic in self.licenses.values()
                ],
                "profiles": [
                    {**p.extra, "Id": p.id, "Name": p.name, "UserLicenseId": p.license_id}
                    for p in self.profiles.values()
                ],
                **({"permission_sets": list(self.permission_sets.values())} if self.permission_sets else {}),
                "users": users,
                "usernames_taken_elsewhere": list(self._taken_elsewhere_raw),
                "logins": [dict(x) for x in self.logins],
                "connected_apps": [dict(x) for x in self.connected_apps],
                **self.extensions,
            }


_REQUIRED_ORDER = (*REQUIRED_ON_CREATE, "CommunityNickname")


def _field(name: str) -> Any:
    return USER_FIELDS[I[name]]


def _is_version(text: str) -> bool:
    head, _, tail = text.partition(".")
    return head.isdigit() and tail.isdigit()


def _list(fixture: dict[str, Any], key: str) -> list[Any]:
    value = fixture.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fixture_error(f"{key} must be a list")
    return value


_LOADABLE = {f.name for f in USER_FIELDS} - COMPUTED_FIELDS - {"Id"}
_ACCEPTED_KEYS = frozenset(_LOADABLE | COMPUTED_FIELDS | {"Id"})
_REQUIRED_IN_FIXTURE = ("Username", "LastName", "Email", "Alias", "ProfileId")
_PICKLIST_DEFAULTS = {
    "TimeZoneSidKey": "America/Los_Angeles",
    "LocaleSidKey": "en_US",
    "EmailEncodingKey": "UTF-8",
    "LanguageLocaleKey": "en_US",
}


def _load_users(org: Org, raw_users: list[Any]) -> None:
    """Fixture users: a fast path (1,000,000 users load in well under a minute) with the
    checks that keep the org consistent; values are trusted to fit lengths and formats.

    The cyclic garbage collector is paused meanwhile: millions of new lists and dicts
    would otherwise trigger it thousands of times for nothing (they are all kept).
    """
    with collector_paused():
        _load_user_rows(org, raw_users)


def _load_user_rows(org: Org, raw_users: list[Any]) -> None:
    now = sf_datetime()
    i_id, i_user, i_nick, i_fed = I["Id"], I["Username"], I["CommunityNickname"], I["FederationIdentifier"]
    i_active, i_profile, i_first, i_last = I["IsActive"], I["ProfileId"], I["FirstName"], I["LastName"]
    i_name, i_type = I["Name"], I["UserType"]
    stamp_slots = (I["CreatedDate"], I["LastModifiedDate"], I["SystemModstamp"])
    by_slots = (I["CreatedById"], I["LastModifiedById"])
    slots = {name: I[name] for name in _LOADABLE}
    required = [(I[name], name) for name in _REQUIRED_IN_FIXTURE]
    picklists = [(I[name], name, PICKLIST_VALUES[name], _PICKLIST_DEFAULTS[name]) for name in PICKLIST_VALUES]
    profile_license = {p.id: org.licenses[p.license_id] for p in org.profiles.values()}
    profile_type = {p.id: license_user_type(org.licenses[p.license_id].name) for p in org.profiles.values()}
    by_username, by_nickname, by_federation = org._by_username, org._by_nickname, org._by_federation
    taken_elsewhere, users = org.usernames_taken_elsewhere, org.users
    for n, raw in enumerate(raw_users):
        if not isinstance(raw, dict):
            raise _fixture_error(f"users[{n}] must be an object")
        if not raw.keys() <= _ACCEPTED_KEYS:
            unknown = sorted(k for k in raw if k not in _ACCEPTED_KEYS)
            raise _fixture_error(f"users[{n}] has field(s) the User object does not have: {unknown}")
        row: list[Any] = [None] * N_FIELDS
        for name, value in raw.items():
            slot = slots.get(name)
            if slot is not None:
                row[slot] = value
        for slot, name in required:
            value = row[slot]
            if type(value) is not str or not value:
                raise _fixture_error(f"users[{n}] lacks {name} (a non-empty string)")
        for slot, name, allowed, default in picklists:
            value = row[slot]
            if value is None:
                row[slot] = default
            elif value not in allowed:
                raise _fixture_error(f"users[{n}]: {name} {value!r} is not a value of the restricted picklist")
        raw_id = raw.get("Id")
        user_id = org._new_user_id() if raw_id is None else _require_id(raw_id, "User", f"users[{n}].Id")
        if user_id in users:
            raise _fixture_error(f"users[{n}]: duplicate Id {user_id}")
        row[i_id] = user_id
        profile = row[i_profile] if row[i_profile] in profile_license else to_id18(row[i_profile])
        if profile not in profile_license:
            raise _fixture_error(f"users[{n}] ({row[i_user]}) names an unknown ProfileId {row[i_profile]!r}")
        row[i_profile] = profile
        active = row[i_active]
        if active is None:
            active = row[i_active] = True
        elif active is not True and active is not False:
            raise _fixture_error(f"users[{n}].IsActive must be true or false, got {active!r}")
        username_key = row[i_user].lower()
        if username_key in by_username:
            raise _fixture_error(f"users[{n}]: duplicate Username {row[i_user]!r} (usernames are case-insensitive)")
        if username_key in taken_elsewhere:
            raise _fixture_error(f"users[{n}]: Username {row[i_user]!r} is also listed in usernames_taken_elsewhere")
        by_username[username_key] = user_id
        nickname = row[i_nick]
        if nickname is None:
            nickname = row[i_nick] = org._generate_nickname(row[i_user])
        nick_key = str(nickname).lower()
        if nick_key in by_nickname:
            raise _fixture_error(f"users[{n}]: duplicate CommunityNickname {nickname!r}")
        by_nickname[nick_key] = user_id
        federation = row[i_fed]
        if federation is not None:
            if federation in by_federation:
                raise _fixture_error(f"users[{n}]: duplicate FederationIdentifier {federation!r}")
            by_federation[federation] = user_id
        for slot in stamp_slots:
            if row[slot] is None:
                row[slot] = now
        for slot in by_slots:
            if row[slot] is None:
                row[slot] = user_id
        if active:
            profile_license[profile].used += 1
        first = row[i_first]
        row[i_name] = f"{first} {row[i_last]}" if first else row[i_last]
        row[i_type] = profile_type[profile]
        users[user_id] = row
    for lic in org.licenses.values():
        if lic.used > lic.total:
            raise _fixture_error(
                f"licence {lic.name!r} ({lic.id}) has {lic.used} active users but only {lic.total} TotalLicenses"
            )
