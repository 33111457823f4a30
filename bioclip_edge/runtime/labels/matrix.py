"""LabelMatrix: precomputed label embeddings that zero-shot classification multiplies against.

A matrix knows its labels (names, taxonomy, common names), the text recipe that made it and
the bundle it belongs to, so it is never scored against another model's image embeddings
(``check_bundle``) or mistaken for another recipe. On disk it is one memory-mapped file
(``label_store``); scoring runs in bounded-memory blocks (``scoring``).

Typical use::

    labels = LabelMatrix.load("labels/kenya.npz"); labels.check_bundle(bundle)
    idx, probs = labels.topk(image_embeddings, k=5); names = labels.names
    inline = LabelMatrix.from_texts(bundle, ["lion", "leopard"], recipe="photo", cache_dir=cache)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.labels import scoring
from bioclip_edge.runtime.labels.store import DTYPES, LabelFileError, StringColumn, dtype_name, read_label_file, write_label_file
from bioclip_edge.runtime.text.recipes import get_recipe
from bioclip_edge.runtime.labels.taxonomy import NAME_COLUMN, RANKS, LabelDescriptions, check_rank, lineage_groups, parse_where, where_mask

log = logging.getLogger(__name__)


class LabelMatrixError(UserError, ValueError):
    """A label matrix that cannot be used as asked (wrong bundle, bad rank, empty subset)."""


def bundle_info(bundle, text_variant=None) -> dict[str, Any]:
    """What a matrix records about the bundle it belongs to."""
    m = bundle.manifest.model
    text_shas = sorted(v.sha256 for v in bundle.manifest.variants if v.tower == "text")
    return {
        "model_id": m.id,
        "architecture": m.architecture,
        "embed_dim": int(m.embed_dim),
        "logit_scale": float(m.logit_scale),
        "logit_bias": m.logit_bias,
        "random_weights": bool(m.source.random_weights),
        "seed": m.source.seed,
        "text_variant": getattr(text_variant, "name", None),
        "text_sha256": getattr(text_variant, "sha256", None),
        "text_tower_sha256s": text_shas,
    }


class LabelMatrix:
    """Label embeddings [N, dim] (fp32, fp16 or int8 + row scales) with their label columns."""

    def __init__(self, matrix: np.ndarray, scales: np.ndarray | None, columns: Mapping[str, StringColumn],
                 meta: dict[str, Any], path: Path | None = None):
        self.matrix = matrix
        self.scales = scales
        self.columns = dict(columns)
        self.meta = meta
        self.path = path
        self._groups: dict[str, tuple[np.ndarray, list[tuple[str, ...]]]] = {}

    # ---- construction -------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike) -> "LabelMatrix":
        """Open a label file memory-mapped (the matrix is not read until scored)."""
        f = read_label_file(path)
        if NAME_COLUMN not in f.columns:
            raise LabelFileError(f"{f.path}: has no label names column; rebuild the file")
        return cls(f.matrix, f.scales, f.columns, f.meta, f.path)

    @classmethod
    def from_embeddings(cls, embeddings: np.ndarray, names: Sequence[str], info: dict[str, Any], recipe: str,
                        columns: Mapping[str, Sequence[str]] | None = None, dtype: str = "fp32", note: str = "") -> "LabelMatrix":
        """An in-memory matrix from float32 rows (normalised by the caller's text tower)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(names):
            raise ValueError(f"embeddings {emb.shape} do not match {len(names)} names")
        if emb.shape[1] != info["embed_dim"]:
            raise LabelMatrixError(f"embeddings have dim {emb.shape[1]} but the bundle embeds in {info['embed_dim']}")
        from bioclip_edge.runtime.labels.store import quantize_rows

        stored, scales = quantize_rows(emb, dtype)
        cols = {NAME_COLUMN: StringColumn.from_values(list(names))}
        for key, values in (columns or {}).items():
            cols[key] = StringColumn.from_values(list(values))
        meta = {"recipe": recipe, "bundle": info, "created_at": _now(), "note": note}
        return cls(stored, scales, cols, meta)

    @classmethod
    def from_texts(cls, bundle, texts: Sequence[str], recipe: str = "plain", cache_dir: str | os.PathLike | None = None,
                   precision: str = "fp32", options=None, batch_size: int = 256, progress: bool = False,
                   encoder=None) -> "LabelMatrix":
        """Embed label texts with the bundle's text tower (cached on disk by content hash).

        The cache key covers the texts, the recipe and the text graph's sha256, so a cache entry
        is never reused for another model, export or recipe.
        """
        from bioclip_edge.runtime.inference.session import SessionOptions
        from bioclip_edge.runtime.text.encoder import TextEncoder

        texts = [str(t) for t in texts]
        if not texts:
            raise LabelMatrixError("no labels given; pass at least one label")
        rec = get_recipe(recipe)
        variant = bundle.variant("text", precision)
        cache_file = None
        if cache_dir is not None:
            key = _content_key(texts, rec.name, variant.sha256)
            cache_file = Path(cache_dir) / f"labels-{key[:32]}.npz"
            if cache_file.is_file():
                try:
                    cached = cls.load(cache_file)
                    if cached.names == texts and cached.recipe == rec.name:
                        return cached
                except LabelFileError as exc:
                    log.warning("ignoring unreadable label cache %s (%s)", cache_file, exc)
        encoder = encoder or TextEncoder(bundle, precision, options or SessionOptions())
        from bioclip_edge.runtime.text.recipes import embed_texts

        emb = embed_texts(encoder, texts, rec, batch_size=batch_size, progress=progress)
        matrix = cls.from_embeddings(emb, texts, bundle_info(bundle, encoder.variant), rec.name)
        if cache_file is not None:
            try:
                matrix.save(cache_file)
            except OSError as exc:
                log.warning("could not cache label embeddings in %s (%s)", cache_file, exc)
        return matrix

    # ---- properties -----------------------------------------------------------------------
    @property
    def n(self) -> int:
        return int(self.matrix.shape[0])

    def __len__(self) -> int:
        return self.n

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def dtype(self) -> str:
        return dtype_name(self.matrix.dtype)

    @property
    def recipe(self) -> str:
        return str(self.meta.get("recipe"))

    @property
    def bundle_info(self) -> dict[str, Any]:
        return dict(self.meta.get("bundle") or {})

    @property
    def names(self) -> list[str]:
        return self.columns[NAME_COLUMN].values()

    @property
    def has_taxonomy(self) -> bool:
        return all(r in self.columns for r in RANKS)

    @property
    def score_spec(self) -> scoring.ScoreSpec:
        info = self.bundle_info
        return scoring.ScoreSpec(float(info.get("logit_scale") or 100.0), info.get("logit_bias"))

    def category_descriptions(self) -> LabelDescriptions:
        """Per-label descriptions for MegaDetector's ``classification_category_descriptions``:
        the taxonomy string readers parse (``mammalia;carnivora;felidae;panthera;leo``) when the
        matrix carries taxonomy, else the label text. Made on demand (see ``taxonomy``)."""
        ranks = {rank: self.columns[rank] for rank in RANKS} if self.has_taxonomy else None
        return LabelDescriptions(self.columns[NAME_COLUMN], ranks)

    def where(self) -> str:
        return str(self.path) if self.path else "label matrix"

    def column(self, name: str) -> list[str]:
        if name not in self.columns:
            raise LabelMatrixError(f"{self.where()}: no column {name!r} (it has: {', '.join(self.columns)})")
        return self.columns[name].values()

    def label(self, index: int) -> dict[str, str]:
        """All columns of one label."""
        return {key: col[int(index)] for key, col in self.columns.items()}

    # ---- checks ---------------------------------------------------------------------------
    def check_bundle(self, bundle) -> None:
        """Refuse a bundle whose model or embedding size differs from the one this matrix was made for."""
        info, m = self.bundle_info, bundle.manifest.model
        where = self.where()
        if int(info.get("embed_dim", -1)) != int(m.embed_dim) or self.dim != int(m.embed_dim):
            raise LabelMatrixError(
                f"{where}: label embeddings have dim {self.dim} (made for {info.get('model_id')}) but bundle "
                f"{bundle.root} embeds images in {m.embed_dim}; build the labels with this bundle ('bioclip-edge labels build')"
            )
        if info.get("architecture") and info["architecture"] != m.architecture:
            raise LabelMatrixError(
                f"{where}: labels were made for a {info['architecture']} model ({info.get('model_id')}) but bundle "
                f"{bundle.root} is {m.architecture} ({m.id}); build the labels with this bundle"
            )
        bundle_text = {v.sha256 for v in bundle.manifest.variants if v.tower == "text"}
        same_tower = bool(set(info.get("text_tower_sha256s") or []) & bundle_text)
        if info.get("model_id") != m.id and not same_tower:
            raise LabelMatrixError(
                f"{where}: labels were made for model {info.get('model_id')} but bundle {bundle.root} holds {m.id}; "
                "build the labels with this bundle ('bioclip-edge labels build')"
            )
        if (info.get("random_weights") or m.source.random_weights) and not same_tower:
            if info.get("random_weights") != m.source.random_weights or info.get("seed") != m.source.seed:
                raise LabelMatrixError(
                    f"{where}: labels and bundle {bundle.root} come from different (random) weights "
                    f"(seed {info.get('seed')} vs {m.source.seed}); build the labels with this bundle"
                )
        if info.get("text_tower_sha256s") and bundle_text and not same_tower:
            log.warning("%s was built with another export of %s (text tower sha256 differs); scores may differ slightly",
                        where, m.id)

    # ---- scoring --------------------------------------------------------------------------
    def topk(self, image_embeddings: np.ndarray, k: int = 5, block_rows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(indices [B, k], softmax probabilities over all N labels [B, k]), best first."""
        emb = self._check_embeddings(image_embeddings)
        idx, probs, _ = scoring.topk(self.matrix, self.scales, emb, k, self.score_spec, block_rows, self.scorer,
                                     self.ranking_rows)
        return idx, probs

    def _scorer_summary(self) -> str:
        from bioclip_edge.runtime.labels.ranking import ranks_int8

        text = scoring.scorer_summary(self.n, self.dim, self.scorer)
        if ranks_int8(self.scorer, self.matrix, self.scales, self.path):
            text += "; ranks int8 rows with an integer product (labels.ranking)"
        return text

    @property
    def ranking_rows(self) -> Any:
        """The int8 copy the OpenVINO scorer ranks instead of the stored rows (``labels.ranking``: when
        and why), made or opened on first use; None: the stored rows are ranked."""
        if not hasattr(self, "_ranking_rows"):
            from bioclip_edge.runtime.labels.ranking import ranking_for

            self._ranking_rows = ranking_for(self.scorer, self.matrix, self.scales, self.path)
        return self._ranking_rows

    @property
    def scorer(self) -> Any:
        """The scorer (``openvino_scoring.ScorerChoice``, plain data), chosen once for this matrix on
        first use: every batch of a run is scored the same way, without re-reading
        ``BIOCLIP_EDGE_SCORER`` or the CPU."""
        if getattr(self, "_scorer", None) is None:
            from bioclip_edge.runtime.labels.openvino_scoring import choose_scorer

            self._scorer = choose_scorer("auto", self.n, self.dim)
        return self._scorer

    @property
    def scoring_window(self) -> int:
        """Image vectors a job gathers per ``topk`` call on this matrix (``scoring.scoring_window``: why)."""
        return scoring.scoring_window(self.n, self.dim)

    def rollup(self, image_embeddings: np.ndarray, rank: str, k: int = 5, block_rows: int | None = None
               ) -> list[list[tuple[tuple[str, ...], float]]]:
        """Per image, the k most probable taxa at ``rank``: [(lineage kingdom..rank, probability)]."""
        check_rank(rank, list(self.columns), self.where())
        emb = self._check_embeddings(image_embeddings)
        ids, lineages = self.groups(rank)
        probs = scoring.group_probs(self.matrix, self.scales, emb, self.score_spec, ids, len(lineages), block_rows)
        out = []
        for row in probs:
            kk = min(k, len(lineages))
            top = np.argpartition(-row, kk - 1)[:kk] if kk < len(lineages) else np.arange(len(lineages))
            top = top[np.lexsort((top, -row[top]))]
            out.append([(lineages[g], float(row[g])) for g in top])
        return out

    def groups(self, rank: str) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        if rank not in self._groups:
            self._groups[rank] = lineage_groups({r: self.column(r) for r in RANKS}, rank)
        return self._groups[rank]

    def _check_embeddings(self, emb: np.ndarray) -> np.ndarray:
        emb = np.atleast_2d(np.asarray(emb, dtype=np.float32))
        if emb.ndim != 2 or emb.shape[1] != self.dim:
            raise LabelMatrixError(f"{self.where()}: image embeddings have shape {list(emb.shape)}; this matrix needs [batch, {self.dim}]")
        return emb

    # ---- subsets and saving ---------------------------------------------------------------
    def select(self, where: Mapping[str, set[str]] | Sequence[str]) -> np.ndarray:
        """Row indices matching ``{"class": {"Aves"}}`` or ``["class=Aves"]`` (case-insensitive)."""
        if not isinstance(where, Mapping):
            where = parse_where(list(where))
        cols = {key: self.columns[key].values() for key in where if key in self.columns}
        missing = [key for key in where if key not in self.columns]
        if missing:
            raise LabelMatrixError(f"{self.where()}: no column {missing[0]!r} to select on (it has: {', '.join(self.columns)})")
        return np.flatnonzero(where_mask(cols, where, self.where()))

    def subset(self, rows: np.ndarray | Mapping[str, set[str]] | Sequence[str]) -> "LabelMatrix":
        """A new in-memory matrix of the given rows (indices, a bool mask, or a where-selection)."""
        if isinstance(rows, np.ndarray) and rows.dtype == bool:
            rows = np.flatnonzero(rows)
        elif not isinstance(rows, np.ndarray):
            rows = self.select(rows)
        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            raise LabelMatrixError(f"{self.where()}: the selection matches no labels")
        cols = {key: StringColumn.from_values(_take(col, rows)) for key, col in self.columns.items()}
        scales = None if self.scales is None else np.asarray(self.scales[rows])
        meta = dict(self.meta, note=(self.meta.get("note") or "") + f" subset of {self.where()} ({len(rows)} of {self.n})")
        return LabelMatrix(np.asarray(self.matrix[rows]), scales, cols, meta)

    def iter_float_rows(self, rows: np.ndarray | None = None, block_rows: int = 65536) -> Iterator[np.ndarray]:
        """float32 label rows in blocks (all rows, or the given sorted row indices)."""
        if rows is None:
            for _, block in scoring.iter_blocks(self.matrix, self.scales, block_rows):
                yield block
            return
        for start in range(0, len(rows), block_rows):
            idx = rows[start : start + block_rows]
            block = np.asarray(self.matrix[idx], dtype=np.float32)
            if self.scales is not None:
                block *= np.asarray(self.scales[idx], dtype=np.float32)[:, None]
            yield block

    def save(self, path: str | os.PathLike, dtype: str | None = None, rows: np.ndarray | None = None, note: str = "") -> Path:
        """Write to ``path`` (atomic), converting to ``dtype`` (fp32 | fp16 | int8) if given.

        ``rows`` writes only those labels, streamed in blocks (a subset of an 867k-label matrix
        never sits in memory whole).
        """
        dtype = dtype or self.dtype
        if dtype not in DTYPES:
            raise LabelMatrixError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        meta = {k: v for k, v in self.meta.items() if k not in ("format", "version", "n", "dim", "dtype", "columns")}
        if note:
            meta["note"] = " ".join(x for x in (meta.get("note", ""), note) if x)
        if rows is None:
            columns = {key: col.values() for key, col in self.columns.items()}
            n = self.n
        else:
            rows = np.sort(np.asarray(rows, dtype=np.int64))
            if rows.size == 0:
                raise LabelMatrixError(f"{self.where()}: the selection matches no labels")
            columns = {key: _take(col, rows) for key, col in self.columns.items()}
            n = len(rows)
        return write_label_file(path, (n, self.dim), dtype, self.iter_float_rows(rows), columns, meta)

    def summary(self) -> dict[str, Any]:
        info = self.bundle_info
        return {
            "path": str(self.path) if self.path else None, "labels": self.n, "dim": self.dim, "dtype": self.dtype,
            "bytes": int(self.matrix.nbytes + (0 if self.scales is None else self.scales.nbytes)),
            "recipe": self.recipe, "columns": list(self.columns), "taxonomy": self.has_taxonomy,
            "model_id": info.get("model_id"), "architecture": info.get("architecture"),
            "random_weights": info.get("random_weights"), "text_sha256": info.get("text_sha256"),
            "logit_scale": info.get("logit_scale"), "scorer": self._scorer_summary(), "created_at": self.meta.get("created_at"), "note": self.meta.get("note", ""),
            "source": self.meta.get("source"),
        }


def _take(col: StringColumn, rows: np.ndarray) -> list[str]:
    if len(rows) < 1000:  # a few labels: decode just those
        return col.take(rows)
    values = col.values()
    return [values[i] for i in rows]


def _content_key(texts: Sequence[str], recipe: str, text_sha256: str) -> str:
    payload = json.dumps({"texts": list(texts), "recipe": recipe, "text": text_sha256, "v": 1}, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

