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
from bioclip_edge.runtime.jobs.runner import JobConfig, JobSummary, check_job_target, job_items, run_job
from bioclip_edge.runtime.jobs.writers import format_for, write_results
from bioclip_edge.runtime.jobs.previous_output import read_finished_output
from bioclip_edge.runtime.jobs.fingerprint import classify_fingerprint, decode_description, fingerprint_token

Record = dict[str, Any]
DEFAULT_NAMES = {"megadetector": "predictions.json", "csv": "predictions.csv", "jsonl": "predictions.jsonl"}


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
    resume: bool = False
    overwrite: bool = False
    checkpoint_images: int = 500
    checkpoint_seconds: float = 60.0
    progress: bool | None = None

    def __post_init__(self) -> None:
        fmt = format_for(self.out or "", self.fmt)
        object.__setattr__(self, "fmt", fmt)
        object.__setattr__(self, "out", Path(self.out or DEFAULT_NAMES[fmt]))
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


def run_classify(clf: Any, job: ClassifyJob, inputs: str | os.PathLike | Sequence[str | os.PathLike | ImageItem] = ()) -> JobSummary:
    """Classify ``inputs`` (files, folders, lists, or ``ImageItem``s) or ``job.detections``' boxes into ``job.out``."""
    items = job.items(inputs) if inputs else []
    fingerprint = classify_fingerprint(clf, detections=job.detections is not None, threshold=job.threshold,
                                       categories=job.categories, relative_paths=job.relative_paths)
    draft = clf.decode_draft(job.detections is not None)
    meta = {**clf.describe(), "decode": decode_description(draft), "run_fingerprint": fingerprint}
    produce, order = _work(clf, job, items)
    keep = _boxes_unchanged(job.detections) if job.detections is not None else None

    def finished() -> list[Record]:
        return read_finished_output(job.out, job.fmt, fingerprint, clf.names)

    write = _writer(clf, job, meta, fingerprint_token(fingerprint))
    return run_job(produce, write, fingerprint, job.config, total=len(order), order=order, finished=finished, keep=keep)


def _work(clf: Any, job: ClassifyJob, items: Sequence[ImageItem]) -> tuple[Callable[[set[str]], Iterator[Record]], list[str]]:
    """``produce(skip)`` and the input order, for whole images or for detections."""
    detections = job.detections
    if detections is None:
        def produce(skip: set[str]) -> Iterator[Record]:
            return clf.iter_items(item for item in items if item.filepath not in skip)

        return produce, [item.filepath for item in items]

    def produce_boxes(skip: set[str]) -> Iterator[Record]:
        return clf.iter_detections(detections, job.image_root or Path("."), job.threshold, job.categories, skip)

    return produce_boxes, [entry["file"] for entry in detections.images]


def _writer(clf: Any, job: ClassifyJob, meta: dict[str, Any], token: str) -> Callable[[Path, list[Record]], Any]:
    """Render records in the job's format; CSV and JSON Lines rows carry the run token."""
    detections = job.detections.data if job.detections is not None else None
    descriptions = clf.category_descriptions()

    def write(path: Path, records: list[Record]) -> Any:
        if job.fmt != "megadetector":
            records = [{**r, "run": token} for r in records]
        return write_results(path, records, job.fmt, meta, clf.names, detections, descriptions)

    return write


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
