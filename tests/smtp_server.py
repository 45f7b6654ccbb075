"""A real SMTP server for tests: aiosmtpd on a free port (``scripts/smtp_catcher.py``'s
``MailCatcher``), collecting every message, and the ``smtp_default`` connection that reaches it.

    from tests.smtp_server import smtp_server_fixture  # noqa: F401  (registers the fixture "smtp_server")

    def test_something(smtp_server: SmtpServer) -> None:
        ...  # AIRFLOW_CONN_SMTP_DEFAULT points at the server for this test
        (received,) = smtp_server.wait_for(1)
        received.message["Subject"], received.message.get_body(("html",)).get_content()
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from scripts.smtp_catcher import DEFAULT_FROM, SMTP_CONN_ID, MailCatcher, Received

__all__ = ["DEFAULT_FROM", "Received", "SmtpServer", "attachments", "html_body", "smtp_server_fixture"]


class SmtpServer(MailCatcher):
    """A ``MailCatcher`` that also gives its settings as environment variables."""

    def env(self, from_email: str = DEFAULT_FROM) -> dict[str, str]:
        """``{"AIRFLOW_CONN_SMTP_DEFAULT": <JSON connection>}`` for this server."""
        return {f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}": json.dumps(self.connection(from_email))}


@pytest.fixture(name="smtp_server")
def smtp_server_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """A running server for one test, with ``AIRFLOW_CONN_SMTP_DEFAULT`` set to reach it."""
    with SmtpServer() as server:
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        yield server


def html_body(message: EmailMessage) -> str:
    """The decoded text/html part."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the message has no HTML part"
    content = part.get_content()
    assert isinstance(content, str)
    return content


def attachments(message: EmailMessage) -> dict[str, bytes]:
    """Attachment file name → decoded bytes."""
    found: dict[str, bytes] = {}
    for part in message.iter_attachments():
        data = part.get_content()
        found[str(part.get_filename())] = data if isinstance(data, bytes) else data.encode()
    return found
