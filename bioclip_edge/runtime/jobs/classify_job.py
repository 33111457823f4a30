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
``ClassifySpec`` is the job as ``jobs.runner.run_job`` runs it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.images.detections import DEFAULT_CATEGORIES, DEFAULT_THRESHOLD, DetectionsFile, read_detections
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.jobs.engines import Engine, LocalEngine
from bioclip_edge.runtime.jobs.fingerprint import classify_fingerprint, decode_description, fingerprint_token
from bioclip_edge.runtime.jobs.media_fields import video_complete
from bioclip_edge.runtime.jobs.parquet_output import require_pyarrow
from bioclip_edge.runtime.jobs.previous_output import OutputReader
from bioclip_edge.runtime.jobs.records import Record, failed, read_back, stored
from bioclip_edge.runtime.jobs.rollup import RULE as ROLLUP_RULE
from bioclip_edge.runtime.jobs.runner import JobConfig, JobSpec, JobSummary, check_job_target, job_items, run_job
from bioclip_edge.runtime.jobs.sequences import SequenceOptions, SequencePlan
from bioclip_edge.runtime.jobs.stream_writers import Features, scan, write_csv, write_jsonl, write_megadetector, write_parquet
from bioclip_edge.runtime.jobs.writers import format_for

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
        return JobConfig(out=Path(self.out), resume=self.resume, overwrite=self.overwrite,  # type: ignore[arg-type]
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
    spec = ClassifySpec(clf, job, job.items(inputs) if inputs else [], engine or LocalEngine())
    return run_job(spec, job.config).summary


class ClassifySpec(JobSpec[Record]):
    """A classify run as ``run_job`` runs it: one record per image (or per MegaDetector entry)."""

    verb = "classifying"

    def __init__(self, clf: Any, job: ClassifyJob, items: Sequence[ImageItem], engine: Engine):
        self.clf, self.job, self.items, self.engine = clf, job, list(items), engine
        self.boxes = job.detections is not None
        self.fingerprint = classify_fingerprint(clf, detections=self.boxes, threshold=job.threshold,
                                                categories=job.categories, relative_paths=job.relative_paths)
        self._boxes_then = _boxes_by_file(job.detections) if job.detections is not None else {}
        self._reader: OutputReader | None = None

    def order(self) -> list[str]:
        if self.job.detections is not None:
            return [entry["file"] for entry in self.job.detections.images]
        return [item.filepath for item in self.items]

    def produce(self, skip: set[str]) -> Iterator[Record]:
        job = self.job
        if job.detections is None:
            return self.engine.classify(self.clf, [item for item in self.items if item.filepath not in skip])
        return self.engine.classify_boxes(self.clf, job.detections, job.image_root or Path("."), job.threshold,
                                          job.categories, skip)

    def key(self, result: Record) -> str:
        return result["filepath"]

    def failed(self, result: Record) -> bool:
        return failed(result)

    def keep(self, result: Record) -> bool:
        """A video only with every sampled frame's predictions; with detections, an image only while the
        MegaDetector file still has the same boxes for it."""
        if not self.boxes:
            return video_complete(result)
        name = result["filepath"]
        return name not in self._boxes_then or box_key(result.get("detections")) == self._boxes_then[name]

    def finished(self) -> Iterator[Record]:
        if not Path(self.job.out).exists():  # type: ignore[arg-type]
            return iter(())
        self._reader = OutputReader(self.job.out, self.job.fmt, self.fingerprint, self.clf.names)  # type: ignore[arg-type]
        return self._reader.records()

    def damage(self) -> list[str]:
        return self._reader.damage if self._reader is not None else []

    def to_checkpoint(self, result: Record) -> dict[str, Any]:
        return stored(result)

    def from_checkpoint(self, rows: list[dict[str, Any]]) -> list[Record]:
        return [read_back(row, self.boxes) for row in rows]

    def write(self, out: Path, results: Iterable[Record]) -> None:
        """Render the records in the job's format by streaming them (``stream_writers``): a first pass
        gathers what the head needs and groups sequences, the last one writes; CSV, JSON Lines and
        Parquet rows carry the run token."""
        clf, job, fmt = self.clf, self.job, self.job.fmt
        plan = SequencePlan(job.sequences, clf.top_k) if job.sequences.gap is not None else None
        features = Features()
        if fmt != "jsonl" or plan is not None:
            features = scan(results, len(clf.names) if fmt == "megadetector" else 0, plan.observe if plan else None)
        if plan is not None:
            plan.group()
            for i, record in enumerate(results):
                plan.tally(i, record)
        token = fingerprint_token(self.fingerprint) if fmt != "megadetector" else None
        self._witness(features, plan, token)
        final = _Final(results, plan, token)
        meta = self.meta(features)
        if fmt == "megadetector":
            detections = job.detections.data if job.detections is not None else None
            write_megadetector(out, final, meta, clf.names, features, detections, clf.category_descriptions())
        elif fmt == "csv":
            write_csv(out, final, meta, features)
        elif fmt == "jsonl":
            write_jsonl(out, final, meta)
        else:
            write_parquet(out, final, meta)

    @staticmethod
    def _witness(features: Features, plan: SequencePlan | None, token: str | None) -> None:
        """The columns the writing pass adds (sequences, the run token) for the CSV header."""
        blank = {"kind": "image", "filepath": ""}
        if plan is not None and features.count:
            features.witnesses.append({**blank, "seq_id": ""})
            if plan.options.smooth and features.predictions:
                features.witnesses.append({**blank, "image_predictions": []})
        if token is not None:
            features.witnesses.append({**blank, "run": token})

    def meta(self, features: Features) -> dict[str, Any]:
        """The info block; how videos were sampled and rolled up and how sequences were formed only
        when the output holds videos or sequences (still-image outputs say nothing of them)."""
        clf, job = self.clf, self.job
        meta = {**clf.description.to_dict(), **self.engine.describe(), "decode": decode_description(clf.draft_size, self.boxes),
                "run_fingerprint": self.fingerprint}
        if features.videos and not self.boxes:
            meta.update({"video_sampling": clf.sampling.describe(), "video_rollup": ROLLUP_RULE})
        if job.sequences.gap is not None:
            meta.update({**job.sequences.describe(), "sequence_rollup": ROLLUP_RULE})
        return meta


class _Final:
    """The records as written: sequence fields added, the run token on each (re-iterable)."""

    def __init__(self, results: Iterable[Record], plan: SequencePlan | None, token: str | None):
        self.results, self.plan, self.token = results, plan, token

    def __iter__(self) -> Iterator[Record]:
        for i, record in enumerate(self.results):
            if self.plan is not None:
                record = self.plan.fields(i, record)  # type: ignore[assignment]
            if self.token is not None:
                record = {**record, "run": self.token}  # type: ignore[assignment]
            yield record


def _boxes_by_file(detections: DetectionsFile) -> dict[str, Any]:
    return {entry["file"]: box_key(entry.get("detections")) for entry in detections.images}


def box_key(detections: Any) -> Any:
    """What identifies an image's boxes: category, confidence and bbox of each, in order."""
    if detections is None:
        return None
    return [(str(d.get("category")), d.get("conf"), [float(v) for v in d.get("bbox") or []]) for d in detections]
