"""Where a cycle's stages leave their outputs for the next stage.

Under Airflow every stage is its own task, often its own process or machine, so what one stage
hands the next (DataFrames, the plan, Salesforce's results) is written under a run-scoped path:
Parquet for frames, JSON for small documents. The path is anything ``pathlib``-like that opens
files — a local ``pathlib.Path``, or Airflow's ``ObjectStoragePath`` (universal_pathlib) for
``s3://``/``gs://``/``file://`` — so this module needs no Airflow import. The command line runs
all stages in one process and keeps the objects in memory (:class:`MemoryWorkspace`); both
satisfy :class:`Workspace`, so the stages cannot tell them apart.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, Protocol, runtime_checkable

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from include.provisioning.errors import MissingArtifactError

__all__ = ["MemoryWorkspace", "MissingArtifactError", "RowFilter", "Workspace"]

ATTRS_KEY = b"provisioning.attrs"
"""Parquet schema metadata key holding a frame's ``attrs`` (JSON)."""


BATCH_ROWS = 20_000
"""Rows a ``BatchFrameCodec`` decodes at a time from a file."""
COPY_CHUNK = 1 << 20
"""Bytes copied at a time from a spooled file into the workspace."""
WRITE_QUEUE = 2
"""Encoded batches waiting for the Parquet writer's thread at most (each some 12 MB of Arrow
for the plan and its parts, at ``PlanCodec``'s 10,000 rows)."""


def _attrs_metadata(frame: pd.DataFrame) -> dict[bytes, bytes]:
    """Parquet schema metadata holding the frame's ``attrs`` (none when it has none)."""
    return attrs_metadata(frame.attrs)


def attrs_metadata(attrs: Mapping[str, Any]) -> dict[bytes, bytes]:
    """Parquet schema metadata holding a frame's ``attrs`` (none when empty): what a file
    workspace writes for a frame with these ``attrs``, and ``read_frame`` gives back."""
    return {ATTRS_KEY: orjson.dumps(attrs, default=_json_default)} if attrs else {}


@runtime_checkable
class PathLike(Protocol):
    """What a workspace root must offer (``pathlib.Path`` and ``ObjectStoragePath`` both do)."""

    def __truediv__(self, other: str) -> Any: ...
    def open(self, mode: str = ...) -> Any: ...
    def exists(self) -> bool: ...
    def mkdir(self, parents: bool = ..., exist_ok: bool = ...) -> None: ...


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


class FrameCodec(Protocol):
    """Turns a stage's output object into a DataFrame for Parquet, and back."""

    def encode(self, value: Any) -> pd.DataFrame: ...
    def decode(self, frame: pd.DataFrame) -> Any: ...


@runtime_checkable
class BatchFrameCodec(FrameCodec, Protocol):
    """A codec for objects too large to hold encoded at once (a million users' plan): a file
    workspace writes each batch as a Parquet row group and reads them back one at a time."""

    schema: pa.Schema
    """Of every batch (a batch whose column is all null must keep the column's type)."""

    def encode_batches(self, value: Any) -> Iterator[pa.Table]:
        """At least one table of ``schema``, each with the whole value's ``attrs`` as its schema
        metadata (``attrs_metadata``): what ``encode`` gives, a batch of rows at a time, still Arrow
        (a file workspace writes each as a Parquet row group, no pandas frame in between)."""
        ...

    def decode_batches(self, frames: Iterable[pd.DataFrame], attrs: Mapping[str, Any]) -> Any: ...

    def value_of(self, value: Any) -> Any:
        """What ``get`` gives back for a ``value`` that was ``put`` (a codec may take a lazier
        form than it decodes to): a memory workspace keeps this."""
        ...


FramePart = Callable[[pd.DataFrame], pd.DataFrame]
"""Cuts a part (a shard's rows) out of an encoded frame, in the codec's layout."""


@runtime_checkable
class TablePart(Protocol):
    """A ``FramePart`` that also cuts its part out of an encoded batch still in Arrow (the rows the
    frame cut keeps, in order, with the part's ``attrs`` as schema metadata): a file workspace's
    ``put`` of a ``BatchFrameCodec`` cuts with ``table`` then, no pandas frame in between."""

    def __call__(self, frame: pd.DataFrame) -> pd.DataFrame: ...
    def table(self, batch: pa.Table) -> pa.Table: ...


RowFilter = tuple[str, Callable[[pd.Series], Any]]
"""``(column, keep)``: the rows of a frame to read, ``keep`` giving a boolean mask (NumPy) from
that column as pandas reads it (e.g. a shard's rows from the Entra ids)."""


class Workspace:
    """Files of one cycle under ``root``: ``<name>.parquet`` frames, ``<name>.json`` documents."""

    holds_objects = False
    """Whether ``get`` gives back the very objects ``put`` was given (nothing is re-read)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def _path(self, name: str) -> Any:
        return self.root / name

    def path(self, name: str) -> Any:
        """The path of ``name`` under the root (for artifacts written by other code, e.g. GX docs)."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self._path(name)

    def has(self, name: str) -> bool:
        return bool(self._path(name).exists())

    def write_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Parquet through ``open()`` so object storage works; written whole, then visible."""
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if frame.attrs:  # small metadata a codec attached (e.g. the plan's held-back reason)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **_attrs_metadata(frame)})
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        self._write(f"{name}.parquet", buffer.getvalue())

    def read_frame(
        self, name: str, columns: Sequence[str] | None = None, *, rows: RowFilter | None = None
    ) -> pd.DataFrame:
        """The frame ``name``; only those of ``columns`` it has, when given (Parquet reads just those),
        and only the ``rows`` kept, when given (a ``RowFilter`` whose column is read even if not in
        ``columns``; the index is then a new ``RangeIndex``).

        The rows are cut while the data is still Arrow: only the kept rows become pandas objects
        (a shard of a million users builds a quarter of the list column's arrays, not all of them)."""
        data = io.BytesIO(self._read(f"{name}.parquet"))
        if columns is not None:
            present = set(pq.read_schema(data).names)
            columns = [c for c in columns if c in present]
        key = rows[0] if rows is not None else None
        wanted = columns if columns is None or key is None or key in columns else [*columns, key]
        table = pq.read_table(data, columns=wanted)
        if rows is not None:
            table = table.filter(pa.array(np.asarray(rows[1](table.column(key).to_pandas()), dtype=bool)))
            if wanted is not columns:
                table = table.drop_columns([key])
        frame = table.to_pandas()
        attrs = (table.schema.metadata or {}).get(ATTRS_KEY)
        if attrs:
            frame.attrs.update(orjson.loads(attrs))
        return frame

    def put(self, name: str, value: Any, codec: FrameCodec, *, parts: Mapping[str, FramePart] | None = None) -> None:
        """Store an object (a plan, results) as Parquet through ``codec``; each of ``parts``
        (artifact name → cut) is stored too, cut from the encoded frame (so ``get`` of a part
        decodes to the part of the object, and the object is encoded once)."""
        if isinstance(codec, BatchFrameCodec):
            self._put_batches(name, codec, value, parts or {})
            return
        frame = codec.encode(value)
        self.write_frame(name, frame)
        for part, cut in (parts or {}).items():
            self.write_frame(part, cut(frame))

    def _put_batches(self, name: str, codec: BatchFrameCodec, value: Any, parts: Mapping[str, FramePart]) -> None:
        cuts: dict[str, FramePart | None] = {name: None, **parts}
        # Spooled to local temporary files, then copied whole to the workspace: a million users'
        # plan and its parts held as bytes until the end took 250 MB (measured). Files named by
        # path, so Arrow writes them itself: through a Python file object every page's write took
        # the GIL back from the encoding thread (a third of the writer thread's samples).
        with tempfile.TemporaryDirectory(prefix="workspace-put-") as spool_dir:
            spools = {each: os.path.join(spool_dir, f"{number}.parquet") for number, each in enumerate(cuts)}
            with _BackgroundWriter(spools, cuts, codec.schema) as writer:
                for batch in codec.encode_batches(value):
                    writer.write(batch)
            for each, spool in spools.items():
                with open(spool, "rb") as source:
                    self._write_from(f"{each}.parquet", source)

    def get(self, name: str, codec: FrameCodec, *, columns: Sequence[str] | None = None) -> Any:
        """The value ``put`` stored. ``columns``: read only these of a batch codec's file (the
        codec decodes the file as it was written before the others existed)."""
        if not isinstance(codec, BatchFrameCodec):
            return codec.decode(self.read_frame(name))
        with self._open(f"{name}.parquet") as handle:
            parquet = pq.ParquetFile(handle)
            wanted = None if columns is None else [c for c in columns if c in parquet.schema_arrow.names]
            batches = (batch.to_pandas() for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=wanted))
            return codec.decode_batches(batches, _attrs(parquet))

    def stream(self, name: str, codec: BatchFrameCodec) -> Iterator[Any]:
        """``get`` a batch of rows at a time: the value of each ``BATCH_ROWS`` rows (each decoded
        with the whole value's ``attrs``), at least one. The file is read as the values are
        taken, so only one batch of the value is in memory (a million users' plan at commit)."""
        with self._open(f"{name}.parquet") as handle:
            parquet = pq.ParquetFile(handle)
            attrs = _attrs(parquet)
            empty = True
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
                empty = False
                yield codec.decode_batches([batch.to_pandas()], attrs)
            if empty:
                yield codec.decode_batches([], attrs)

    def write_json(self, name: str, document: Any) -> None:
        self._write(f"{name}.json", orjson.dumps(document, default=_json_default, option=orjson.OPT_INDENT_2))

    def read_json(self, name: str) -> Any:
        return orjson.loads(self._read(f"{name}.json"))

    def has_json(self, name: str) -> bool:
        return self.has(f"{name}.json")

    def has_frame(self, name: str) -> bool:
        return self.has(f"{name}.parquet")

    def write_bytes(self, name: str, data: bytes) -> Any:
        self._write(name, data)
        return self._path(name)

    def read_bytes(self, name: str) -> bytes:
        return self._read(name)

    def _write(self, name: str, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        with self._path(name).open("wb") as handle:
            handle.write(data)

    def _write_from(self, name: str, source: BinaryIO) -> None:
        """``_write`` of what ``source`` holds, copied a megabyte at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        with self._path(name).open("wb") as handle:
            shutil.copyfileobj(source, handle, COPY_CHUNK)

    def _read(self, name: str) -> bytes:
        with self._open(name) as handle:
            return bytes(handle.read())

    def _open(self, name: str) -> Any:
        """The file ``name`` opened for reading (a context manager)."""
        path = self._path(name)
        if not path.exists():
            raise MissingArtifactError(f"{path} does not exist")
        return path.open("rb")


def _cut(batch: pa.Table, cut: FramePart | None, schema: pa.Schema) -> pa.Table:
    """``cut``'s part of an encoded ``batch`` (the batch itself for none), as a table of ``schema``
    with the part's ``attrs`` as metadata; a cut that is not a ``TablePart`` cuts a pandas frame."""
    if cut is None:
        return batch
    if isinstance(cut, TablePart):
        return cut.table(batch)
    # The frame without the batch's attrs: pandas would deep-copy them into every step of the cut.
    part = cut(batch.to_pandas())
    table = pa.Table.from_pandas(part, schema=schema, preserve_index=False)
    return table.replace_schema_metadata(_attrs_metadata(part) if part.attrs else batch.schema.metadata)


class _BackgroundWriter:
    """Cuts each file's part of every batch and writes it (Parquet row groups, zstd) in a thread
    of its own, so the cuts and the compression (Arrow's, which release the GIL) overlap the
    encoding of the next batch: the encoding thread is the plan task's critical path.

    At most ``WRITE_QUEUE`` batches wait, so memory stays bounded; an error the thread meets is
    raised by the next ``write`` or at the block's end (and the thread is stopped either way).
    Each file's schema (and its metadata: the ``attrs``) is its first batch's."""

    def __init__(self, spools: Mapping[str, str], cuts: Mapping[str, FramePart | None], schema: pa.Schema) -> None:
        """``spools``: each file's local path (written by Arrow, no Python file object);
        ``cuts``: each file's part of a batch (``_cut``: None for the whole batch), of ``schema``."""
        self._spools, self._cuts, self._schema = spools, cuts, schema
        self._queue: queue.Queue[pa.Table | None] = queue.Queue(maxsize=WRITE_QUEUE)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="parquet-writer", daemon=True)

    def __enter__(self) -> _BackgroundWriter:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self._stop()
        if kind is None and self._error is not None:
            raise self._error

    def write(self, batch: pa.Table) -> None:
        """Queue one encoded batch, cut and written for each file (waits while the queue is full)."""
        while self._error is None:
            try:
                self._queue.put(batch, timeout=0.1)
                return
            except queue.Full:  # the thread may have died: look again
                continue
        raise self._error

    def _stop(self) -> None:
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()

    def _run(self) -> None:
        writers: dict[str, pq.ParquetWriter] = {}
        try:
            while (batch := self._queue.get()) is not None:
                for each, cut in self._cuts.items():
                    table = _cut(batch, cut, self._schema)
                    if each not in writers:
                        writers[each] = pq.ParquetWriter(self._spools[each], table.schema, compression="zstd")
                    writers[each].write_table(table)
        except BaseException as exc:  # handed to the encoding thread, which raises it
            self._error = exc
            while self._queue.get() is not None:  # drain until told to stop (``_stop``)
                pass
        finally:
            for writer in writers.values():
                try:
                    writer.close()  # the footer: a failure here is the file's too
                except Exception as exc:  # raised as above
                    self._error = self._error or exc


def _attrs(parquet: pq.ParquetFile) -> dict[str, Any]:
    """The frame ``attrs`` a Parquet file's schema metadata holds (empty when none)."""
    attrs = (parquet.schema_arrow.metadata or {}).get(ATTRS_KEY)
    return orjson.loads(attrs) if attrs else {}


class MemoryWorkspace(Workspace):
    """The same interface over a dict: the CLI runs every stage in one process, so nothing is
    serialised (frames are handed over as they are)."""

    holds_objects = True

    def __init__(self) -> None:
        super().__init__(root=None)
        self._items: dict[str, Any] = {}

    def __repr__(self) -> str:
        return "MemoryWorkspace()"

    def path(self, name: str) -> Any:
        return None

    def has(self, name: str) -> bool:
        return name in self._items

    def write_frame(self, name: str, frame: pd.DataFrame) -> None:
        self._items[f"{name}.parquet"] = frame

    def read_frame(
        self, name: str, columns: Sequence[str] | None = None, *, rows: RowFilter | None = None
    ) -> pd.DataFrame:
        frame = self._get(f"{name}.parquet")
        if rows is not None:
            frame = frame[np.asarray(rows[1](frame[rows[0]]), dtype=bool)]
        return frame if columns is None else frame[[c for c in columns if c in frame]]

    def put(self, name: str, value: Any, codec: FrameCodec, *, parts: Mapping[str, FramePart] | None = None) -> None:
        self._items[f"{name}.parquet"] = codec.value_of(value) if isinstance(codec, BatchFrameCodec) else value
        if parts:  # objects are kept as they are: each part is the decoded cut
            frame = codec.encode(value)
            for part, cut in parts.items():
                self._items[f"{part}.parquet"] = codec.decode(cut(frame))

    def get(self, name: str, codec: FrameCodec, *, columns: Sequence[str] | None = None) -> Any:
        return self._get(f"{name}.parquet")  # the object as put: every column

    def stream(self, name: str, codec: BatchFrameCodec) -> Iterator[Any]:
        yield self._get(f"{name}.parquet")  # already in memory: one batch

    def write_json(self, name: str, document: Any) -> None:
        # Round-trip through JSON so a stage cannot rely on something the file workspace would lose.
        self._items[f"{name}.json"] = orjson.loads(orjson.dumps(document, default=_json_default))

    def read_json(self, name: str) -> Any:
        return self._get(f"{name}.json")

    def write_bytes(self, name: str, data: bytes) -> Any:
        self._items[name] = data
        return None

    def read_bytes(self, name: str) -> bytes:
        return bytes(self._get(name))

    def _get(self, name: str) -> Any:
        if name not in self._items:
            raise MissingArtifactError(f"{name} is not in this cycle's workspace")
        return self._items[name]
