"""Salesforce ids and the User object's field rules.

The User object is the only sObject the emulator writes, so its schema lives here as data
(``USER_FIELDS``) and every write, whether a Bulk row or a REST call, passes through
``UserSchema.convert``: it maps names (case-insensitively, as the API does), refuses
unknown and read-only fields, converts CSV strings to the field's type and checks each value
on its own (length, picklist, e-mail shape). Checks that need the org (references,
uniqueness, licences) are in ``models.Org``.

Error codes and message shapes are the platform's: ``Last Name: data value too large:
<value> (max length=80)``, ``Time Zone: bad value for restricted picklist field: <value>``,
``Active: value not of required type: <value>``, ``Email: invalid email address: <value>``,
``Required fields are missing: [A, B]`` (SOAP/REST API Developer Guides, "StatusCode").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import compress, repeat
from operator import is_
from typing import Any

from include.sandbox.salesforce.exceptions import RecordError, UnknownFieldError
from include.sandbox.salesforce.picklists import PICKLIST_VALUES, PICKLISTS

# --- ids ---------------------------------------------------------------------------------

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID15 = re.compile(r"^[A-Za-z0-9]{15}$")
_ID18 = re.compile(r"^[A-Za-z0-9]{18}$")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

KEY_PREFIXES = {
    "User": "005",
    "Profile": "00e",
    "UserLicense": "100",
    "PermissionSet": "0PS",
    "Organization": "00D",
    "Account": "001",
}


_CASE_BITS = str.maketrans(
    {c: ("1" if c.isupper() else "0") for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}
)


_CHUNK_SUFFIX: dict[str, str] = {
    format(number, "05b")[::-1]: _SUFFIX_ALPHABET[number] for number in range(len(_SUFFIX_ALPHABET))
}
"""A chunk's case bits as ``_CASE_BITS`` writes them (character 0 first) → its suffix character:
the bits read backwards are the number indexing ``A..Z0..5``. A lookup instead of ``int(..., 2)``
of a reversed slice: every Bulk insert row makes an id."""


def id_suffix(id15: str) -> str:
    """The 3-character case-safe suffix of a 15-character id.

    Each 5-character chunk gives one suffix character: bit i is set when character i of
    the chunk is an upper-case letter, and the 5-bit number indexes ``A..Z0..5``.
    """
    bits = id15.translate(_CASE_BITS)
    return _CHUNK_SUFFIX[bits[:5]] + _CHUNK_SUFFIX[bits[5:10]] + _CHUNK_SUFFIX[bits[10:15]]


@lru_cache(maxsize=65536)
def to_id18(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None if it is not an id.

    An 18-character id is accepted only when its suffix matches (case-insensitively, as
    the suffix exists to survive case-folding), and is returned in canonical form.
    """
    if _ID18.match(value):
        head = value[:15]
        suffix = id_suffix(head)
        return head + suffix if value[15:].upper() == suffix else None
    if _ID15.match(value):
        return value + id_suffix(value)
    return None


_BASE62_PAIRS = [high + low for high in _BASE62 for low in _BASE62]
"""The two base-62 digits of each number below 62² (``make_id``'s last two digits)."""
_PAIR_BITS = [pair.translate(_CASE_BITS) for pair in _BASE62_PAIRS]
"""Their case bits (``_CASE_BITS``)."""


def make_id(prefix: str, number: int, pod: str = "5g0") -> str:
    """A new 18-character id: key prefix, a pod/instance part, a base-62 counter, suffix.

    Every Bulk insert row makes an id from the next number, so ids differ in their last two digits
    for 3,844 numbers at a time: the rest of the id and what it gives of the suffix (the first two
    characters, and the case bits of the third's chunk) are worked out once (``_id_head``). Numbers
    beyond nine digits (never reached) or an unusual prefix + pod length take ``_make_id``.
    """
    high, low = divmod(number, 3844)
    if len(prefix) + len(pod) != 6 or high >= _HIGH_LIMIT:
        return _make_id(prefix, number, pod)
    head, suffix, bits = _id_head(prefix + pod, high)
    return head + _BASE62_PAIRS[low] + suffix + _CHUNK_SUFFIX[bits + _PAIR_BITS[low]]


_HIGH_LIMIT = 62**7
"""``make_id``'s fast path: the counter fits the nine digits of a 6-character prefix + pod."""


@lru_cache(maxsize=64)
def _id_head(lead: str, high: int) -> tuple[str, str, str]:
    """For ids ``lead`` + the seven base-62 digits of ``high`` + two more: those 13 characters,
    the first two suffix characters (chunks 0-4 and 5-9) and the case bits of characters 10-12."""
    head = _make_id(lead, high * 3844, "")[:13]
    bits = head.translate(_CASE_BITS)
    return head, _CHUNK_SUFFIX[bits[:5]] + _CHUNK_SUFFIX[bits[5:10]], bits[10:13]


def _make_id(prefix: str, number: int, pod: str) -> str:
    """``make_id`` one digit at a time (any prefix + pod length; a number too large for the id's
    15 characters makes a longer one)."""
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    body = "".join(reversed(digits)).rjust(15 - len(prefix) - len(pod), "0")
    id15 = prefix + pod + body
    return id15 + id_suffix(id15)


# --- the User schema -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    """One field as ``sobjects/User/describe`` reports it, plus what writes may do."""

    name: str
    label: str
    type: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    unique: bool = False
    id_lookup: bool = False
    reference_to: str | None = None
    relationship_name: str | None = None
    required_on_create: bool = False


def _s(name: str, label: str, length: int, **kw: Any) -> Field:
    return Field(name, label, "string", length, **kw)


def _ro(name: str, label: str, type_: str, length: int = 0, **kw: Any) -> Field:
    return Field(name, label, type_, length, createable=False, updateable=False, **kw)


USER_FIELDS: tuple[Field, ...] = (
    _ro("Id", "User ID", "id", 18, nillable=False, id_lookup=True),
    _s("Username", "Username", 80, nillable=False, unique=True, id_lookup=True, required_on_create=True),
    _s("LastName", "Last Name", 80, nillable=False, required_on_create=True),
    _s("FirstName", "First Name", 40),
    _ro("Name", "Full Name", "string", 121, nillable=False),
    _s("CompanyName", "Company Name", 80),
    _s("Division", "Division", 80),
    _s("Department", "Department", 80),
    _s("Title", "Title", 80),
    Field("Street", "Street", "textarea", 255),
    _s("City", "City", 40),
    _s("State", "State/Province", 80),
    _s("PostalCode", "Zip/Postal Code", 20),
    _s("Country", "Country", 80),
    Field("Email", "Email", "email", 128, nillable=False, id_lookup=True, required_on_create=True),
    Field("Phone", "Phone", "phone", 40),
    Field("MobilePhone", "Mobile", "phone", 40),
    _s("Alias", "Alias", 8, nillable=False, required_on_create=True),
    _s("CommunityNickname", "Nickname", 40, nillable=False, unique=True, id_lookup=True),
    Field("IsActive", "Active", "boolean", nillable=False),
    Field("TimeZoneSidKey", "Time Zone", "picklist", 40, nillable=False, required_on_create=True),
    Field("LocaleSidKey", "Locale", "picklist", 40, nillable=False, required_on_create=True),
    Field("EmailEncodingKey", "Email Encoding", "picklist", 40, nillable=False, required_on_create=True),
    Field("LanguageLocaleKey", "Language", "picklist", 40, nillable=False, required_on_create=True),
    Field(
        "ProfileId",
        "Profile ID",
        "reference",
        18,
        nillable=False,
        reference_to="Profile",
        relationship_name="Profile",
        required_on_create=True,
    ),
    Field("ManagerId", "Manager ID", "reference", 18, reference_to="User", relationship_name="Manager"),
    _ro("UserType", "User Type", "picklist", 40),
    _s("EmployeeNumber", "Employee Number", 20),
    _s("FederationIdentifier", "SAML Federation ID", 512, id_lookup=True),
    _ro("CreatedDate", "Created Date", "datetime", nillable=False),
    _ro("CreatedById", "Created By ID", "reference", 18, nillable=False, reference_to="User"),
    _ro("LastModifiedDate", "Last Modified Date", "datetime", nillable=False),
    _ro("LastModifiedById", "Last Modified By ID", "reference", 18, nillable=False, reference_to="User"),
    _ro("SystemModstamp", "System Modstamp", "datetime", nillable=False),
    _ro("LastLoginDate", "Last Login", "datetime"),
)

FIELD_INDEX: dict[str, int] = {f.name: i for i, f in enumerate(USER_FIELDS)}
"""Field name → slot in a stored user row (rows are lists, one slot per field)."""

REQUIRED_ON_CREATE: tuple[str, ...] = (
    "Username",
    "LastName",
    "Email",
    "Alias",
    "TimeZoneSidKey",
    "LocaleSidKey",
    "EmailEncodingKey",
    "ProfileId",
    "LanguageLocaleKey",
)
"""In the order Salesforce lists them in ``Required fields are missing: [...]``."""

COMPUTED_FIELDS = frozenset({"Name", "UserType"})

# Salesforce accepts the usual RFC 5322 "dot-atom" local parts (Entra guest UPNs carry '#').
_EMAIL = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)

_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})


def is_email(value: str) -> bool:
    return _EMAIL.match(value) is not None


def _unwritable(name: str) -> RecordError:
    return RecordError(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {name}. Please check the security settings of this field and verify "
        "that it is read/write for your profile or permission set.",
        [name],
    )


class UserSchema:
    """Name resolution and per-value rules for User writes (no org state needed).

    Each field gets its converter built once, so a 100,000-row Bulk insert spends a few
    microseconds per value.
    """

    def __init__(self) -> None:
        self.by_lower = {f.name.lower(): f for f in USER_FIELDS}
        self.converters: dict[str, Callable[[Any], Any]] = {f.name: _converter(f) for f in USER_FIELDS}
        # lower-case name -> (canonical name, converter, writable on create, writable on update)
        self._plan: dict[str, tuple[Field, Callable[[Any], Any]]] = {
            f.name.lower(): (f, self.converters[f.name]) for f in USER_FIELDS
        }

    def resolve(self, name: str) -> Field:
        """The field called ``name`` (any case); ``UnknownFieldError`` otherwise."""
        field = self.by_lower.get(name.lower())
        if field is None:
            raise UnknownFieldError(name)
        return field

    def check_columns(self, names: list[str], *, creating: bool, allow_id: bool) -> None:
        """Refuse a Bulk header / REST body naming unknown or read-only fields up front."""
        for name in names:
            field = self.resolve(name)
            if field.name == "Id":
                if not allow_id:
                    raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
                continue
            if not (field.createable if creating else field.updateable):
                raise _unwritable(field.name)

    def convert(self, raw: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        """Canonical field name -> typed value for one record; ``Id`` is left out.

        An empty string means "not given" (Bulk CSV: ignored on update, absent on insert);
        ``None`` means "set to null" (Bulk ``#N/A``, JSON ``null``).
        """
        out: dict[str, Any] = {}
        plan = self._plan
        for name, value in raw.items():
            entry = plan.get(name) or plan.get(name.lower())
            if entry is None:
                raise UnknownFieldError(name)
            field, convert = entry
            if field.name == "Id":
                if creating and value not in (None, ""):
                    raise RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
                continue
            if value == "":
                continue
            if not (field.createable if creating else field.updateable):
                raise _unwritable(field.name)
            out[field.name] = None if value is None else convert(value)
        return out

    def convert_rows(
        self, names: list[str], rows: list[list[str]], *, creating: bool, null: str
    ) -> list[dict[str, Any] | RecordError]:
        """``convert`` of many Bulk CSV rows at once: for each row (values under ``names``,
        canonical field names, one value per name), the record ``convert`` would return, or the
        error it would raise first. In a row "" is not given and ``null`` (``#N/A``) sets null.

        The work goes column by column: a column's values are checked together, its distinct
        values converted once (a Bulk file repeats the same profile, locale and time zone on
        every row), a text column whose longest value fits is taken as it is. Every value is
        still checked; only the repetition is saved. Errors are each row's first in column
        order, as ``convert`` meets them.
        """
        columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        kept_names: list[str] = []
        kept: list[list[Any]] = []
        failing: list[dict[int, RecordError]] = []
        sparse: list[tuple[str, list[Any]]] = []  # the kept columns that leave values out
        for name, values in zip(names, columns, strict=True):
            field, convert = self._plan[name.lower()]
            column, failed = _convert_column(field, convert, values, creating=creating, null=null)
            if failed:
                failing.append(failed)
            if column is not None:
                kept_names.append(name)
                kept.append(column)
                if "" in values:
                    sparse.append((name, column))
        built = [dict(zip(kept_names, values, strict=True)) for values in zip(*kept, strict=True)]
        for name, column in sparse:
            # a value left out is not part of its record: the few are dropped from the whole
            # records (the rest keep header order), cheaper than filtering every value of every row
            for position in compress(range(len(column)), map(is_, column, repeat(_ABSENT))):
                del built[position][name]
        records: list[dict[str, Any] | RecordError] = list(built)
        if not kept:  # only an Id column (or none)
            records = [{} for _ in rows]
        for position in sorted({position for failed in failing for position in failed}):
            # the first failing column of the row, in header order
            records[position] = next(failed[position] for failed in failing if position in failed)
        return records


_ABSENT = object()
"""A value the row leaves out (empty in Bulk CSV): not part of the record."""


def _convert_column(
    field: Field, convert: Callable[[Any], Any], values: tuple[str, ...], *, creating: bool, null: str
) -> tuple[list[Any] | None, dict[int, RecordError]]:
    """One column of ``UserSchema.convert_rows``: the converted values (``_ABSENT`` for "";
    None for the whole column when it is never part of the record, as ``Id``) and the errors by
    row position."""
    if field.name == "Id":
        if creating:  # as convert: an Id with a value cannot be inserted
            error = RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
            return None, {i: error for i, value in enumerate(values) if value not in ("", null)}
        return None, {}
    if not (field.createable if creating else field.updateable):
        error = _unwritable(field.name)
        return None, {i: error for i, value in enumerate(values) if value != ""}
    limit = getattr(convert, "max_length", None)
    if limit is not None and max(map(len, values), default=0) <= limit:
        # a plain text field whose values all fit: stored as given. Read without a set of them:
        # hashing each new value cost more than these scans. (A null longer than the limit sends
        # the column below, where it gives the same.)
        if "" not in values and null not in values:
            return list(values), {}
        return [_ABSENT if value == "" else None if value == null else value for value in values], {}
    results: dict[str, Any] = {"": _ABSENT, null: None}
    erred = False
    for value in set(values) - {"", null}:  # each distinct value once
        try:
            results[value] = convert(value)
        except RecordError as exc:
            results[value] = exc
            erred = True
    column = list(map(results.__getitem__, values))
    if not erred:
        return column, {}
    return column, {i: value for i, value in enumerate(column) if isinstance(value, RecordError)}


def _type_error(field: Field, value: Any) -> RecordError:
    return RecordError(
        "INVALID_TYPE_ON_FIELD_IN_RECORD", f"{field.label}: value not of required type: {value}", [field.name]
    )


def _as_text(field: Field, value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise _type_error(field, value)
    return str(value)


def _converter(field: Field) -> Callable[[Any], Any]:
    """The function that turns one raw value of ``field`` into its stored form."""
    kind, length, label, name = field.type, field.length, field.label, field.name

    if kind == "boolean":

        def boolean(value: Any) -> bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise _type_error(field, value)

        return boolean

    if kind in ("reference", "id"):
        prefix = KEY_PREFIXES[field.reference_to or "User"]

        def reference(value: Any) -> str:
            text = _as_text(field, value)
            canonical = to_id18(text)
            if canonical is None:
                raise RecordError("MALFORMED_ID", f"{label}: id value of incorrect type: {text}", [name])
            if not canonical.startswith(prefix):
                raise RecordError("FIELD_INTEGRITY_EXCEPTION", f"{label}: id value of incorrect type: {text}", [name])
            return canonical

        return reference

    def too_long(text: str) -> RecordError:
        return RecordError("STRING_TOO_LONG", f"{label}: data value too large: {text} (max length={length})", [name])

    if kind == "picklist":
        allowed = PICKLIST_VALUES.get(name, frozenset())

        def picklist(value: Any) -> str:
            text = _as_text(field, value)
            if text in allowed:
                return text
            if len(text) > length:
                raise too_long(text)
            raise RecordError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{label}: bad value for restricted picklist field: {text}",
                [name],
            )

        return picklist

    if name == "Username":

        def username(value: Any) -> str:
            text = _as_text(field, value)
            if len(text) > length:
                raise too_long(text)
            if _EMAIL.match(text) is None:
                # The API's code, with the wording Salesforce shows for this rule.
                raise RecordError(
                    "INVALID_EMAIL_ADDRESS",
                    "Username must be in the form of an email address (for example, john@acme.com)",
                    ["Username"],
                )
            return text

        return username

    if kind == "email":

        def email(value: Any) -> str:
            text = _as_text(field, value)
            if len(text) > length:
                raise too_long(text)
            if _EMAIL.match(text) is None:
                raise RecordError("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {text}", [name])
            return text

        return email

    def string(value: Any) -> str:
        text = value if type(value) is str else _as_text(field, value)
        if len(text) > length:
            raise too_long(text)
        return text

    string.max_length = length  # type: ignore[attr-defined]  # text that fits is stored as given (convert_rows)
    return string


def missing_required(values: dict[str, Any]) -> RecordError | None:
    """``REQUIRED_FIELD_MISSING`` naming every missing field at once, or None."""
    if None not in map(values.get, REQUIRED_ON_CREATE):  # every row of a good file: one C-level pass
        return None
    missing = [name for name in REQUIRED_ON_CREATE if values.get(name) is None]
    return RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)


def picklist_entries(field_name: str) -> list[dict[str, Any]]:
    """``picklistValues`` of describe for one restricted picklist."""
    return [
        {"active": True, "defaultValue": False, "label": label, "validFor": None, "value": value}
        for value, label in PICKLISTS[field_name]
    ]
