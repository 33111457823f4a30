"""``embed``'s results and files: one ``EmbeddedInput`` per input, the ``.npy`` + index pair or one
Parquet file, read back for ``--resume``, written at the end, and kept in the checkpoint meanwhile.

An input's rows are a still's one vector or a video's one per sampled frame, each with its index
entry (EXIF fields, size, a frame's ``frame_number``); a failed input has a reason instead. The
engine yields rows one by one (``jobs.engines.Embedding``, also the Ray wire); ``grouped`` turns
them into inputs, a video's only once its last frame came, so a checkpoint never holds part of one.

Checkpoint lines (``jobs.checkpoint``): ``{"filepath", "rows": [{"info", "vector"}, ...]}`` (the
vectors as base64 float32) or ``{"filepath", "failure"}``. An older writer wrote one line per row
(``{"filepath", "info", "vector"}``) after a first line counting the rows it kept from the output
(``LEGACY_KEPT``); ``from_checkpoint`` reads those too.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from bioclip_edge.errors import EmbeddingsFileError
from bioclip_edge.runtime.common.files import atomic_writer, write_atomic
from bioclip_edge.runtime.jobs.engines import Embedding
from bioclip_edge.runtime.jobs.fingerprint import check_fingerprint
from bioclip_edge.runtime.jobs.parquet_output import embed_table, embedding_matrix, read_table, write_table

LEGACY_KEPT = "<rows kept from the existing output>"
REMEDY = "use the same bundle and options to extend it, or pass --overwrite to start over"


@dataclass
class EmbeddedInput:
    """One input's rows and their index entries (without the filepath), or why it failed."""

    filepath: str
    vectors: np.ndarray | None = None  # [rows, dim]; None when failed
    infos: list[dict[str, Any]] = field(default_factory=list)
    failure: str | None = None

    @property
    def rows(self) -> int:
        return 0 if self.vectors is None else len(self.vectors)


def grouped(rows: Iterable[Embedding]) -> Iterator[EmbeddedInput]:
    """The engine's rows as inputs: a still (or a failure) at once, a video's frames (rows with a
    ``frame_number``) together once the next input begins or the rows end."""
    frames: list[tuple[np.ndarray, dict[str, Any]]] = []
    name = ""
    for filepath, vector, info, failure in rows:
        if frames and filepath != name:
            yield _input(name, frames)
            frames = []
        if vector is None:
            yield EmbeddedInput(filepath, failure=failure or "failed")
        elif "frame_number" in info:
            name = filepath
            frames.append((vector, info))
        else:
            yield _input(filepath, [(vector, info)])
    if frames:
        yield _input(name, frames)


def _input(filepath: str, rows: list[tuple[np.ndarray, dict[str, Any]]]) -> EmbeddedInput:
    return EmbeddedInput(filepath, np.stack([np.asarray(v, np.float32) for v, _ in rows]), [dict(i) for _, i in rows])


def _inputs(names: list[str], matrix: np.ndarray, infos: list[dict[str, Any]]) -> list[EmbeddedInput]:
    """Index rows as inputs: consecutive rows of one filepath are one input (a video's frames)."""
    out: list[EmbeddedInput] = []
    start = 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            out.append(EmbeddedInput(names[start], matrix[start:i], infos[start:i]))
            start = i
    return out


# --- reading back -------------------------------------------------------------------------------
def read_pair(out: Path, sidecar: Path, fingerprint: dict[str, Any], dtype: str,
              damage: list[str] | None = None) -> list[EmbeddedInput]:
    """The .npy and its index (fingerprint checked): every input with rows, then the failures; none
    when neither file exists. A damaged pair keeps every row both files still hold (said in ``damage``)."""
    have_npy, have_index = out.exists(), sidecar.exists()
    if not (have_npy or have_index):
        return []
    if have_npy != have_index:
        present, missing = (out, sidecar) if have_npy else (sidecar, out)
        raise EmbeddingsFileError(f"{present} exists but {missing} does not, so it cannot be extended; pass --overwrite to start over")
    notes = damage if damage is not None else []
    index, images = _read_index(sidecar, notes)
    check_fingerprint(index["run_fingerprint"], fingerprint, str(sidecar), remedy=REMEDY)
    matrix = _read_rows(out, len(images), dtype, notes)
    if len(matrix) < len(images):
        cut = len(matrix)
        while 0 < cut < len(images) and images[cut]["filepath"] == images[cut - 1]["filepath"]:
            cut -= 1  # a video's frames are kept together or not at all
        notes.append(f"{out}: damaged: cut short, it holds {len(matrix)} of the {len(images)} rows its index lists; "
                     f"the first {cut} are kept and the images of the others are done again")
        images, matrix = images[:cut], matrix[:cut]
    names = [im["filepath"] for im in images]
    infos = [{k: v for k, v in im.items() if k != "filepath"} for im in images]
    failures = [EmbeddedInput(f["filepath"], failure=f.get("reason") or "failed") for f in index.get("failures") or []]
    return _inputs(names, matrix, infos) + failures


def _read_index(path: Path, damage: list[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the index's other fields, its image entries): the entries before any damage."""
    from bioclip_edge.runtime.jobs.json_stream import Damaged, read_document

    try:
        index, entries = read_document(path, "images", needed=("run_fingerprint",))
    except Damaged as exc:
        raise EmbeddingsFileError(f"{path}: the embeddings index is damaged at byte {exc.offset}, before its run fingerprint, "
                                  "so nothing proves how its rows were made; pass --overwrite to start over") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EmbeddingsFileError(f"{path}: cannot read the embeddings index ({exc}); pass --overwrite to start over") from None
    images: list[dict[str, Any]] = []
    try:
        for entry in entries:
            if not isinstance(entry, dict) or "filepath" not in entry:
                raise EmbeddingsFileError(f"{path}: not a bioclip-edge embeddings index (an image entry without a filepath); "
                                          "pass --overwrite to start over")
            images.append(entry)
    except Damaged as exc:
        index.pop("failures", None)  # not reached: failed images are simply tried again
        damage.append(f"{path}: damaged: {'cut short' if exc.cut else 'unreadable'} at byte {exc.offset}; the {len(images)} "
                      "image entries before it are kept, the images after it are done again")
    if "images" not in index and not images and "run_fingerprint" not in index:
        raise EmbeddingsFileError(f"{path}: not a bioclip-edge embeddings index (no 'images' list); pass --overwrite to start over")
    if "run_fingerprint" not in index:
        raise EmbeddingsFileError(f"{path}: holds no run fingerprint (written by an earlier bioclip-edge), so nothing proves "
                                  "its rows match this bundle and options; pass --overwrite to start over")
    return index, images


def _read_rows(path: Path, n: int, dtype: str, damage: list[str]) -> np.ndarray:
    """Up to the first ``n`` rows (more are left by a run killed between the two writes; fewer by a
    file cut short, whose whole rows are kept)."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, stored = read_header(fh)
            offset = fh.tell()
    except (OSError, ValueError) as exc:
        raise EmbeddingsFileError(f"{path}: cannot read the embeddings ({exc}); pass --overwrite to start over") from None
    if len(shape) != 2 or fortran or stored != np.dtype(dtype) or shape[0] < n:
        raise EmbeddingsFileError(f"{path}: holds {stored}{list(shape)} but its index lists {n} {dtype} rows; "
                                  "pass --overwrite to start over")
    row_bytes = shape[1] * stored.itemsize
    whole = min(n, (path.stat().st_size - offset) // row_bytes if row_bytes else n)
    if whole <= 0:
        return np.zeros((0, shape[1]), stored)
    return np.array(np.memmap(path, stored, "r", offset, shape=(whole, shape[1])))


def read_parquet(out: Path, fingerprint: dict[str, Any], dtype: str) -> list[EmbeddedInput]:
    """A Parquet file's inputs with rows, then its failures (null embedding); none when there is no file."""
    if not out.exists():
        return []
    table, meta = read_table(out)
    if "run_fingerprint" not in meta:
        raise EmbeddingsFileError(f"{out}: holds no run fingerprint, so nothing proves its rows match this bundle "
                                  "and options; pass --overwrite to start over")
    check_fingerprint(meta["run_fingerprint"], fingerprint, str(out), remedy=REMEDY)
    names, failures = table.column("filepath").to_pylist(), table.column("failure").to_pylist()
    infos = [json.loads(text) for text in table.column("info").to_pylist()]
    ok = [i for i, failure in enumerate(failures) if not failure]
    vectors = embedding_matrix(table.column("embedding"))[ok].astype(dtype)
    failed = [EmbeddedInput(names[i], failure=failures[i]) for i in range(len(names)) if failures[i]]
    return _inputs([names[i] for i in ok], vectors, [infos[i] for i in ok]) + failed


# --- writing ------------------------------------------------------------------------------------
def write_pair(out: Path, sidecar: Path, results: Iterable[EmbeddedInput], meta: dict[str, Any], dim: int, dtype: str) -> None:
    """The .npy first, then its index: a kill between the two leaves an index that still describes
    the first rows of the .npy, which is all the next ``--resume`` reads.

    Both are streamed from ``results`` (re-iterable: the runner's stored results), one input at a
    time, so a million-image run never holds its embeddings (3 GB at 768 float32 dimensions) or its
    index entries in memory. The bytes are those ``np.save`` and ``json.dumps(indent=1)`` write."""
    rows = sum(r.rows for r in results)
    with atomic_writer(out) as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                                                  "fortran_order": False, "shape": (rows, dim)})
        for r in results:
            if r.vectors is not None:
                fh.write(np.ascontiguousarray(r.vectors, dtype=dtype).tobytes())
    images = ({"filepath": r.filepath, **info} for r in results if r.vectors is not None for info in r.infos)
    failures = ({"filepath": r.filepath, "reason": r.failure} for r in results if r.vectors is None)
    with atomic_writer(sidecar) as fh:
        for chunk in _index_chunks(meta, images, failures):
            fh.write(chunk.encode("utf-8"))


def _index_chunks(meta: dict[str, Any], images: Iterable[dict[str, Any]], failures: Iterable[dict[str, Any]]) -> Iterator[str]:
    """``json.dumps({**meta, "images": [...], "failures": [...]}, indent=1) + "\n"``, piece by piece."""
    head = json.dumps({**meta, "images": [], "failures": []}, indent=1, ensure_ascii=False)
    head = head[: head.rindex('"images": []')]
    yield head
    for i, (key, entries) in enumerate((("images", images), ("failures", failures))):
        yield ("" if i == 0 else ",\n ") + f'"{key}": ['
        first = True
        for entry in entries:
            text = json.dumps(entry, indent=1, ensure_ascii=False).replace("\n", "\n  ")
            yield ("\n  " if first else ",\n  ") + text
            first = False
        yield "]" if first else "\n ]"
    yield "\n}\n"


def write_parquet(out: Path, results: list[EmbeddedInput], meta: dict[str, Any], dim: int, dtype: str) -> None:
    """Every row (kept, then new), then the failures (null embedding), atomically."""
    ok = [r for r in results if r.vectors is not None]
    failed = [r for r in results if r.vectors is None]
    parts = [np.asarray(r.vectors, dtype).reshape(-1, dim) for r in ok] + [np.zeros((len(failed), dim), dtype)]
    names = [r.filepath for r in ok for _ in r.infos] + [r.filepath for r in failed]
    reasons = [None] * sum(r.rows for r in ok) + [r.failure or "failed" for r in failed]
    infos = [info for r in ok for info in r.infos] + [{} for _ in failed]
    write_table(out, embed_table(names, np.concatenate(parts), reasons, infos, dim, dtype, meta))


# --- checkpoint ---------------------------------------------------------------------------------
def to_checkpoint(result: EmbeddedInput) -> dict[str, Any]:
    if result.vectors is None:
        return {"filepath": result.filepath, "failure": result.failure}
    return {"filepath": result.filepath, "rows": [{"info": info, "vector": _b64(vector)} for vector, info in zip(result.vectors, result.infos)]}


def from_checkpoint(rows: list[dict[str, Any]], output: Callable[[], list[EmbeddedInput]]) -> list[EmbeddedInput]:
    """Checkpoint lines back into inputs; ``output()``: the finished output's, for an older writer's count of them."""
    results: list[EmbeddedInput] = []
    if rows and rows[0].get("filepath") == LEGACY_KEPT:
        results += _first_rows(output(), int(rows[0].get("kept", 0)))
        rows = rows[1:]
    for row in rows:
        if "failure" in row:
            results.append(EmbeddedInput(row["filepath"], failure=row["failure"] or "failed"))
        elif "rows" in row:
            results.append(EmbeddedInput(row["filepath"], np.stack([_vector(r["vector"]) for r in row["rows"]]),
                                         [r.get("info", {}) for r in row["rows"]]))
        elif "vector" in row:  # an older writer's line: one row, a video's frames on consecutive lines
            last = results[-1] if results and results[-1].filepath == row["filepath"] and results[-1].vectors is not None else None
            vector, info = _vector(row["vector"])[None], row.get("info", {})
            if last is None:
                results.append(EmbeddedInput(row["filepath"], vector, [info]))
            else:
                last.vectors, last.infos = np.concatenate([last.vectors, vector]), last.infos + [info]
    return results


def _first_rows(inputs: list[EmbeddedInput], n: int) -> list[EmbeddedInput]:
    """The inputs holding the first ``n`` rows of an output."""
    out, count = [], 0
    for result in inputs:
        if result.vectors is None or count + result.rows > n:
            break
        out.append(result)
        count += result.rows
    return out


def _b64(vector: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vector, np.float32).tobytes()).decode("ascii")


def _vector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.float32)
