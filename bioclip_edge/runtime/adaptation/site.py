"""``adapt(AdaptRequest) -> AdaptResult``: a site's label matrix from a few labelled examples.

Each labelled class starts from its zero-shot row (the matching row of ``base``, or its label text
through the recipe), is moved by ``adaptation.methods`` on the examples' embeddings, and is
written back as an ordinary label matrix: ``classify`` scores it like any other. With a ``base``,
every base row is kept and only the labelled ones change, so a site model keeps the full species
list. The matrix's meta ``source`` records the method, its settings, the shots per class, a digest
of the examples and the bundle, and ``labels info`` shows them.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from bioclip_edge.runtime.adaptation.methods import ClapSettings, clap_rows, prototype_rows
from bioclip_edge.runtime.adaptation.examples import EmbeddedExamples, embed_examples, read_examples
from bioclip_edge.runtime.labels.matrix import LabelMatrix, LabelMatrixError, _now, bundle_info
from bioclip_edge.runtime.labels.store import write_label_file
from bioclip_edge.runtime.labels.taxonomy import NAME_COLUMN
from bioclip_edge.runtime.adaptation.validate import CrossValidation, cross_validate

METHODS = ("clap", "prototype")
COMPETITORS_PER_EXAMPLE = 16  # base rows each example's zero-shot ranks highest take part in CLAP's softmax


@dataclass(frozen=True)
class AdaptRequest:
    bundle: Any  # a Bundle or its folder
    examples: Path  # train/<label>/*.jpg or a filepath,label CSV (optional box columns)
    out: Path
    base: Path | None = None
    method: str = "clap"
    recipe: str = "plain"  # how label texts become zero-shot rows when there is no base
    prototype_k: float = 4.0
    clap: ClapSettings = ClapSettings()
    views: int = 4
    dtype: str | None = None  # stored type; default the base's, else fp32
    precision: str = "auto"  # vision variant that embeds the examples
    overwrite: bool = False
    cache_dir: Path | None = None
    cross_validate: int = 0  # K > 1: also measure zero-shot against adapted on K grouped held-out folds
    suggest: int = 0  # N > 0: list the N pool images to label next (``labels.suggest``)
    pool: Path | None = None
    detections: Path | None = None  # MegaDetector output: each example becomes its best box (``labels.example_boxes``)
    detection_threshold: float = 0.2
    sequence_gap: float = 60.0  # --suggest: seconds between frames of one burst (``labels.suggest``)


@dataclass(frozen=True)
class AdaptResult:
    out: Path
    labels: int  # rows written
    adapted: list[str]  # the rows the examples changed, in example order
    shots: dict[str, int]
    failures: list[tuple[str, str]] = field(default_factory=list)  # unreadable examples, skipped
    source: dict[str, Any] = field(default_factory=dict)  # what the matrix's meta records
    cross_validation: CrossValidation | None = None
    suggestions: Path | None = None  # the CSV of images to label next
    suggestion_page: Path | None = None  # its preview page (``labels.suggest_page``)


def adapt(request: AdaptRequest) -> AdaptResult:
    """Read and embed the examples, fit the rows and write the matrix (see the module docstring)."""
    from bioclip_edge.runtime.common.target import check_output_target
    from bioclip_edge.runtime.images.embedder import ImageEmbedder
    from bioclip_edge.runtime.inference.bundle import Bundle

    if request.method not in METHODS:
        raise LabelMatrixError(f"unknown method {request.method!r}; choose one of {', '.join(METHODS)}")
    out = check_output_target(request.out, overwrite=request.overwrite, what="label file")
    bundle = request.bundle if isinstance(request.bundle, Bundle) else Bundle.open(request.bundle)
    base = _open_base(request.base, bundle, out)
    examples, skipped = _read_examples(request)
    if base is not None:
        base_rows([e.label for e in examples], base)  # a label missing from the base fails before embedding
    pool = Path(request.pool) if request.suggest and request.pool is not None else None
    if request.suggest and (pool is None or not pool.is_dir()):
        raise LabelMatrixError(f"--suggest needs --pool, a folder of unlabelled images (got {request.pool})")
    if request.suggest:
        from bioclip_edge.runtime.adaptation.suggest_page import page_paths

        check_output_target(_suggest_path(out), overwrite=request.overwrite, what="suggestion list")
        check_output_target(page_paths(_suggest_path(out))[0], overwrite=request.overwrite, what="suggestion page")
    embedder = ImageEmbedder(bundle, request.precision)
    result = fit_and_write(request, bundle, base, embed_examples(embedder, examples, request.views, skipped), out)
    if pool is None:
        return result
    from bioclip_edge.runtime.adaptation.suggest import pick, score_pool, write_suggestions
    from bioclip_edge.runtime.adaptation.suggest_page import write_suggestion_page

    scored, failures = score_pool(embedder, pool, LabelMatrix.load(result.out), request.sequence_gap)
    chosen = pick(scored, request.suggest)
    path = write_suggestions(_suggest_path(out), chosen)
    page = write_suggestion_page(path, chosen, pool, len(scored))
    return replace(result, suggestions=path, suggestion_page=page, failures=result.failures + failures)


def _read_examples(request: AdaptRequest) -> tuple[list, list[tuple[str, str]]]:
    """The examples, each cut to its box when ``detections`` is given, and those skipped for want of one."""
    examples = read_examples(request.examples)
    if request.detections is None:
        return examples, []
    from bioclip_edge.runtime.adaptation.example_boxes import boxes_from_detections
    from bioclip_edge.runtime.adaptation.examples import ExamplesError

    kept, skipped = boxes_from_detections(examples, request.detections, request.detection_threshold)
    lost = [label for label in dict.fromkeys(e.label for e in examples) if label not in {e.label for e in kept}]
    if lost:
        names = {e.filepath for e in examples if e.label == lost[0]}
        reasons = "; ".join([f"{name}: {reason}" for name, reason in skipped if name in names][:3])
        raise ExamplesError(f"label {lost[0]!r} has no example with a box to cut ({reasons}); lower "
                            "--detection-threshold or give that label's boxes as CSV bbox columns")
    return kept, skipped


def _suggest_path(out: Path) -> Path:
    return out.with_name(out.stem + ".suggest.csv")


def fit_and_write(request: AdaptRequest, bundle, base: LabelMatrix | None, embedded: EmbeddedExamples,
                  out: Path) -> AdaptResult:
    """The part after embedding (the benchmark and the timing run it alone)."""
    if base is not None:
        rows = base_rows(embedded.labels, base)
        start = np.stack([next(base.iter_float_rows(np.array([r]))).ravel() for r in rows])
    else:
        rows = []
        start = LabelMatrix.from_texts(bundle, embedded.labels, recipe=request.recipe, cache_dir=request.cache_dir).matrix
    scale = float(bundle.manifest.model.logit_scale)
    start = np.asarray(start, np.float32)
    cv = None
    if request.cross_validate:
        cv = cross_validate(embedded, start, request.cross_validate,
                            lambda part: fit_rows(request, start, part, scale, base, rows)[0])
    fitted, details = fit_rows(request, start, embedded, scale, base, rows)
    shots = {label: int(n) for label, n in zip(embedded.labels, embedded.shots)}
    source = {"kind": "adapt", "method": request.method, "settings": details, "shots": shots,
              "examples": {"path": str(request.examples), "digest": embedded.digest, "skipped": len(embedded.failures),
                           "detections": str(request.detections) if request.detections else None,
                           "detection_threshold": request.detection_threshold if request.detections else None},
              "views": int(request.views), "base": str(request.base) if request.base else None,
              "model_id": bundle.manifest.model.id, "cross_validation": cv.to_dict() if cv else None}
    written = _write(out, request, bundle, base, rows, fitted, embedded.labels, source)
    n = base.n if base is not None else len(embedded.labels)
    return AdaptResult(written, n, list(embedded.labels), shots, list(embedded.failures), source, cv)


def fit_rows(request: AdaptRequest, start: np.ndarray, embedded: EmbeddedExamples, logit_scale: float,
             base: LabelMatrix | None = None, rows: list[int] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The adapted rows (one per ``embedded.labels``) and the settings the matrix records."""
    f, y = embedded.features, embedded.label_index
    if request.method == "prototype":
        return prototype_rows(start, f, y, embedded.shots, request.prototype_k), {"k": request.prototype_k}
    competitors = _competitors(base, rows or [], f)
    fit = clap_rows(start, f, y, logit_scale, request.clap, competitors)
    details = {**asdict(request.clap), "optimizer": fit.optimizer, "iterations": fit.iterations,
               "loss_before": round(fit.loss_before, 6), "loss_after": round(fit.loss_after, 6),
               "class_weights": [round(float(w), 6) for w in fit.weights],
               "competitor_rows": 0 if competitors is None else len(competitors)}
    return fit.rows, details


def base_rows(labels: list[str], base: LabelMatrix) -> list[int]:
    """Each label's row in ``base``, matched by name or common name (case-insensitive)."""
    index: dict[str, int] = {}
    for column in ("common_name", NAME_COLUMN):
        if column in base.columns:
            for i, value in enumerate(base.columns[column].values()):
                if value:
                    index[value.strip().lower()] = i
    missing = [label for label in dict.fromkeys(labels) if label.strip().lower() not in index]
    if missing:
        raise LabelMatrixError(f"label {missing[0]!r} is not in --base {base.where()} (matched by name or common name, "
                               f"ignoring case){'; also ' + ', '.join(map(repr, missing[1:4])) if len(missing) > 1 else ''}")
    return [index[label.strip().lower()] for label in dict.fromkeys(labels)]


def _open_base(path: Path | None, bundle, out: Path) -> LabelMatrix | None:
    if path is None:
        return None
    if Path(out).resolve() == Path(path).resolve():  # the base is memory-mapped while the output is written
        raise LabelMatrixError(f"{out}: --out must differ from --base")
    base = LabelMatrix.load(path)
    base.check_bundle(bundle)
    return base


def _competitors(base: LabelMatrix | None, rows: list[int], features: np.ndarray) -> np.ndarray | None:
    """The base rows, other than the adapted ones, that zero-shot ranks near the examples."""
    if base is None or base.n <= len(rows):
        return None
    k = min(base.n, COMPETITORS_PER_EXAMPLE + len(rows))
    idx, _ = base.topk(np.asarray(features, np.float32), k=k)
    keep = sorted(set(int(i) for i in np.unique(idx)) - set(rows))
    return np.concatenate(list(base.iter_float_rows(np.array(keep, dtype=np.int64)))) if keep else None


def _write(out: Path, request: AdaptRequest, bundle, base: LabelMatrix | None, rows: list[int], fitted: np.ndarray,
           labels: list[str], source: dict[str, Any]) -> Path:
    if base is None:
        blocks, shape, columns = [np.asarray(fitted, np.float32)], fitted.shape, {NAME_COLUMN: labels}
        meta = {"recipe": request.recipe, "bundle": bundle_info(bundle, bundle.variant("text", "fp32"))}
    else:
        blocks, shape = _replaced_blocks(base, rows, fitted), (base.n, base.dim)
        columns = {key: col.values() for key, col in base.columns.items()}
        meta = {"recipe": base.recipe, "bundle": base.bundle_info}
    note = f"adapted ({request.method}) from {sum(source['shots'].values())} examples of {len(labels)} labels"
    meta.update(created_at=_now(), source=source, note=note)
    dtype = request.dtype or (base.dtype if base is not None else "fp32")
    return write_label_file(out, shape, dtype, blocks, columns, meta)


def _replaced_blocks(base: LabelMatrix, rows: list[int], fitted: np.ndarray, block_rows: int = 65536):
    """The base's rows in blocks, the adapted ones replaced: an 867k-row base never sits in memory whole."""
    order = np.argsort(rows)
    targets, values = np.asarray(rows)[order], np.asarray(fitted, np.float32)[order]
    start = 0
    for block in base.iter_float_rows(block_rows=block_rows):
        inside = (targets >= start) & (targets < start + len(block))
        if inside.any():
            block = np.array(block, dtype=np.float32)  # a copy: the stored rows may be mapped read-only
            block[targets[inside] - start] = values[inside]
        start += len(block)
        yield block


def describe(source: dict[str, Any] | None) -> list[str]:
    """``labels info``'s lines for an adapted matrix (nothing for any other)."""
    if not source or source.get("kind") != "adapt":
        return []
    settings = {k: v for k, v in (source.get("settings") or {}).items() if k not in ("class_weights",)}
    shots = ", ".join(f"{label}: {n}" for label, n in (source.get("shots") or {}).items())
    examples = source.get("examples") or {}
    lines = [f"adapted: {source.get('method')} ({', '.join(f'{k}={v}' for k, v in settings.items())})",
             f"shots: {shots}",
             f"examples: {examples.get('path')} (digest {str(examples.get('digest'))[:16]}, {examples.get('skipped', 0)} skipped)"
             + (f"   base: {source['base']}" if source.get("base") else "") + f"   model: {source.get('model_id')}"]
    if examples.get("detections"):
        lines.append(f"boxes: each frame's most confident animal box in {examples['detections']} "
                     f"(conf >= {examples.get('detection_threshold')})")
    cv = source.get("cross_validation")
    if cv:
        lines.append(f"cross-validation ({cv['folds']} folds, {cv['examples']} held out): balanced accuracy zero-shot "
                     f"{cv['zero_shot_balanced']:.3f}, adapted {cv['adapted_balanced']:.3f}"
                     + ("" if cv.get("helps") else " (adapted is NO better)"))
    return lines
