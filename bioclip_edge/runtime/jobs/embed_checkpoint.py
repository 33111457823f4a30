"""``embed``'s checkpoint: finished embeddings survive a kill and ``--resume`` picks them up.

``embed`` writes its ``.npy`` + index (or Parquet file) once, at the end; before that, rows live
in memory. Like ``classify``, it now also keeps ``<out>.checkpoint.jsonl`` (``jobs.checkpoint``:
rewritten atomically every N images or seconds, at most ~10% of the run's time): one record
per embedded row (the vector as base64 float32, its index entry) or failure. The first record
says how many rows of the existing output the run was extending (0 for a new or ``--overwrite``
run), so a resumed run rebuilds exactly what the killed one held: those output rows, then the
checkpoint's. A video's frame rows go in together once the whole video is embedded, so a
checkpoint never holds part of a video. The checkpoint is removed once the output is written.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bioclip_edge.errors import CheckpointError
from bioclip_edge.runtime.jobs.checkpoint import Checkpoint

KEPT = "<rows kept from the existing output>"  # the first record's filepath: not an image


@dataclass
class Restored:
    """What a checkpoint held: how many output rows its run kept, then its own rows and failures."""

    kept_from_output: int = 0
    vectors: list[np.ndarray] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)


class EmbedCheckpoint:
    """Buffer each input's rows, then hand them to a ``Checkpoint`` (atomic rewrites)."""

    def __init__(self, out: Any, fingerprint: dict[str, Any], every_images: int, every_seconds: float):
        self.inner = Checkpoint(out, fingerprint, every_images, every_seconds)
        self._pending: list[dict[str, Any]] = []

    def refuse_unasked(self, resume: bool, overwrite: bool) -> None:
        if self.inner.exists() and not (resume or overwrite):
            raise CheckpointError(f"{self.inner.path}: an interrupted embed left embeddings here; pass --resume to continue "
                                  "it, or --overwrite to start over")

    def exists(self) -> bool:
        return self.inner.exists()

    def restore(self) -> Restored:
        """The interrupted run's rows (failures are tried again, so they are not restored)."""
        records = self.inner.load()
        out = Restored()
        if records and records[0].get("filepath") == KEPT:
            out.kept_from_output = int(records[0].get("kept", 0))
        for record in records:
            if record.get("filepath") != KEPT and "vector" in record:
                out.vectors.append(np.frombuffer(base64.b64decode(record["vector"]), np.float32))
                out.images.append({"filepath": record["filepath"], **record.get("info", {})})
        return out

    def start(self, kept_from_output: int, restored: Restored) -> None:
        """The new checkpoint begins with what this run keeps, so another kill loses none of it."""
        self.inner.records = [{"filepath": KEPT, "kept": kept_from_output}]
        for vector, image in zip(restored.vectors, restored.images):
            self.inner.records.append(_record(image["filepath"], vector, {k: v for k, v in image.items() if k != "filepath"}))

    def add(self, filepath: str, vector: np.ndarray | None, info: dict[str, Any], failure: str | None) -> None:
        if self._pending and self._pending[-1]["filepath"] != filepath:
            self.flush()
        self._pending.append(_record(filepath, vector, info) if vector is not None else {"filepath": filepath, "failure": failure})

    def flush(self) -> None:
        """Hand the buffered input's rows to the checkpoint (after its last row, or on the way out)."""
        pending, self._pending = self._pending, []
        for record in pending:
            self.inner.add(record)

    def save(self) -> None:
        """On the way out: a buffered still is whole, a buffered video may be cut short (dropped, redone)."""
        if self._pending and not any("frame_number" in r.get("info", {}) for r in self._pending):
            self.flush()
        self.inner.save()

    def remove(self) -> None:
        self.inner.remove()


def _record(filepath: str, vector: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
    return {"filepath": filepath, "info": info,
            "vector": base64.b64encode(np.ascontiguousarray(vector, np.float32).tobytes()).decode("ascii")}
