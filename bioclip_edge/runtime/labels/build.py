"""Build a label matrix from a species CSV or a plain list, resumably.

Large builds (hundreds of thousands of labels, 80 templates each) run for hours on a CPU, so
the work is cut into chunks whose embeddings are saved as they finish (temp file + rename) in
``<out>.parts/``; a killed build restarts where it stopped, as long as the labels, recipe and
text tower are the same (a key in ``state.json`` says so). The final file is assembled from the
chunks in one streaming pass, and the parts are removed only after it has been renamed into place.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.common.files import atomic_writer, write_atomic
from bioclip_edge.runtime.common.progress import progress_bar
from bioclip_edge.runtime.labels.store import write_label_file
from bioclip_edge.runtime.labels.matrix import _now, bundle_info
from bioclip_edge.runtime.text.recipes import Recipe, embed_texts, get_recipe, tol_text
from bioclip_edge.runtime.labels.taxonomy import NAME_COLUMN, RANKS, TAXONOMY_COLUMNS, binomial, display_name, epithet

log = logging.getLogger(__name__)

COLUMN_ALIASES = {
    "common": "common_name", "common_name": "common_name", "vernacular": "common_name", "vernacular_name": "common_name",
    "species_epithet": "species_epithet", "epithet": "species_epithet", "label": "name", "name": "name",
}


class LabelSourceError(UserError, ValueError):
    """A label list or CSV that cannot be read; names the file and the problem."""


@dataclass(frozen=True)
class LabelTable:
    names: list[str]
    columns: dict[str, list[str]]  # taxonomy columns (kingdom .. species, common_name) when known

    @property
    def has_taxonomy(self) -> bool:
        return all(r in self.columns for r in RANKS)

    def texts(self, recipe: Recipe) -> list[str]:
        """The text each label is embedded as (before the recipe's templates)."""
        if recipe.taxonomic and self.has_taxonomy:
            c = self.columns
            return [
                tol_text([c[r][i] for r in RANKS[:-1]] + [epithet(c["genus"][i], c["species"][i])], c["common_name"][i])
                for i in range(len(self.names))
            ]
        if recipe.taxonomic:
            log.warning("recipe %s wants taxonomy columns; these labels have none, so the plain names are used", recipe.name)
        return list(self.names)


def read_label_source(path: str | os.PathLike) -> LabelTable:
    """A .csv/.tsv with taxonomy (kingdom..species, common_name) or a name column, or a text file, one label a line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LabelSourceError(f"{path}: no such label file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelSourceError(f"{path}: cannot read labels ({exc}); save it as UTF-8 text") from None
    if path.suffix.lower() in (".csv", ".tsv"):
        table = _read_csv(path, text)
    else:
        names = [line.strip() for line in text.splitlines() if line.strip()]
        table = LabelTable(names, {})
    if not table.names:
        raise LabelSourceError(f"{path}: no labels found")
    empty = [i for i, n in enumerate(table.names) if not n]
    if empty:
        raise LabelSourceError(f"{path}: row {empty[0] + 2} has no name and no taxonomy; fill it in or remove it")
    return table


def _read_csv(path: Path, text: str) -> LabelTable:
    dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    rows = list(csv.reader(text.splitlines(), dialect))
    if not rows:
        raise LabelSourceError(f"{path}: empty CSV")
    header = [_column_key(h) for h in rows[0]]
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    for i, r in enumerate(body):
        if len(r) > len(header):
            raise LabelSourceError(f"{path}: row {i + 2} has {len(r)} cells but the header has {len(header)}")
    cols = {h: [(r[j].strip() if j < len(r) else "") for r in body] for j, h in enumerate(header) if h}
    known_ranks = [r for r in RANKS if r in cols or (r == "species" and "species_epithet" in cols)]
    if known_ranks:
        n = len(body)
        tax = {r: cols.get(r, [""] * n) for r in RANKS}
        raw_species = cols.get("species") or cols.get("species_epithet") or [""] * n
        tax["species"] = [binomial(g, s) for g, s in zip(tax["genus"], raw_species)]
        tax["common_name"] = cols.get("common_name", [""] * n)
        names = cols.get("name") or [display_name({r: tax[r][i] for r in RANKS}, tax["common_name"][i]) for i in range(n)]
        return LabelTable(list(names), tax)
    if "name" in cols:
        return LabelTable(cols["name"], {"common_name": cols["common_name"]} if "common_name" in cols else {})
    if len(header) == 1:  # a one-column CSV: the header is the first label unless it is a name header
        return LabelTable([rows[0][0].strip()] + [r[0].strip() for r in body if r], {})
    raise LabelSourceError(
        f"{path}: no label columns; use a 'name' column or taxonomy columns ({', '.join(TAXONOMY_COLUMNS)})"
    )


def _column_key(header: str) -> str:
    key = header.strip().lower().replace(" ", "_").replace("-", "_")
    return COLUMN_ALIASES.get(key, key)


def build_label_matrix(bundle, table: LabelTable, out: str | os.PathLike, recipe: str = "plain", dtype: str = "fp16",
                       precision: str = "fp32", options=None, chunk_texts: int = 8192, batch_size: int = 256,
                       progress: bool = True, source: str = "", overwrite: bool = False) -> Path:
    """Embed every label with the bundle's text tower and write the matrix to ``out``, named as given.

    An existing ``out`` is replaced only with ``overwrite``: the check runs before the text tower
    loads, so a build that would be refused costs nothing.
    """
    from bioclip_edge.runtime.common.target import check_output_target
    from bioclip_edge.runtime.inference.session import SessionOptions
    from bioclip_edge.runtime.text.encoder import TextEncoder

    out = check_output_target(out, overwrite=overwrite, what="label file")
    rec = get_recipe(recipe)
    encoder = TextEncoder(bundle, precision, options or SessionOptions())
    texts = table.texts(rec)
    per_chunk = max(1, chunk_texts // len(rec.templates))
    chunks = [(i, texts[s : s + per_chunk]) for i, s in enumerate(range(0, len(texts), per_chunk))]
    parts = out.with_name(out.name + ".parts")
    key = _build_key(texts, rec.name, encoder.fingerprint, per_chunk)
    _prepare_parts(parts, key)
    bar = progress_bar(len(texts), "label", "building labels", enabled=bool(progress))
    try:
        for i, chunk in chunks:
            part = parts / f"chunk_{i:06d}.npy"
            if not part.is_file():
                with atomic_writer(part) as fh:
                    np.save(fh, np.asarray(embed_texts(encoder, chunk, rec, batch_size=batch_size), dtype=np.float32))
            bar.update(len(chunk))
    finally:
        bar.close()
    columns = {NAME_COLUMN: table.names, **table.columns}
    meta = {"recipe": rec.name, "bundle": bundle_info(bundle, encoder.variant), "created_at": _now(),
            "source": {"kind": "build", "file": source, "labels": len(texts)}, "note": ""}
    blocks = (np.load(parts / f"chunk_{i:06d}.npy", mmap_mode="r") for i, _ in chunks)
    written = write_label_file(out, (len(texts), encoder.dim), dtype, blocks, columns, meta)
    shutil.rmtree(parts, ignore_errors=True)
    return written


def _build_key(texts: list[str], recipe: str, fingerprint: str, per_chunk: int) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([recipe, fingerprint, per_chunk, len(texts)]).encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\x00")
    return h.hexdigest()


def _prepare_parts(parts: Path, key: str) -> None:
    state = parts / "state.json"
    if parts.is_dir():
        try:
            old = json.loads(state.read_text())["key"]
        except (OSError, ValueError, KeyError):
            old = None
        if old == key:
            done = len(list(parts.glob("chunk_*.npy")))
            if done:
                log.info("resuming label build: %d chunks already done in %s", done, parts)
            return
        log.warning("%s holds parts of a different build (other labels, recipe or model); starting over", parts)
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    write_atomic(state, json.dumps({"key": key, "started": _now()}))

