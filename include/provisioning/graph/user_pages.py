"""The Graph user records an extraction keeps, held page by page as Arrow columns.

A full read of a 1,000,000-user tenant keeps about 900,000 users between the page that lists them
and the end of the read (who is wanted is known only once every assignment is read, and the
listing runs alongside). Held as the parsed JSON, each user is a dict of a dozen Python strings,
about 1.3 KB: 1.4 GiB at 1,000,000 users, the bulk of extract's 2.1 GiB peak. Here each page is
cut into its columns as it arrives (the attributes the frame needs, nothing else) and each column
of text or booleans becomes an Arrow array (one buffer, tens of bytes a value); the dicts die with
their page. The USERS frame then takes its rows from these columns (``take``) in the order it
wants, so no per-user Python object is made for the kept attributes.

A column holding anything else on a page (a list, an object, a number: directory extensions and
properties such as ``businessPhones`` may) stays that page's Python list, and the column is handed
back as Python values, exactly what the parsed JSON held. Values come back as ``frame.columns_frame``
made them from the records: a key Graph left out reads as None.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from include.provisioning.graph.frame import attribute_columns

TEXT = pa.large_string()
"""The Arrow type of text columns: what pandas writes a column of Python strings as."""


def _arrow_column(values: list[Any]) -> pa.Array | list[Any]:
    """``values`` as an Arrow array when they are all text (or null), all booleans (or null) or
    all null; otherwise the list itself (converted, other values could change: an object gains its missing
    keys as nulls, an integer next to a null becomes a float)."""
    try:  # the usual column, all text: one pass in Arrow instead of a type check in Python first
        text = pa.array(values, type=TEXT)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a value that is not text (JSON has no bytes)
        text = None
    if text is not None and text.null_count < len(values):
        return text
    kinds = {type(value) for value in values}
    kinds.discard(type(None))
    if not kinds:
        return pa.nulls(len(values))
    if kinds == {str}:
        return pa.array(values, type=TEXT)
    if kinds == {bool}:
        return pa.array(values, type=pa.bool_())
    return values


class _Page:
    """One page's users: their ids and one column per attribute (Arrow array or Python list)."""

    __slots__ = ("columns", "ids")

    def __init__(self, ids: pa.Array, columns: list[pa.Array | list[Any]]) -> None:
        self.ids = ids
        self.columns = columns

    def __len__(self) -> int:
        return len(self.ids)

    def filter(self, mask: pa.Array) -> _Page:
        keep = mask.to_pylist() if any(isinstance(c, list) for c in self.columns) else None
        columns = [
            c.filter(mask) if not isinstance(c, list) else [v for v, k in zip(c, keep or (), strict=True) if k]
            for c in self.columns
        ]
        return _Page(self.ids.filter(mask), columns)


class UserPages:
    """The users read so far, ``attributes`` of each (``frame.graph_attributes`` names).

    A user read twice keeps the later record, as a dict keyed by id would."""

    def __init__(self, attributes: Sequence[str]) -> None:
        self.attributes = list(attributes)
        self._pages: list[_Page] = []
        self._count = 0

    def __len__(self) -> int:
        """Users held (a user read twice counts twice; reads never do that in practice)."""
        return self._count

    def add(self, records: Iterable[Mapping[str, Any]], wanted: Collection[str] | None = None) -> None:
        """Keep the users of one page of Graph records (those without an ``id`` are skipped);
        only those in ``wanted`` when it is given."""
        kept: list[Mapping[str, Any]] = []
        ids: list[str] = []
        for record in records:
            user_id = record.get("id")
            if not user_id:
                continue
            user_id = str(user_id)
            if wanted is not None and user_id not in wanted:
                continue
            kept.append(record)
            ids.append(user_id)
        if not ids:
            return
        columns = [_arrow_column(column) for column in attribute_columns(kept, self.attributes)]
        self._pages.append(_Page(pa.array(ids, type=TEXT), columns))
        self._count += len(ids)

    def keep_only(self, wanted: Collection[str]) -> None:
        """Forget every user not in ``wanted``."""
        if not self._pages:
            return
        # One is_in over all ids: each call hashes the whole value set again.
        mask = pc.is_in(self._ids(), value_set=pa.array(list(wanted), type=TEXT))
        pages: list[_Page] = []
        start = 0
        for page in self._pages:
            pages.append(page.filter(mask.slice(start, len(page))))
            start += len(page)
        self._pages = [page for page in pages if len(page)]
        self._count = sum(len(page) for page in self._pages)

    def missing(self, ids: Collection[str]) -> list[str]:
        """Those of ``ids`` not held."""
        if not self._pages:
            return list(ids)
        asked = pa.array(list(ids), type=TEXT)
        held = pc.is_in(asked, value_set=self._ids())
        return asked.filter(pc.invert(held)).to_pylist()

    def _ids(self) -> pa.Array:
        return pa.concat_arrays([page.ids for page in self._pages]) if self._pages else pa.array([], type=TEXT)

    def positions(self, ids: Sequence[str]) -> pa.Array:
        """Where each of ``ids`` is held (the latest read of it), null where it is not: what
        ``take`` is given."""
        held = self._ids()
        # index_in finds the first occurrence: look in the reversed ids so the latest read wins.
        backwards = pc.index_in(pa.array(ids, type=TEXT), value_set=held[::-1])
        return pc.subtract(pa.scalar(len(held) - 1, pa.int64()), backwards.cast(pa.int64()))

    def take(self, positions: pa.Array) -> dict[str, pa.ChunkedArray | list[Any]]:
        """Each attribute's values at ``positions`` (``positions``' order; null → None): an Arrow
        array when every page held it as Arrow of one type (or all null), else Python values."""
        out: dict[str, pa.ChunkedArray | list[Any]] = {}
        for index, name in enumerate(self.attributes):
            parts = [page.columns[index] for page in self._pages]
            kinds = {part.type for part in parts if not isinstance(part, list)} - {pa.null()}
            if all(not isinstance(part, list) for part in parts) and len(kinds) <= 1:
                kind = kinds.pop() if kinds else pa.null()
                column = pa.chunked_array([part.cast(kind) for part in parts], type=kind)
                out[name] = column.take(positions)
                continue
            values: list[Any] = []
            for part in parts:
                values += part if isinstance(part, list) else part.to_pylist()
            out[name] = [None if at is None else values[at] for at in positions.to_pylist()]
        return out
