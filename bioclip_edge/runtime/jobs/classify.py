"""Classify images (or a MegaDetector file's boxes) into an output file that survives kills and
can be extended: what ``bioclip-edge classify`` does after parsing its options, for Python too::

    from bioclip_edge.runtime import Classifier, ClassifyJob, run_classify

    job = ClassifyJob(out="predictions.csv", resume=True)   # format from the suffix
    summary = run_classify(Classifier("bundles/bioclip", "labels/kenya.npz"), job, ["DCIM/"])
    print(summary.line())     # run it again after a kill: finished images are kept, not redone

The command line calls the same ``run_classify``; it only checks the target and the inputs
before the model loads (``job.check_target()``, ``job.items(inputs)``), as a Python caller may.

The run's fingerprint (``run_fingerprint``) goes into the checkpoint and every output format, so
``resume=True`` can continue from a checkpoint *or* from a finished output (``previous_output``):
kept images are written again unchanged, images new to the inputs are classified and added.
With ``--detections``, an image whose MegaDetector boxes changed since is classified again.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.images.detections import DEFAULT_CATEGORIES, DEFAULT_THRESHOLD, DetectionsFile, read_detections
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.jobs.engines import Engine, LocalEngine
from bioclip_edge.runtime.jobs.runner import JobConfig, JobSummary, check_job_target, job_items, run_job
from bioclip_edge.runtime.jobs.parquet_output import require_pyarrow
from bioclip_edge.runtime.jobs.writers import format_for, write_results
from bioclip_edge.runtime.jobs.previous_output import read_finished_output
from bioclip_edge.runtime.jobs.fingerprint import classify_fingerprint, decode_description, fingerprint_token
from bioclip_edge.runtime.jobs.media_fields import is_video_record, video_complete
from bioclip_edge.runtime.jobs.rollup import RULE as ROLLUP_RULE
from bioclip_edge.runtime.jobs.sequences import SequenceOptions, apply_sequences

Record = dict[str, Any]
DEFAULT_NAMES = {"megadetector": "predictions.json", "csv": "predictions.csv", "jsonl": "predictions.jsonl",
                 "parquet": "predictions.parquet"}


@dataclass(frozen=True)
class ClassifyJob:
    """Where and how results are written; what is classified comes with ``run_classify``.

    ``out`` may be a string; without it, ``predictions.json`` / ``.csv`` / ``.jsonl`` by ``fmt``.
    ``fmt`` None: from ``out``'s suffix (MegaDetector JSON otherwise)."""

    out: Path | None = None
    fmt: str | None = None
    detections: DetectionsFile | None = None  # classify its boxes instead of whole images
    image_root: Path | None = None  # with detections: the folder its relative paths start from
    threshold: float = DEFAULT_THRESHOLD
    categories: tuple[str, ...] | None = DEFAULT_CATEGORIES  # None: every detection category
    relative_paths: bool = False  # only recorded here: the items carry their filepaths
    sequences: SequenceOptions = SequenceOptions()  # --sequence-gap / --smooth: applied when writing
    resume: bool = False
    overwrite: bool = False
    checkpoint_images: int = 500
    checkpoint_seconds: float = 60.0
    progress: bool | None = None

    def __post_init__(self) -> None:
        fmt = format_for(self.out or "", self.fmt)
        object.__setattr__(self, "fmt", fmt)
        object.__setattr__(self, "out", Path(self.out or DEFAULT_NAMES[fmt]))
        if fmt == "parquet":
            require_pyarrow()  # refused here, before any work, when the parquet extra is missing
        if not 0.0 <= self.threshold <= 1.0:
            raise OptionError(f"--detection-threshold must be between 0 and 1 (got {self.threshold})")

    @property
    def config(self) -> JobConfig:
        return JobConfig(out=Path(self.out), resume=self.resume, overwrite=self.overwrite,
                         checkpoint_images=self.checkpoint_images, checkpoint_seconds=self.checkpoint_seconds,
                         progress=self.progress)

    def check_target(self) -> Path:
        """Raise (exit 2) unless the output can be written without losing anything."""
        return check_job_target(self.config)

    def with_detections(self, md_json: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> "ClassifyJob":
        """This job on a MegaDetector file's boxes; ``inputs``: the one folder its relative paths start from."""
        if len(inputs) != 1:
            raise OptionError("with --detections, give exactly one INPUT: the folder the MegaDetector file's paths are relative to")
        if not Path(inputs[0]).is_dir():
            raise OptionError(f"{inputs[0]}: not a folder; with --detections, INPUT is the folder the MegaDetector file's paths start from")
        return dataclasses.replace(self, detections=read_detections(md_json), image_root=Path(inputs[0]))

    def items(self, inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem]) -> list[ImageItem]:
        """The whole images ``inputs`` name (none with detections); inputs holding no image stop here."""
        if self.detections is not None:
            return []
        return job_items(inputs, self.relative_paths)


def run_classify(clf: Any, job: ClassifyJob, inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem] = (),
                 engine: Engine | None = None) -> JobSummary:
    """Classify ``inputs`` (files, folders, lists, or ``ImageItem``s) or ``job.detections``' boxes into ``job.out``;
    ``engine``: where records are made (``LocalEngine`` by default; ``runtime.cluster.RayEngine`` on Ray)."""
    engine = engine or LocalEngine()
    items = job.items(inputs) if inputs else []
    fingerprint = classify_fingerprint(clf, detections=job.detections is not None, threshold=job.threshold,
                                       categories=job.categories, relative_paths=job.relative_paths)
    draft = clf.decode_draft(job.detections is not None)
    meta = {**clf.describe(), **engine.describe(), "decode": decode_description(draft, job.detections is not None),
            "run_fingerprint": fingerprint}
    produce, order = _work(clf, job, items, engine)
    keep = _boxes_unchanged(job.detections) if job.detections is not None else video_complete

    def finished() -> list[Record]:
        return read_finished_output(job.out, job.fmt, fingerprint, clf.names)

    write = _writer(clf, job, meta, fingerprint_token(fingerprint))
    return run_job(produce, write, fingerprint, job.config, total=len(order), order=order, finished=finished, keep=keep)


def _work(clf: Any, job: ClassifyJob, items: Sequence[ImageItem], engine: Engine) -> tuple[Callable[[set[str]], Iterator[Record]], list[str]]:
    """``produce(skip)`` and the input order, for whole images or for detections."""
    detections = job.detections
    if detections is None:
        def produce(skip: set[str]) -> Iterator[Record]:
            return engine.classify(clf, [item for item in items if item.filepath not in skip])

        return produce, [item.filepath for item in items]

    def produce_boxes(skip: set[str]) -> Iterator[Record]:
        return engine.classify_boxes(clf, detections, job.image_root or Path("."), job.threshold, job.categories, skip)

    return produce_boxes, [entry["file"] for entry in detections.images]


def _writer(clf: Any, job: ClassifyJob, meta: dict[str, Any], token: str) -> Callable[[Path, list[Record]], Any]:
    """Render records in the job's format; CSV and JSON Lines rows carry the run token."""
    detections = job.detections.data if job.detections is not None else None
    descriptions = clf.category_descriptions()

    def write(path: Path, records: list[Record]) -> Any:
        records = apply_sequences(records, job.sequences, clf.top_k)  # over the whole run's records: runtime.jobs.sequences
        if job.fmt != "megadetector":
            records = [{**r, "run": token} for r in records]
        return write_results(path, records, job.fmt, _output_meta(meta, clf, job, records), clf.names, detections, descriptions)

    return write


def _output_meta(meta: dict[str, Any], clf: Any, job: ClassifyJob, records: list[Record]) -> dict[str, Any]:
    """The info block, plus how videos were sampled and rolled up and how sequences were formed,
    when the output holds videos or sequences (still-image outputs stay as they were)."""
    meta = dict(meta)
    if any(is_video_record(r) for r in records) and job.detections is None:
        meta.update({"video_sampling": clf.sampling.describe(), "video_rollup": ROLLUP_RULE})
    if job.sequences.gap is not None:
        meta.update({**job.sequences.describe(), "sequence_rollup": ROLLUP_RULE})
    return meta


def _boxes_unchanged(detections: DetectionsFile) -> Callable[[Record], bool]:
    """A done image is kept only while the MegaDetector file still has the same boxes for it."""
    boxes = {entry["file"]: box_key(entry.get("detections")) for entry in detections.images}

    def keep(record: Record) -> bool:
        name = record["filepath"]
        return name not in boxes or box_key(record.get("detections")) == boxes[name]

    return keep


def box_key(detections: Any) -> Any:
    """What identifies an image's boxes: category, confidence and bbox of each, in order."""
    if detections is None:
        return None
    return [(str(d.get("category")), d.get("conf"), [float(v) for v in d.get("bbox") or []]) for d in detections]
