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
from typing import Any, Protocol, runtime_checkable

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from include.provisioning.errors import MissingArtifactError

__all__ = ["MemoryWorkspace", "MissingArtifactError", "Workspace"]

ATTRS_KEY = b"provisioning.attrs"
"""Parquet schema metadata key holding a frame's ``attrs`` (JSON)."""


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


class Workspace:
    """Files of one cycle under ``root``: ``<name>.parquet`` frames, ``<name>.json`` documents."""

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
            extra = {ATTRS_KEY: orjson.dumps(frame.attrs, default=_json_default)}
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), **extra})
        buffer = io.BytesIO()
        pq.write_table(table, buffer, compression="zstd")
        self._write(f"{name}.parquet", buffer.getvalue())

    def read_frame(self, name: str) -> pd.DataFrame:
        data = self._read(f"{name}.parquet")
        table = pq.read_table(io.BytesIO(data))
        frame = table.to_pandas()
        attrs = (table.schema.metadata or {}).get(ATTRS_KEY)
        if attrs:
            frame.attrs.update(orjson.loads(attrs))
        return frame

    def put(self, name: str, value: Any, codec: FrameCodec) -> None:
        """Store an object (a plan, results) as Parquet through ``codec``."""
        self.write_frame(name, codec.encode(value))

    def get(self, name: str, codec: FrameCodec) -> Any:
        return codec.decode(self.read_frame(name))

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

    def _read(self, name: str) -> bytes:
        path = self._path(name)
        if not path.exists():
            raise MissingArtifactError(f"{path} does not exist")
        with path.open("rb") as handle:
            return handle.read()


class MemoryWorkspace(Workspace):
    """The same interface over a dict: the CLI runs every stage in one process, so nothing is
    serialised (frames are handed over as they are)."""

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

    def read_frame(self, name: str) -> pd.DataFrame:
        return self._get(f"{name}.parquet")

    def put(self, name: str, value: Any, codec: FrameCodec) -> None:
        self._items[f"{name}.parquet"] = value

    def get(self, name: str, codec: FrameCodec) -> Any:
        return self._get(f"{name}.parquet")

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
