"""Print e-mails the SMTP catcher received, readably: headers, the body as text, the attachments.

    .venv/bin/python scripts/show_mail.py                 # the newest message in $SMTP_CATCHER_DIR or .smtp/mail
    .venv/bin/python scripts/show_mail.py --all           # every message, oldest first
    .venv/bin/python scripts/show_mail.py PATH.eml --csv 5  # one message, and the first 5 rows of its CSV

Mails from Airflow's SMTP provider carry an HTML body only; it is turned into text here (tables as
``cell | cell`` rows, links as ``text <url>``). A zipped CSV attachment is opened too.
"""

from __future__ import annotations

import argparse
import csv
import email
import email.policy
import io
import os
import re
import sys
import zipfile
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

_BLOCKS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "ul", "ol", "pre", "thead", "tbody"}
_SKIPPED = {"head", "style", "script", "title"}
_PRE = "\x00"


class _HtmlText(HTMLParser):
    """HTML → plain text good enough for reading a report in a terminal. Layout tables
    (``role="presentation"``) become lines; data tables become ``cell | cell`` rows."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0
        self.links: list[str | None] = []
        self.tables: list[bool] = []
        """One flag per open table: True for a data table."""
        self.cells = 0
        self.in_cell = 0

    def _data_table(self) -> bool:
        return bool(self.tables) and self.tables[-1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self.skip += 1
        elif tag == "table":
            self.tables.append(dict(attrs).get("role") != "presentation")
            self.out.append("\n")
        elif tag == "tr":
            self.out.append("\n")
            self.cells = 0
        elif tag in ("td", "th"):
            if self._data_table():
                self.out.append(" | " if self.cells else "")
                self.cells += 1
                self.in_cell += 1
            else:
                self.out.append("\n")
        elif tag in _BLOCKS or tag == "br":
            # Inside a data cell a block only separates values; elsewhere it starts a line.
            self.out.append(" " if self.in_cell else "\n")
            self.pre += tag == "pre"
        elif tag == "li":
            self.out.append("\n  - ")
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self.skip = max(0, self.skip - 1)
        elif tag == "table":
            if self.tables:
                self.tables.pop()
            self.out.append("\n")
        elif tag in ("td", "th"):
            if self._data_table():
                self.in_cell = max(0, self.in_cell - 1)
        elif tag in _BLOCKS and tag != "tr":
            self.out.append(" " if self.in_cell else "\n")
            if tag == "pre":
                self.pre = max(0, self.pre - 1)
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and href not in self.out[-1:]:
                self.out.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        # Preformatted lines are marked so text() keeps their indentation.
        self.out.append("\n".join(_PRE + line for line in data.split("\n")) if self.pre else re.sub(r"\s+", " ", data))

    def text(self) -> str:
        lines = [
            line.replace(_PRE, "").rstrip() if _PRE in line else " ".join(line.split())
            for line in "".join(self.out).splitlines()
        ]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def html_to_text(body: str) -> str:
    parser = _HtmlText()
    parser.feed(body)
    parser.close()
    return parser.text()


def _csv_rows(name: str, data: bytes) -> list[list[str]] | None:
    if name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            inner = [n for n in archive.namelist() if n.endswith(".csv")]
            return _csv_rows(inner[0], archive.read(inner[0])) if inner else None
    if name.endswith(".csv"):
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"), newline="")))
    return None


def show(path: Path, *, csv_rows: int = 0) -> str:
    """One message as text."""
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    lines = [f"== {path}"]
    for header in ("From", "To", "Cc", "Date", "Subject"):
        if message.get(header):
            lines.append(f"{header + ':':<9} {' '.join(str(message[header]).split())}")
    tables: list[tuple[str, list[list[str]]]] = []
    for part in message.iter_attachments():
        name = str(part.get_filename() or "unnamed")
        data = part.get_content()
        data = data if isinstance(data, bytes) else str(data).encode()
        rows = _csv_rows(name, data)
        detail = f", {len(rows) - 1:,} rows" if rows else ""
        lines.append(f"Attached: {name} ({len(data) / 1000:,.1f} kB{detail})")
        if rows and csv_rows:
            tables.append((name, rows[: csv_rows + 1]))
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = body.get_content()
        lines += ["", html_to_text(content) if body.get_content_type() == "text/html" else content.rstrip() + "\n"]
    for name, rows in tables:
        lines.append(f"-- first {len(rows) - 1} rows of {name}")
        lines += [" | ".join(row) for row in rows]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("path", nargs="?", type=Path, help="an .eml file or a folder of them")
    parser.add_argument("--all", action="store_true", help="every message in the folder, oldest first")
    parser.add_argument("--csv", type=int, default=0, metavar="N", help="print the first N rows of a CSV attachment")
    args = parser.parse_args(argv)
    path = args.path or Path(os.environ.get("SMTP_CATCHER_DIR") or ".smtp/mail")
    if path.is_dir():
        files = sorted(path.glob("*.eml"))
        if not files:
            print(f"no messages in {path}/", file=sys.stderr)
            return 1
        files = files if args.all else files[-1:]
    elif path.is_file():
        files = [path]
    else:
        print(f"{path} does not exist", file=sys.stderr)
        return 1
    print("\n".join(show(file, csv_rows=args.csv) for file in files), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
