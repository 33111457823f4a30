"""The label-matrix file: one uncompressed .npz that opens memory-mapped.

Layout (a plain zip, so ``numpy.load`` reads it too):
- ``matrix.npy``: row-major [N, dim] float32, float16 or int8;
- ``scales.npy``: [N] float32 per-row scales (int8 only: row = int8 * scale);
- ``col_<name>.npy``: uint8 UTF-8 text of one column (label names, taxonomy, common names),
  the N values joined by NUL bytes;
- ``meta.json``: format version, shape, dtype, text recipe, columns, and the bundle the matrix
  belongs to (model id, architecture, embed_dim, text-tower sha256, logit scale).

Whatever its name, a label file is recognised by its first four bytes, the zip local-header
signature ``PK\x03\x04`` (:func:`is_label_file`): ``labels build --out tol-labels`` writes the
name as given, and ``classify --labels tol-labels`` must not mistake it for a text list.

Members are stored, never compressed, and each array's data starts on a 64-byte boundary, so
``np.memmap`` maps the matrix in place: opening the 867k x 768 BioCLIP 2 matrix touches a few
kilobytes, and scoring pages in one block at a time. Files are written to a temporary name and
renamed, so a crash never leaves a half-written matrix under the final name.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.common.files import atomic_writer

FORMAT = "bioclip-edge-labels"
FORMAT_VERSION = 1
META = "meta.json"
MATRIX = "matrix.npy"
SCALES = "scales.npy"
COLUMN_PREFIX = "col_"
DTYPES = {"fp32": np.float32, "fp16": np.float16, "int8": np.int8}
ALIGN = 64
ZIP_SIGNATURE = b"PK\x03\x04"  # every label file starts with a zip local-file header
_PAD_EXTRA_ID = 0xB1E0  # a private zip extra-field id, used only to pad headers for alignment


class LabelFileError(UserError, ValueError):
    """A label-matrix file that cannot be used; names the file and what to do."""


def is_label_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a file that starts like a label matrix (a zip), whatever its name.

    Reads four bytes, so ``--labels`` can tell a matrix from a text list without trusting the
    suffix; the full checks happen in :func:`read_label_file`.
    """
    try:
        if not Path(path).is_file():  # a folder, a pipe (reading would block), nothing there
            return False
        with open(path, "rb") as fh:
            return fh.read(len(ZIP_SIGNATURE)) == ZIP_SIGNATURE
    except (OSError, ValueError):  # no permission, a name too long or with a NUL: not a file we can read
        return False


def dtype_name(dtype: np.dtype) -> str:
    for name, dt in DTYPES.items():
        if np.dtype(dt) == np.dtype(dtype):
            return name
    raise ValueError(f"unsupported label-matrix dtype {dtype}")


def quantize_rows(block: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray | None]:
    """fp32 rows -> stored rows (and per-row scales for int8: symmetric, max |x| -> 127)."""
    block = np.asarray(block, dtype=np.float32)
    if dtype == "int8":
        scales = np.abs(block).max(axis=1) / 127.0
        safe = np.where(scales > 0, scales, 1.0).astype(np.float32)
        q = np.clip(np.rint(block / safe[:, None]), -127, 127).astype(np.int8)
        return q, scales.astype(np.float32)
    return block.astype(DTYPES[dtype]), None


class StringColumn:
    """N strings stored as NUL-joined UTF-8 bytes; decoded lazily (867k names cost nothing until asked)."""

    def __init__(self, blob: np.ndarray, n: int):
        self._blob = blob
        self._n = n
        self._values: list[str] | None = None
        self._starts: np.ndarray | None = None

    @classmethod
    def from_values(cls, values: list[str]) -> "StringColumn":
        col = cls(np.frombuffer(encode_column(values), dtype=np.uint8), len(values))
        col._values = [str(v).replace("\x00", "") for v in values]
        return col

    def __len__(self) -> int:
        return self._n

    def values(self) -> list[str]:
        if self._values is None:
            values = bytes(self._blob).decode("utf-8").split("\x00")
            self._values = values if self._n else []
        return self._values

    def __getitem__(self, index: int) -> str:
        if self._values is not None:
            return self._values[index]
        if self._starts is None:
            seps = np.flatnonzero(np.asarray(self._blob) == 0)
            self._starts = np.concatenate([[0], seps + 1, [len(self._blob) + 1]])
        i = range(self._n)[index]
        return bytes(self._blob[self._starts[i] : self._starts[i + 1] - 1]).decode("utf-8")

    def take(self, indices: Iterable[int]) -> list[str]:
        return [self[int(i)] for i in indices]


def encode_column(values: list[str]) -> bytes:
    return "\x00".join(str(v).replace("\x00", "") for v in values).encode("utf-8")


class _Writer:
    """Writes members of an uncompressed zip with 64-byte-aligned array data."""

    def __init__(self, stream: BinaryIO):
        self.zf = zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def _open(self, name: str, header_len: int):
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_STORED
        base = self.zf.fp.tell() + 30 + len(name.encode("utf-8")) + 20 + 4  # +zip64 extra, +our pad header
        pad = (-(base + header_len)) % ALIGN
        info.extra = struct.pack("<HH", _PAD_EXTRA_ID, pad) + b"\x00" * pad
        return self.zf.open(info, "w", force_zip64=True)

    def array(self, name: str, shape: tuple[int, ...], dtype: np.dtype, chunks: Iterable[np.ndarray]) -> None:
        header = _npy_header(shape, np.dtype(dtype))
        with self._open(name, len(header)) as fh:
            fh.write(header)
            written = 0
            for chunk in chunks:
                chunk = np.ascontiguousarray(chunk, dtype=dtype)
                fh.write(memoryview(chunk).cast("B"))
                written += chunk.shape[0] if chunk.ndim else 1
        rows = shape[0] if shape else 1
        if written != rows:
            raise ValueError(f"{name}: wrote {written} rows, expected {rows}")

    def raw(self, name: str, data: bytes) -> None:
        with self._open(name, 0) as fh:
            fh.write(data)

    def close(self) -> None:
        self.zf.close()


def _npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    import io

    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": tuple(int(s) for s in shape)}
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue()


def write_label_file(
    path: str | os.PathLike,
    shape: tuple[int, int],
    dtype: str,
    row_blocks: Iterable[np.ndarray],
    columns: dict[str, list[str]],
    meta: dict[str, Any],
) -> Path:
    """Write a label file from fp32 (or already stored-dtype) row blocks, atomically."""
    path = Path(path)
    n, dim = shape
    if n < 1:
        raise LabelFileError(f"{path}: refusing to write a label matrix with no labels")
    for name, values in columns.items():
        if len(values) != n:
            raise ValueError(f"column {name!r} has {len(values)} values for {n} labels")
    path.parent.mkdir(parents=True, exist_ok=True)
    scales: list[np.ndarray] = []

    def stored_blocks() -> Iterator[np.ndarray]:
        for block in row_blocks:
            block = np.asarray(block)
            if block.ndim != 2 or block.shape[1] != dim:
                raise ValueError(f"row block of shape {block.shape} does not fit a [{n}, {dim}] matrix")
            q, s = quantize_rows(block, dtype)
            if s is not None:
                scales.append(s)
            yield q

    with atomic_writer(path) as fh:  # a kill leaves the previous file, never half a matrix
        writer = _Writer(fh)
        try:
            writer.array(MATRIX, (n, dim), DTYPES[dtype], stored_blocks())
            if dtype == "int8":
                writer.array(SCALES, (n,), np.float32, [np.concatenate(scales)])
            for name, values in columns.items():
                blob = np.frombuffer(encode_column(values), dtype=np.uint8)
                writer.array(f"{COLUMN_PREFIX}{name}.npy", blob.shape, np.uint8, [blob])
            full_meta = {"format": FORMAT, "version": FORMAT_VERSION, "n": n, "dim": dim, "dtype": dtype,
                         "columns": list(columns), **meta}
            writer.raw(META, json.dumps(full_meta, indent=1, ensure_ascii=False).encode("utf-8"))
        finally:
            writer.close()
    return path


class LabelFile:
    """An opened label file: memory-mapped matrix and scales, lazy columns, parsed meta."""

    def __init__(self, path: Path, meta: dict[str, Any], matrix: np.ndarray, scales: np.ndarray | None, columns: dict[str, StringColumn]):
        self.path, self.meta, self.matrix, self.scales, self.columns = path, meta, matrix, scales, columns


def read_label_file(path: str | os.PathLike) -> LabelFile:
    path = Path(path)
    if not path.is_file():
        raise LabelFileError(f"{path}: no such label-matrix file; build one with 'bioclip-edge labels build' or 'labels import'")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise LabelFileError(f"{path}: not a bioclip-edge label matrix ({exc}); the file is corrupt or truncated: rebuild it") from None
    with zf:
        names = set(zf.namelist())
        if META not in names or MATRIX not in names:
            raise LabelFileError(f"{path}: not a bioclip-edge label matrix (no {META}/{MATRIX} inside); build one with 'bioclip-edge labels build'")
        try:
            meta = json.loads(zf.read(META).decode("utf-8"))
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise LabelFileError(f"{path}: its {META} is unreadable ({exc}); the file is corrupt: rebuild it") from None
        _check_meta(path, meta)
        matrix = _map_array(path, zf, MATRIX)
        scales = _map_array(path, zf, SCALES) if meta["dtype"] == "int8" else None
        columns = {}
        for name in meta.get("columns", []):
            member = f"{COLUMN_PREFIX}{name}.npy"
            if member not in names:
                raise LabelFileError(f"{path}: column {name!r} named in {META} is missing; the file is corrupt: rebuild it")
            columns[name] = StringColumn(_map_array(path, zf, member), meta["n"])
    n, dim = meta["n"], meta["dim"]
    if matrix.shape != (n, dim) or matrix.dtype != np.dtype(DTYPES[meta["dtype"]]):
        raise LabelFileError(f"{path}: matrix is {matrix.dtype}{list(matrix.shape)} but {META} says {meta['dtype']}[{n}, {dim}]; rebuild the file")
    if scales is not None and scales.shape != (n,):
        raise LabelFileError(f"{path}: int8 scales have shape {list(scales.shape)}, expected [{n}]; rebuild the file")
    return LabelFile(path, meta, matrix, scales, columns)


def _check_meta(path: Path, meta: Any) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise LabelFileError(f"{path}: not a bioclip-edge label matrix (format {meta.get('format') if isinstance(meta, dict) else None!r})")
    if meta.get("version") != FORMAT_VERSION:
        raise LabelFileError(f"{path}: label file version {meta.get('version')!r} is not supported (this bioclip-edge reads {FORMAT_VERSION}); rebuild or upgrade")
    for key in ("n", "dim", "dtype", "recipe", "bundle"):
        if key not in meta:
            raise LabelFileError(f"{path}: {META} lacks {key!r}; the file is corrupt: rebuild it")
    if meta["dtype"] not in DTYPES:
        raise LabelFileError(f"{path}: unknown matrix dtype {meta['dtype']!r}")


def _map_array(path: Path, zf: zipfile.ZipFile, member: str) -> np.ndarray:
    """np.memmap of one stored .npy member, read in place (no copy, no decompression)."""
    try:
        info = zf.getinfo(member)
    except KeyError:
        raise LabelFileError(f"{path}: member {member} is missing; the file is corrupt: rebuild it") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise LabelFileError(f"{path}: {member} is compressed; label files must be stored uncompressed to memory-map (re-save with 'labels subset' or rebuild)")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        local = fh.read(30)
        if len(local) < 30 or local[:4] != ZIP_SIGNATURE:
            raise LabelFileError(f"{path}: broken zip header for {member}; the file is corrupt: rebuild it")
        name_len, extra_len = struct.unpack("<HH", local[26:30])
        start = info.header_offset + 30 + name_len + extra_len
        fh.seek(start)
        try:
            version = np.lib.format.read_magic(fh)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = reader(fh)
        except (ValueError, OSError) as exc:
            raise LabelFileError(f"{path}: {member} has a broken array header ({exc}); rebuild the file") from None
        offset = fh.tell()
    if fortran or dtype.hasobject:
        raise LabelFileError(f"{path}: {member} must be a C-ordered plain array")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if offset + nbytes > size or offset - start + nbytes != info.file_size:
        raise LabelFileError(f"{path}: {member} is truncated ({size} bytes on disk); the copy is incomplete: re-copy or rebuild it")
    if nbytes == 0:
        return np.zeros(shape, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=tuple(shape))
