"""The org model's User rules, on ``Org`` directly (the REST and Bulk tests go through
the real clients; this is the validation matrix, which needs no network)."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from include.sandbox.salesforce.exceptions import RecordError, UnknownFieldError
from include.sandbox.salesforce.models import DUPLICATE_USERNAME_MESSAGE, Org
from include.sandbox.salesforce.validation import id_suffix, make_id, to_id18
from tests.sandbox_process import FIXTURES

STANDARD = "00e000000000001AAA"  # Standard User -> Salesforce licence (50)
CHATTER = "00e000000000003AAA"  # Chatter Free User -> Chatter Free licence (500)
ADMIN = "00e000000000002AAA"  # System Administrator -> Salesforce licence


@pytest.fixture
def fixture() -> dict[str, Any]:
    return orjson.loads((FIXTURES / "example-org.json").read_bytes())


@pytest.fixture
def org(fixture: dict[str, Any]) -> Org:
    return Org.load(fixture)


def user(n: int | str = 1, **overrides: Any) -> dict[str, Any]:
    """A valid insert row, as CSV strings."""
    return {
        "Username": f"user{n}@contoso.example",
        "LastName": f"Last{n}",
        "FirstName": "First",
        "Email": f"user{n}@contoso.example",
        "Alias": f"u{n}"[:8],
        "TimeZoneSidKey": "Europe/Berlin",
        "LocaleSidKey": "de_DE",
        "EmailEncodingKey": "UTF-8",
        "LanguageLocaleKey": "de",
        "ProfileId": STANDARD,
        **overrides,
    }


def failure(action: Any) -> RecordError:
    with pytest.raises(RecordError) as caught:
        action()
    return caught.value


# --- ids -----------------------------------------------------------------------------------


def test_case_safe_suffix_matches_known_ids() -> None:
    assert id_suffix("00D000000000001") == "EAA"  # the example org id
    assert id_suffix("001A0000006Vm9r") == "IAC"
    assert to_id18("001A0000006Vm9r") == "001A0000006Vm9rIAC"
    assert to_id18("001A0000006Vm9riac") == "001A0000006Vm9rIAC"  # the suffix is case-insensitive
    assert to_id18("001A0000006Vm9rAAA") is None  # wrong suffix
    assert to_id18("not-an-id") is None


def test_case_safe_suffix_is_the_documented_arithmetic_for_every_chunk() -> None:
    """The lookup table gives, for each 5-character chunk, the character at the number whose bit i
    says whether character i is upper case (every one of the 32 case patterns, in each chunk)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    for number in range(32):
        chunk = "".join("Q" if number >> i & 1 else "q" for i in range(5))
        for where in range(3):
            id15 = "0" * (5 * where) + chunk + "0" * (10 - 5 * where)
            expected = ["A", "A", "A"]
            expected[where] = alphabet[number]
            assert id_suffix(id15) == "".join(expected), id15


def test_generated_ids_have_prefix_and_valid_suffix(org: Org) -> None:
    new_id = org.insert_user(user())
    assert len(new_id) == 18 and new_id.startswith("005")
    assert to_id18(new_id[:15]) == new_id
    assert make_id("0PS", 5).startswith("0PS") and to_id18(make_id("0PS", 5)) == make_id("0PS", 5)


def _id_digit_by_digit(prefix: str, number: int, pod: str = "5g0") -> str:
    """An id as its definition writes it: the counter in base 62, zero-padded, then the suffix."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = alphabet[rest] + digits
    id15 = prefix + pod + digits.rjust(15 - len(prefix) - len(pod), "0")
    return id15 + id_suffix(id15)


@pytest.mark.parametrize(("prefix", "pod"), [("005", "5g0"), ("01g", "5g0"), ("0PS", ""), ("00D", "Ab9Z")])
def test_make_id_is_the_counter_in_base_62_around_every_digit_boundary(prefix: str, pod: str) -> None:
    """``make_id`` works out an id's first 13 characters once per 3,844 numbers: the ids either
    side of each carry (62**k), of its cached part's edges and past nine digits are the definition's."""
    numbers = [*range(4000), *(62**k + d for k in range(2, 13) for d in (-1, 0, 1)), 3844 * 62**7 - 1]
    numbers += [1_234_567 + 3844 * k + d for k in range(3) for d in (-1, 0, 1)]
    assert [make_id(prefix, n, pod) for n in numbers] == [_id_digit_by_digit(prefix, n, pod) for n in numbers]


# --- per-record validation -------------------------------------------------------------------


def test_required_fields_are_reported_all_at_once(org: Org) -> None:
    error = failure(lambda: org.insert_user({"Username": "only@contoso.example", "FirstName": "A"}))
    assert error.status_code == "REQUIRED_FIELD_MISSING"
    missing = [
        "LastName",
        "Email",
        "Alias",
        "TimeZoneSidKey",
        "LocaleSidKey",
        "EmailEncodingKey",
        "ProfileId",
        "LanguageLocaleKey",
    ]
    assert error.message == f"Required fields are missing: [{', '.join(missing)}]"
    assert error.fields == missing
    assert error.bulk_error() == f"REQUIRED_FIELD_MISSING:{error.message}:{','.join(missing)} --"


def test_string_too_long_is_refused_not_truncated(org: Org) -> None:
    long_name = "x" * 81
    error = failure(lambda: org.insert_user(user(LastName=long_name)))
    assert (error.status_code, error.fields) == ("STRING_TOO_LONG", ["LastName"])
    assert error.message == f"Last Name: data value too large: {long_name} (max length=80)"
    error = failure(lambda: org.insert_user(user(Alias="abcdefghi")))
    assert error.message == "Alias: data value too large: abcdefghi (max length=8)"
    assert org.insert_user(user(Alias="abcdefgh", FederationIdentifier="f" * 512))


def test_restricted_picklists(org: Org) -> None:
    error = failure(lambda: org.insert_user(user(TimeZoneSidKey="Mars/Olympus")))
    assert error.status_code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert error.message == "Time Zone: bad value for restricted picklist field: Mars/Olympus"
    assert error.fields == ["TimeZoneSidKey"]
    assert failure(lambda: org.insert_user(user(LocaleSidKey="xx_XX"))).message.startswith("Locale: bad value")
    assert failure(lambda: org.insert_user(user(LanguageLocaleKey="klingon"))).fields == ["LanguageLocaleKey"]
    assert failure(lambda: org.insert_user(user(EmailEncodingKey="EBCDIC"))).fields == ["EmailEncodingKey"]
    for n, (tz, locale, language, encoding) in enumerate(
        [
            ("America/New_York", "en_US", "en_US", "ISO-8859-1"),
            ("Asia/Tokyo", "ja_JP", "ja", "Shift_JIS"),
            ("Asia/Kolkata", "pt_BR", "pt_BR", "UTF-8"),
            ("Australia/Sydney", "zh_CN", "zh_CN", "UTF-8"),
        ]
    ):
        org.insert_user(
            user(f"p{n}", TimeZoneSidKey=tz, LocaleSidKey=locale, LanguageLocaleKey=language, EmailEncodingKey=encoding)
        )


def test_email_and_username_shapes(org: Org) -> None:
    error = failure(lambda: org.insert_user(user(Email="not-an-address")))
    assert (error.status_code, error.message) == (
        "INVALID_EMAIL_ADDRESS",
        "Email: invalid email address: not-an-address",
    )
    error = failure(lambda: org.insert_user(user(Username="jdoe")))
    assert error.status_code == "INVALID_EMAIL_ADDRESS" and error.fields == ["Username"]
    # Entra guest UPNs and sandbox suffixes are valid usernames.
    assert org.insert_user(user(Username="ext_user#EXT#@contoso.onmicrosoft.com.test"))


def test_boolean_conversion(org: Org) -> None:
    for n, (raw, expected) in enumerate([("true", True), ("FALSE", False), ("1", True), ("0", False)]):
        new_id = org.insert_user(user(f"b{n}", IsActive=raw))
        assert org.get_user(new_id)["IsActive"] is expected
    error = failure(lambda: org.insert_user(user("b9", IsActive="maybe")))
    assert error.status_code == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert error.message == "Active: value not of required type: maybe"
    assert org.get_user(org.insert_user(user("b10")))["IsActive"] is True  # default


def test_unknown_and_read_only_fields(org: Org) -> None:
    with pytest.raises(UnknownFieldError) as caught:
        org.insert_user(user(Foo="bar"))
    assert caught.value.status_code == "INVALID_FIELD"
    assert caught.value.message == "Field name not found : Foo"
    assert caught.value.rest_message == "No such column 'Foo' on sobject of type User"
    error = failure(lambda: org.insert_user(user(Name="Full Name")))
    assert error.status_code == "INVALID_FIELD_FOR_INSERT_UPDATE" and error.fields == ["Name"]
    error = failure(lambda: org.insert_user(user(Id="005000000000009AAA")))
    assert error.message == "cannot specify Id in an insert call"
    # field names are case-insensitive, as in the API
    new_id = org.insert_user({k.lower(): v for k, v in user("lc").items()})
    assert org.get_user(new_id)["Username"] == "userlc@contoso.example"


def test_usernames_are_unique_everywhere(org: Org) -> None:
    error = failure(lambda: org.insert_user(user(Username="MEGAN.BOWEN@contoso.example")))
    assert (error.status_code, error.message, error.fields) == (
        "DUPLICATE_USERNAME",
        DUPLICATE_USERNAME_MESSAGE,
        ["Username"],
    )
    assert DUPLICATE_USERNAME_MESSAGE.startswith("Duplicate Username.<br>The username already exists")
    error = failure(lambda: org.insert_user(user(Username="Alex.Wilber@contoso.example")))
    assert error.status_code == "DUPLICATE_USERNAME"  # taken in another org


def test_nicknames_are_generated_and_unique(org: Org) -> None:
    first = org.insert_user(user(Username="jdoe@a.example"))
    second = org.insert_user(user(Username="jdoe@b.example"))
    assert org.get_user(first)["CommunityNickname"] == "jdoe"
    assert org.get_user(second)["CommunityNickname"] == "jdoe1"
    error = failure(lambda: org.insert_user(user(CommunityNickname="JDOE")))
    assert error.status_code == "DUPLICATE_COMM_NICKNAME" and error.fields == ["CommunityNickname"]
    assert error.message.startswith("Duplicate Nickname.<br>")


def test_profile_reference(org: Org) -> None:
    error = failure(lambda: org.insert_user(user(ProfileId="00e000000000009AAA")))
    assert (error.status_code, error.message, error.fields) == (
        "INVALID_CROSS_REFERENCE_KEY",
        "invalid cross reference id",
        ["ProfileId"],
    )
    assert failure(lambda: org.insert_user(user(ProfileId="005000000000001AAA"))).status_code == (
        "FIELD_INTEGRITY_EXCEPTION"
    )
    assert failure(lambda: org.insert_user(user(ProfileId="banana"))).status_code == "MALFORMED_ID"
    assert org.insert_user(user(ProfileId=STANDARD[:15]))  # 15-character ids are accepted


# --- licences ----------------------------------------------------------------------------------


def test_licences_are_counted_and_freed(fixture: dict[str, Any]) -> None:
    fixture["user_licenses"][0]["TotalLicenses"] = 4  # two are used by the example users
    org = Org.load(fixture)
    a = org.insert_user(user("a"))
    b = org.insert_user(user("b", ProfileId=ADMIN))  # same licence, other profile
    error = failure(lambda: org.insert_user(user("c")))
    assert (error.status_code, error.message) == ("LICENSE_LIMIT_EXCEEDED", "License Limit Exceeded")
    assert error.bulk_error() == "LICENSE_LIMIT_EXCEEDED:License Limit Exceeded:--"
    inactive = org.insert_user(user("d", IsActive="false"))  # inactive users need no licence
    assert failure(lambda: org.update_user(inactive, {"IsActive": "true"})).status_code == "LICENSE_LIMIT_EXCEEDED"
    org.update_user(a, {"IsActive": "false"})  # deactivation frees a licence ...
    org.update_user(inactive, {"IsActive": "true"})  # ... which activation takes again
    assert org.licenses["100000000000001AAA"].used == 4
    org.update_user(b, {"ProfileId": CHATTER})  # moving to another licence type frees one
    assert (org.licenses["100000000000001AAA"].used, org.licenses["100000000000002AAA"].used) == (3, 1)
    org.update_user(a, {"IsActive": "true"})
    assert failure(lambda: org.update_user(b, {"ProfileId": STANDARD})).status_code == "LICENSE_LIMIT_EXCEEDED"
    assert org.get_user(b)["ProfileId"] == CHATTER  # a failed update changes nothing


# --- update / upsert / delete ------------------------------------------------------------------


def test_update_changes_only_given_fields(org: Org) -> None:
    user_id = org.insert_user(user("u", Title="Engineer"))
    before = org.get_user(user_id)
    org.update_user(user_id, {"Id": user_id, "LastName": "Renamed", "Title": "", "FirstName": None})
    after = org.get_user(user_id)
    assert after["LastName"] == "Renamed" and after["Name"] == "Renamed"
    assert after["Title"] == "Engineer"  # empty means "leave alone" (Bulk CSV)
    assert after["FirstName"] is None  # None sets null (#N/A)
    assert after["Email"] == before["Email"] and after["CreatedDate"] == before["CreatedDate"]
    error = failure(lambda: org.update_user(user_id, {"LastName": None}))
    assert (error.status_code, error.fields) == ("REQUIRED_FIELD_MISSING", ["LastName"])
    org.update_user(user_id, {"Username": "USERU@contoso.example"})  # own name, other case
    assert org.user_id_by_username("useru@contoso.example") == user_id


def test_update_errors(org: Org) -> None:
    assert failure(lambda: org.update_user("", {"LastName": "X"})).message == "Id not specified in an update call"
    assert failure(lambda: org.update_user("bogus", {"LastName": "X"})).status_code == "MALFORMED_ID"
    assert failure(lambda: org.update_user("005000000000009AAA", {"LastName": "X"})).status_code == (
        "INVALID_CROSS_REFERENCE_KEY"
    )
    other = org.insert_user(user("o"))
    error = failure(lambda: org.update_user(other, {"Username": "megan.bowen@contoso.example"}))
    assert error.status_code == "DUPLICATE_USERNAME"


def test_upsert_by_username_and_federation_id(org: Org) -> None:
    created_id, created = org.upsert_user("Username", user("x", FederationIdentifier="fed-x"))
    assert created
    same_id, created = org.upsert_user("username", {"Username": "USERX@contoso.example", "Title": "Boss"})
    assert (same_id, created) == (created_id, False)
    assert org.get_user(created_id)["Title"] == "Boss"
    assert org.upsert_user("FederationIdentifier", {"FederationIdentifier": "fed-x", "Department": "R&D"}) == (
        created_id,
        False,
    )
    error = failure(lambda: org.upsert_user("Username", {"LastName": "NoKey"}))
    assert error.bulk_error() == "MISSING_ARGUMENT:Username not specified:--"
    error = failure(lambda: org.insert_user(user("y", FederationIdentifier="fed-x")))
    assert error.status_code == "DUPLICATE_VALUE"


def test_users_cannot_be_deleted(org: Org) -> None:
    error = failure(lambda: org.delete_user("005000000000002AAA"))
    assert (error.status_code, error.message) == ("INVALID_TYPE_FOR_OPERATION", "entity type cannot be deleted")
    assert org.get_user("005000000000002AAA") is not None


# --- fixture format -----------------------------------------------------------------------------


def test_dump_round_trips(org: Org) -> None:
    new_id = org.insert_user(user("r", Title="CTO"))
    dumped = org.dump()
    assert [u["Id"] for u in dumped["users"]][-1] == new_id
    assert dumped["users"][0]["FederationIdentifier"] is None  # fixture fields are always written
    again = Org.load(orjson.loads(orjson.dumps(dumped)))
    assert again.get_user(new_id) == org.get_user(new_id)
    assert again.dump() == dumped


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["profiles"][0].update(UserLicenseId="100000000000009AAA"), "unknown UserLicenseId"),
        (lambda f: f["users"][1].update(Username="INTEGRATION@contoso.example.sfdc"), "duplicate Username"),
        (lambda f: f["users"][1].update(ProfileId="00e000000000009AAA"), "unknown ProfileId"),
        (lambda f: f["users"][1].update(Id="001000000000002AAA"), "is not a User id"),
        (lambda f: f["users"][1].update(Id="005000000000002ABC"), "case-safe suffix"),
        (lambda f: f["users"][1].update(TimeZoneSidKey="Mars/Olympus"), "restricted picklist"),
        (lambda f: f["users"][1].update(Hobby="golf"), "does not have: ['Hobby']"),
        (lambda f: f["user_licenses"][0].update(TotalLicenses=1), "2 active users but only 1"),
        (lambda f: f["users"][1].update(CommunityNickname="Integration"), "duplicate CommunityNickname"),
    ],
)
def test_load_refuses_inconsistent_fixtures(fixture: dict[str, Any], change: Any, message: str) -> None:
    broken = copy.deepcopy(fixture)
    change(broken)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Org.load(broken)


def test_inserted_users_and_licence_counts_survive_dump_and_load(fixture: dict[str, Any]) -> None:
    """How fast 100,000 inserts and a dump + load are is measured by ``scripts/benchmark_sandbox.py``
    (tests do not time anything)."""
    fixture["user_licenses"][1]["TotalLicenses"] = 20_000
    org = Org.load(fixture)
    with org.lock:
        for n in range(10_000):
            org.insert_user(user(n, ProfileId=CHATTER, IsActive="true"))
    reloaded = Org.load(org.dump())
    assert len(reloaded.users) == 10_002
    assert reloaded.licenses["100000000000002AAA"].used == 10_000
