"""Salesforce's HTML line breaks in error messages become text (salesforce_messages.py), where
the loader reads them and where stored messages are shown."""

from __future__ import annotations

import pytest

from include.provisioning.salesforce.jobs import error_text
from include.provisioning.salesforce.load import parse_record_error
from include.provisioning.salesforce_messages import plain_message

DUPLICATE = (
    "Duplicate Username.<br>The username already exists in this or another Salesforce organization. "
    "Usernames must be unique across all Salesforce organizations."
)


@pytest.mark.parametrize(
    ("message", "plain"),
    [
        (DUPLICATE, DUPLICATE.replace("<br>", " ")),
        (
            "Duplicate Nickname.<br>Another user has this nickname.<BR/>Please select another.",
            "Duplicate Nickname. Another user has this nickname. Please select another.",
        ),
        ("a <br /> b", "a b"),
        ("no markup: a < b", "no markup: a < b"),
        (None, None),
    ],
)
def test_line_break_tags_become_one_space(message: str | None, plain: str | None) -> None:
    assert plain_message(message) == plain


def test_the_loader_stores_the_record_error_as_text() -> None:
    code, message = parse_record_error(f"DUPLICATE_USERNAME:{DUPLICATE}:Username --")
    assert (code, message) == ("DUPLICATE_USERNAME", DUPLICATE.replace("<br>", " "))


def test_a_rest_error_is_text_too() -> None:
    class RefusedError(Exception):
        """simple-salesforce's errors carry Salesforce's body as ``content``."""

        def __init__(self) -> None:
            super().__init__("refused")
            self.content = [{"errorCode": "DUPLICATE_USERNAME", "message": DUPLICATE}]

    assert error_text(RefusedError()) == "DUPLICATE_USERNAME: " + DUPLICATE.replace("<br>", " ")
