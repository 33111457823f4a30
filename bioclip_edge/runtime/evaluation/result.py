"""What ``evaluate`` is asked (``EvaluateRequest``) and what it answers (``EvaluationResult``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioclip_edge.runtime.evaluation.metrics import Metrics
from bioclip_edge.runtime.evaluation.thresholds import Thresholds


@dataclass(frozen=True)
class EvaluateRequest:
    predictions: Path
    truth: Path
    out: Path | None = None  # None: compute only, write nothing
    rank: str | None = None
    target_precision: float | None = None
    detection_threshold: float | None = None  # --detections outputs; None: every box classify classified
    labels: Path | None = None  # the label matrix classify used: taxonomy and common names
    image_root: Path | None = None  # where relative prediction paths start; None: the predictions file's folder
    overwrite: bool = False
    plots: bool = True


@dataclass
class EvaluationResult:
    request: EvaluateRequest
    fmt: str
    boxes: bool
    metrics: Metrics
    thresholds: Thresholds
    unpredictable: dict[str, int]  # truth label the model cannot predict -> images
    without_truth: list[str]  # predicted files with no truth label
    without_prediction: list[str]  # truth files the output does not hold
    failed: list[tuple[str, str]]  # (file, reason): every failed file, truth label or not
    taxonomy: str | None
    files: list[Path] = field(default_factory=list)
    plots_skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {"predictions": str(r.predictions), "format": self.fmt, "detections": self.boxes, "truth": str(r.truth),
                "rank": r.rank, "taxonomy": self.taxonomy, "detection_threshold": r.detection_threshold,
                "zero_division": 0, **self.metrics.to_dict(), "thresholds": self.thresholds.to_dict(),
                "failed": [{"filepath": f, "reason": why} for f, why in self.failed],
                "truth_labels_the_model_cannot_predict": self.unpredictable,
                "predicted_files_without_truth": self.without_truth, "truth_files_without_prediction": self.without_prediction}
