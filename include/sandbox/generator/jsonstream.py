"""Write a fixture as one JSON object whose big arrays are streamed, one record per line.

A million-user tenant is several hundred MB of JSON; building it as one Python object first
would need gigabytes. Records are serialised with orjson as they are produced and written in
blocks. One record per line also keeps the files greppable and diffable. The file appears
under its final name only when complete, so a reader (or a cached benchmark) never sees half
a fixture.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

_BLOCK = 4096


class Records:
    """Marks an iterable of JSON objects to be streamed as an array, one per line."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def _write_array(fh: Any, records: Records) -> None:
    dumps = orjson.dumps
    fh.write(b"[")
    separator = b"\n"
    block: list[bytes] = []
    for record in records:
        block.append(dumps(record))
        if len(block) >= _BLOCK:
            fh.write(separator + b",\n".join(block))
            separator, block = b",\n", []
    if block:
        fh.write(separator + b",\n".join(block))
        separator = b",\n"
    fh.write(b"\n]" if separator == b",\n" else b"]")


def write_document(path: Path, fields: Iterable[tuple[str, Any]]) -> None:
    """Write ``{key: value, ...}``; ``Records`` values are streamed, others pretty-printed."""
    tmp = path.with_name(f".{path.name}.partial")
    with tmp.open("wb") as fh:
        separator = b"{\n"
        for key, value in fields:
            fh.write(separator + orjson.dumps(key) + b": ")
            if isinstance(value, Records):
                _write_array(fh, value)
            else:
                fh.write(orjson.dumps(value, option=orjson.OPT_INDENT_2))
            separator = b",\n"
        fh.write(b"\n}\n" if separator == b",\n" else b"{}\n")
    os.replace(tmp, path)
