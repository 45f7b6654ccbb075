"""A local SMTP server that keeps every message: the mail side of the demo and of ``airflow
standalone``, and the server the tests deliver to.

    .venv/bin/python scripts/smtp_catcher.py [--port 0] [--dir .smtp/mail] [--env-file .smtp/smtp.env]
        [--to it-admins@contoso.example] [--from-email airflow@contoso.example]

It listens on 127.0.0.1 (``--port 0`` picks a free port), stores each message as an ``.eml``
file in ``--dir`` and prints one line per message; ``--env-file`` gets the settings Airflow
reads, written atomically once the server accepts connections (wait for the file, then
``set -a; . FILE; set +a``):

- ``AIRFLOW_CONN_SMTP_DEFAULT``: a JSON connection (conn_type smtp, host, port, extras
  ``from_email``, ``disable_ssl`` and ``disable_tls`` true: a local catcher speaks plain SMTP).
  JSON, not a URI: in the URI form any value of ``disable_tls`` reads as true.
- ``AIRFLOW_VAR_PROVISIONING_NOTIFICATION_EMAIL``: where reports and failure e-mails go.
- ``SMTP_CATCHER_DIR``: the folder of .eml files (``scripts/show_mail.py`` reads it).

SIGINT or SIGTERM stops it. ``MailCatcher`` is the reusable part (``tests/smtp_server.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import email
import email.policy
import itertools
import json
import re
import shlex
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from types import FrameType
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

DEFAULT_TO = "it-admins@contoso.example"
DEFAULT_FROM = "airflow@contoso.example"
SMTP_CONN_ID = "smtp_default"
DATA_SIZE_LIMIT = 256 * 1024 * 1024
"""Far above any relay's limit: the catcher shows what would be sent, the relay decides."""


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    """The message as sent (RFC 5322 bytes)."""
    path: Path | None = None
    """Its .eml file, when the catcher keeps a folder."""
    received_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    @property
    def message(self) -> EmailMessage:
        """Parsed with the modern policy (``get_body``, ``iter_attachments``, decoded headers)."""
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def summary_line(received: Received) -> str:
    """``07:31:02 from a@x to b@y: <subject> [report.csv 12.3 kB] -> .smtp/mail/0001-....eml``."""
    message = received.message
    attachments = [
        f"{part.get_filename() or 'unnamed'} {len(part.get_content() or b'') / 1000:.1f} kB"
        for part in message.iter_attachments()
    ]
    where = f" -> {received.path}" if received.path else ""
    files = f" [{', '.join(attachments)}]" if attachments else ""
    subject = " ".join(str(message.get("Subject", "")).split())
    return (
        f"{received.received_at:%H:%M:%S} from {received.mail_from} to {', '.join(received.rcpt_tos)}: "
        f"{subject}{files}{where}"
    )


class _Handler:
    def __init__(self, catcher: MailCatcher) -> None:
        self.catcher = catcher

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's name)
        data = envelope.original_content or envelope.content or b""
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.catcher._keep(Received(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], data))
        return "250 Message accepted for delivery"


class MailCatcher:
    """An aiosmtpd server on a thread of its own; use as a context manager or start()/stop().

    ``port`` 0 binds a free port (read ``port`` after ``start``). Every message lands in
    ``messages`` (and as ``NNNN-<time>-<subject>.eml`` in ``folder`` when given); ``on_message``
    is called with it on the server's thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        folder: Path | None = None,
        on_message: Callable[[Received], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.folder = folder
        self.on_message = on_message
        self.messages: list[Received] = []
        self._arrived = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._numbers = itertools.count(self._first_number())

    # -- lifecycle

    def start(self) -> MailCatcher:
        # Bind before the loop starts so the port is known (and taken) when start() returns.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        loop = self._loop = asyncio.new_event_loop()
        handler = _Handler(self)

        def factory() -> SMTP:
            return SMTP(
                handler,
                hostname="smtp-catcher.local",
                data_size_limit=DATA_SIZE_LIMIT,
                enable_SMTPUTF8=True,
                loop=loop,
            )

        server = loop.run_until_complete(loop.create_server(factory, sock=sock))
        self._server = server
        self._thread = threading.Thread(target=loop.run_forever, name="smtp-catcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(self._server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = self._thread = None

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- messages

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The first ``count`` messages, waiting up to ``timeout`` seconds; TimeoutError if fewer came."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout=timeout):
                raise TimeoutError(f"{len(self.messages)} of {count} messages arrived within {timeout} s")
            return self.messages[:count]

    def clear(self) -> None:
        with self._arrived:
            self.messages.clear()

    def connection(self, from_email: str = DEFAULT_FROM) -> dict[str, Any]:
        """The Airflow connection (JSON form) for this server."""
        return smtp_connection(self.host, self.port, from_email=from_email)

    def _first_number(self) -> int:
        if self.folder is None or not self.folder.is_dir():
            return 1
        numbers = [int(p.name[:4]) for p in self.folder.glob("[0-9][0-9][0-9][0-9]-*.eml")]
        return max(numbers, default=0) + 1

    def _keep(self, received: Received) -> None:
        if self.folder is not None:
            received.path = self._write(received)
        with self._arrived:
            self.messages.append(received)
            self._arrived.notify_all()
        if self.on_message is not None:
            self.on_message(received)

    def _write(self, received: Received) -> Path:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        subject = str(received.message.get("Subject", "") or "no-subject")
        slug = re.sub(r"[^A-Za-z0-9]+", "-", subject).strip("-")[:60] or "no-subject"
        path = self.folder / f"{next(self._numbers):04d}-{received.received_at:%Y%m%dT%H%M%S}-{slug}.eml"
        tmp = path.with_name(path.name + ".tmp")  # a reader polling the folder never sees half a message
        tmp.write_bytes(received.data)
        tmp.replace(path)
        return path


def smtp_connection(host: str, port: int, *, from_email: str = DEFAULT_FROM) -> dict[str, Any]:
    """An Airflow SMTP connection in JSON form for a plain (no SSL, no STARTTLS) local server."""
    return {
        "conn_type": "smtp",
        "host": host,
        "port": port,
        "extra": {
            "from_email": from_email,
            "disable_ssl": True,
            "disable_tls": True,
            "timeout": 10,
            "retry_limit": 1,
        },
    }


def catcher_settings(catcher: MailCatcher, *, to: str, from_email: str) -> dict[str, str]:
    """The environment variables that point Airflow (and the demo) at ``catcher``."""
    settings = {
        f"AIRFLOW_CONN_{SMTP_CONN_ID.upper()}": json.dumps(catcher.connection(from_email)),
        "AIRFLOW_VAR_PROVISIONING_NOTIFICATION_EMAIL": to,
    }
    if catcher.folder is not None:
        settings["SMTP_CATCHER_DIR"] = str(catcher.folder.resolve())
    return settings


def write_env_file(path: Path, settings: dict[str, str]) -> None:
    """Shell-quoted ``KEY='VALUE'`` lines, written atomically (a reader polling for the file never
    sees half of it), as ``include/sandbox/core/envfile.py`` writes the sandbox's."""
    lines = ["# Written by scripts/smtp_catcher.py; load with: set -a; . THIS_FILE; set +a"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in settings.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--dir", type=Path, default=Path(".smtp/mail"), help="where .eml files go")
    parser.add_argument("--env-file", type=Path, help="write AIRFLOW_CONN_SMTP_DEFAULT etc. here once listening")
    parser.add_argument("--to", default=DEFAULT_TO, help=f"the notification address (default {DEFAULT_TO})")
    parser.add_argument("--from-email", default=DEFAULT_FROM, help=f"the sender (default {DEFAULT_FROM})")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Both signals: a shell's background job ignores SIGINT, and scripts stop jobs with SIGTERM.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)

    def show(received: Received) -> None:
        print(summary_line(received), flush=True)

    with MailCatcher(args.host, args.port, folder=args.dir, on_message=show) as catcher:
        print(f"SMTP catcher listening on {catcher.host}:{catcher.port}; messages go to {args.dir}/", flush=True)
        if args.env_file:
            write_env_file(args.env_file, catcher_settings(catcher, to=args.to, from_email=args.from_email))
            print(f"Settings (env file): {args.env_file}  (notification address: {args.to})", flush=True)
        while not stop.wait(0.5):
            pass
    print("SMTP catcher stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
