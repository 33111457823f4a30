"""Parquet outputs: classify results (one row per image, top-k as lists) and embeddings (one row
per image, a fixed-size float list), for lakehouses, pandas, DuckDB and Ray Data.

Why Parquet beside the camera-trap formats: an archive of millions of images wants a columnar
file that tools read without parsing JSON, with types (``embedding`` is a
``fixed_size_list<float32>[dim]``, readable straight into a matrix). The run's metadata (model,
variant, backend, decode, ``run_fingerprint``) is stored as JSON in the schema's key-value metadata
under ``bioclip_edge``, so ``--resume`` can prove the file was made the same way.

Classify tables carry, besides flat columns (``filepath``, ``labels``, ``scores``, ``indices``,
``failure``, EXIF fields, ``width``, ``height``, ``run``), a ``record`` column: the exact record as
JSON Lines would write it (``records.stored``: its kind is not written). ``--resume`` reads the records back from it, and any field without a
column of its own (``--detections`` boxes, video frames, sequences) is there.

pyarrow is the ``parquet`` extra; without it a ``.parquet`` output is refused before any work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bioclip_edge.errors import OptionError, PreviousOutputError
from bioclip_edge.runtime.common.files import atomic_writer
from bioclip_edge.runtime.jobs.records import RecordFields, stored

META_KEY = b"bioclip_edge"
EXIF_COLUMNS = ("datetime", "make", "model")
SIZE_COLUMNS = ("width", "height")
INSTALL_HINT = 'pip install "bioclip-edge[parquet]"'
# classify's: no dictionary pages, so the ``record`` column's pages are PLAIN and readable without the footer
# (``parquet_salvage``); zstd makes up the size
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "use_dictionary": False, "data_page_version": "1.0"}


def require_pyarrow() -> Any:
    """``pyarrow``, or an ``OptionError`` (exit 2, before any work) saying how to get it."""
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise OptionError(f"a .parquet output needs pyarrow, which is not installed: {INSTALL_HINT}, "
                          "or choose a .json, .csv or .jsonl output") from None
    return pyarrow


# --- classify -----------------------------------------------------------------------------------
def classify_table(records: Sequence[RecordFields], meta: dict[str, Any] | None = None) -> Any:
    """One row per image; ``meta`` (JSON-ready) goes into the schema metadata."""
    pa = require_pyarrow()
    preds = [r.get("predictions") or [] for r in records]
    columns = {
        "filepath": pa.array([r["filepath"] for r in records], pa.string()),
        "labels": pa.array([[p["label"] for p in ps] for ps in preds], pa.list_(pa.string())),
        "scores": pa.array([[float(p["score"]) for p in ps] for ps in preds], pa.list_(pa.float64())),
        "indices": pa.array([[int(p["index"]) for p in ps] for ps in preds], pa.list_(pa.int32())),
        "failure": pa.array([_failure(r) for r in records], pa.string()),
        **{k: pa.array([_text(r.get(k)) for r in records], pa.string()) for k in EXIF_COLUMNS},
        **{k: pa.array([r.get(k) for r in records], pa.int32()) for k in SIZE_COLUMNS},
        "run": pa.array([r.get("run") for r in records], pa.string()),
        "record": pa.array([json.dumps(stored(r), ensure_ascii=False) for r in records], pa.string()),
    }
    fields = [pa.field(name, array.type, nullable=name != "record") for name, array in columns.items()]
    return _with_meta(pa.Table.from_arrays(list(columns.values()), schema=pa.schema(fields)), meta)


def write_classify_parquet(path: str | Path, records: Sequence[RecordFields], meta: dict[str, Any]) -> Path:
    import pyarrow.parquet as pq

    with atomic_writer(path) as fh:
        pq.write_table(classify_table(records, meta), fh, **PARQUET_OPTIONS)
    return Path(path)


def read_classify_records(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metadata, records as stored: ``records.read_back`` gives them their kind) of a classify Parquet file written here."""
    table, meta = read_table(path)
    if "record" not in table.column_names:
        raise PreviousOutputError(f"{path}: a Parquet file without the 'record' column bioclip-edge writes, so it "
                                  "cannot be extended; pass --overwrite to replace it, or choose another --out")
    return meta, [json.loads(text) for text in table.column("record").to_pylist()]


def stream_classify_records(path: Path, fingerprint: dict[str, Any], damage: list[str]) -> Iterator[dict[str, Any]]:
    """Records (as stored) of a classify Parquet file, a row group at a time, after its fingerprint is
    checked; a row group that cannot be read is skipped and said in ``damage``, and a file whose
    footer (schema, row-group index) is damaged is read page by page (``parquet_salvage``)."""
    require_pyarrow()
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001  pyarrow raises several types for a bad file
        from bioclip_edge.runtime.jobs.parquet_salvage import salvage_records

        yield from salvage_records(path, fingerprint, damage, str(exc))
        return
    _checked_meta(path, pf.schema_arrow.metadata or {}, fingerprint)
    if "record" not in pf.schema_arrow.names:
        raise PreviousOutputError(f"{path}: a Parquet file without the 'record' column bioclip-edge writes, so it "
                                  "cannot be extended; pass --overwrite to replace it, or choose another --out")
    lost = []
    for group in range(pf.num_row_groups):
        try:
            texts = pf.read_row_group(group, columns=["record"]).column("record").to_pylist()
        except Exception:  # noqa: BLE001
            lost.append((group, pf.metadata.row_group(group).num_rows))
            continue
        for text in texts:
            yield json.loads(text)
    if lost:
        damage.append(f"{path}: damaged: {len(lost)} row group(s) unreadable (row group {', '.join(str(g) for g, _ in lost)}: "
                      f"{sum(n for _, n in lost)} rows); every intact row is kept and the images whose rows were lost are done again")


def _checked_meta(path: Path, schema_meta: dict[bytes, bytes], fingerprint: dict[str, Any]) -> dict[str, Any]:
    from bioclip_edge.runtime.jobs.fingerprint import REMEDY, check_fingerprint
    from bioclip_edge.runtime.jobs.salvage import foreign, older

    raw = schema_meta.get(META_KEY)
    if raw is None:
        raise foreign(path, f"a Parquet file without the '{META_KEY.decode()}' metadata bioclip-edge writes")
    meta = json.loads(raw)
    if "run_fingerprint" not in meta:
        raise older(path)
    check_fingerprint(meta["run_fingerprint"], fingerprint, str(path), remedy=REMEDY)
    return meta


# --- embed --------------------------------------------------------------------------------------
def embed_table(filepaths: Sequence[str], vectors: np.ndarray | None, failures: Sequence[str | None],
                infos: Sequence[dict[str, Any]], dim: int, dtype: str = "float32", meta: dict[str, Any] | None = None) -> Any:
    """One row per image: ``embedding`` null where ``failure`` says why; ``vectors`` [n, dim], any
    row of a failed image ignored."""
    pa = require_pyarrow()
    n = len(filepaths)
    values = np.zeros((n, dim), dtype) if vectors is None else np.asarray(vectors, dtype).reshape(n, dim)
    value_type = pa.float16() if dtype == "float16" else pa.float32()
    mask = np.array([bool(f) for f in failures], dtype=bool)
    flat = pa.array(values.reshape(-1), type=value_type)
    embedding = pa.FixedSizeListArray.from_arrays(flat, dim, mask=pa.array(mask)) if n else pa.array([], pa.list_(value_type, dim))
    columns = {
        "filepath": pa.array(list(filepaths), pa.string()),
        "embedding": embedding,
        "failure": pa.array([f or None for f in failures], pa.string()),
        **{k: pa.array([_text(i.get(k)) for i in infos], pa.string()) for k in EXIF_COLUMNS},
        **{k: pa.array([i.get(k) for i in infos], pa.int32()) for k in SIZE_COLUMNS},
        "info": pa.array([json.dumps(i, ensure_ascii=False) for i in infos], pa.string()),
    }
    return _with_meta(pa.table(columns), meta)


def embedding_matrix(column: Any) -> np.ndarray:
    """An ``embedding`` column as [rows, dim]; a null row (a failed image) comes back as zeros."""
    array = column.combine_chunks() if hasattr(column, "combine_chunks") else column
    dim = array.type.list_size
    if len(array) == 0:
        return np.zeros((0, dim), np.float32)
    values = array.values.to_numpy(zero_copy_only=False)  # every slot, nulls' included (``flatten`` drops them)
    matrix = np.array(values[array.offset * dim:(array.offset + len(array)) * dim]).reshape(len(array), dim)
    matrix[array.is_null().to_numpy(zero_copy_only=False)] = 0  # a null's slot holds whatever the file held
    return matrix


# --- shared -------------------------------------------------------------------------------------
def write_table(path: str | Path, table: Any) -> Path:
    """Atomically: a reader (or a killed run) sees the old file or the new one."""
    import pyarrow.parquet as pq

    with atomic_writer(path) as fh:
        pq.write_table(table, fh, compression="zstd")
    return Path(path)


def read_table(path: Path) -> tuple[Any, dict[str, Any]]:
    """(table, bioclip-edge metadata) of a Parquet file; a clear error for anything else."""
    require_pyarrow()
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001  pyarrow raises several types for a bad file
        raise PreviousOutputError(f"{path}: cannot read it as Parquet ({exc}); pass --overwrite to replace it, "
                                  "or choose another --out") from None
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise PreviousOutputError(f"{path}: not written by bioclip-edge (no '{META_KEY.decode()}' metadata), so nothing proves "
                                  "how it was made; pass --overwrite to replace it, or choose another --out")
    return table, json.loads(raw)


def _with_meta(table: Any, meta: dict[str, Any] | None) -> Any:
    if meta is None:
        return table
    return table.replace_schema_metadata({**(table.schema.metadata or {}), META_KEY: json.dumps(meta, ensure_ascii=False).encode()})


def _failure(record: RecordFields) -> str | None:
    reasons = ([record["md_failure"]] if record.get("md_failure") else []) + list(record.get("failures") or [])
    return "; ".join(reasons) or None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
