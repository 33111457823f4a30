"""``RayEngine``: where a job's records come from when it runs on a Ray cluster.

The jobs (``runtime.jobs``) ask an engine for records and do everything else themselves, so
checkpoint, ``--resume``, fingerprint, order and writers are the local engine's. This engine:

1. joins or starts Ray (``connect``) and checks every node (``preflight``) before any image;
2. ships the driver's decisions to the actors as a ``WorkerSpec``: the ``InferencePlan`` (graph,
   backend, threads), the request, and the labels (a label file every node sees is memory-mapped
   on each node; text labels, embedded once on the driver, go through Ray's object store);
3. streams a Ray Dataset of paths through an actor pool (``ActorPoolStrategy``; Ray Data restarts
   an actor that dies and retries its batch) and yields records as batches finish. A record seen
   twice (a retried batch that had already delivered) is yielded once.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Iterator, Sequence

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.cluster import preflight
from bioclip_edge.runtime.cluster.connect import ClusterError, ClusterInfo, connect, disconnect, pool_size
from bioclip_edge.runtime.cluster.options import RayOptions
from bioclip_edge.runtime.cluster.workers import RECORD, ClassifyWorker, EmbedWorker, WorkerSpec
from bioclip_edge.runtime.images.discover import ImageItem
from bioclip_edge.runtime.jobs.records import Record, read_back


class RayEngine:
    """Produce classify records or embeddings on Ray; ``close()`` stops a Ray this engine started."""

    name = "ray"

    def __init__(self, options: RayOptions | None = None):
        self.options = options or RayOptions()
        self.info: ClusterInfo | None = None

    def start(self) -> ClusterInfo:
        """Join or start Ray (once); raises ``ClusterError`` before any work."""
        if self.info is None:
            self.info = connect(self.options)
        return self.info

    def describe(self) -> dict[str, Any]:
        info = self.start()
        actors, cpus = pool_size(info, self.options)
        return {"engine": "ray", "cluster": info.describe(), "actors": actors, "cpus_per_actor": cpus}

    def close(self) -> None:
        if self.info is not None:
            disconnect(self.info)
            self.info = None

    # --- classify -----------------------------------------------------------------------------
    def classify(self, clf: Any, items: Sequence[ImageItem]) -> Iterator[Record]:
        """Records for whole images, as ``Classifier.iter_items`` gives them locally."""
        spec = self.worker_spec(clf.bundle, clf.embedder, clf.request, labels=self.ship_labels(clf), first=_first_path(items))
        return self._records(_path_rows(items), ClassifyWorker, spec, boxes=False)

    def classify_boxes(self, clf: Any, detections: Any, root: Any, threshold: float, categories: Any,
                       skip: set[str]) -> Iterator[Record]:
        """Records for a MegaDetector file's boxes, as ``Classifier.iter_detections`` gives them."""
        boxes = {"root": str(root), "threshold": threshold, "categories": None if categories is None else list(categories),
                 "detection_categories": dict(detections.categories)}
        spec = self.worker_spec(clf.bundle, clf.embedder, clf.request, labels=self.ship_labels(clf), first=None, detections=boxes)
        rows = [{"entry": json.dumps(e, ensure_ascii=False)} for e in detections.images if e["file"] not in skip]
        return self._records(rows, ClassifyWorker, spec, boxes=True)

    def _records(self, rows: list[dict[str, Any]], worker: type, spec: WorkerSpec, boxes: bool) -> Iterator[Record]:
        """The workers' records (stored form: ``records.stored``), each once, with their kind back."""
        seen: set[str] = set()
        for batch in self._stream(rows, worker, spec):
            for text in batch[RECORD]:
                record = json.loads(str(text))
                if record["filepath"] not in seen:
                    seen.add(record["filepath"])
                    yield read_back(record, boxes)

    # --- embed --------------------------------------------------------------------------------
    def embed(self, embedder: Any, items: Sequence[ImageItem]) -> Iterator[tuple[str, np.ndarray | None, dict[str, Any], str | None]]:
        """(filepath, unit vector or None, info, failure) per image, as the local engine gives them."""
        spec = self.worker_spec(embedder.bundle, embedder, embedder.request, labels=None, first=_first_path(items))
        seen: set[tuple[str, Any]] = set()
        for batch in self._stream(_path_rows(items), EmbedWorker, spec):
            for name, vector, failure, text in zip(batch["filepath"], batch["embedding"], batch["failure"], batch["info"]):
                info = json.loads(str(text))
                key = (str(name), info.get("frame_number"))  # a video gives one row per sampled frame
                if key in seen:
                    continue
                seen.add(key)
                yield str(name), (None if failure else np.asarray(vector, np.float32)), info, (str(failure) or None)

    # --- shared -------------------------------------------------------------------------------
    def worker_spec(self, bundle: Any, embedder: Any, request: Any, labels: Any, first: str | None,
                    detections: dict[str, Any] | None = None, output: str = "records") -> WorkerSpec:
        """The driver's decisions as data, after checking that every node can act on them."""
        info = self.start()
        plan = embedder.plan
        preflight.check_nodes(info, preflight.file_checks(bundle, plan.file, first), preflight.backend_modules(plan.backend))
        actors, cpus = pool_size(info, self.options)
        if self.options.cpus_per_actor is not None:  # several actors per node: each its share of the cores
            plan = dataclasses.replace(plan, model_threads=max(1, int(cpus)))
            request = dataclasses.replace(request, decode_threads=min(4, max(1, int(cpus))))
        return WorkerSpec(bundle=str(bundle.root.absolute()), plan=plan.to_dict(), provider=embedder.provider,
                          request=request, labels=labels, detections=detections, output=output)

    def ship_labels(self, clf: Any) -> Any:
        """A label file every node sees goes by path (memory-mapped there); anything else by value."""
        import ray

        path = getattr(clf.labels, "path", None)
        if path is not None and preflight.visible_everywhere(self.start(), str(path.absolute())):
            return str(path.absolute())
        return ray.put(clf.labels)

    def map_dataset(self, ds: Any, worker: type, spec: WorkerSpec, upstream_tasks: bool = False) -> Any:
        """``ds`` (rows of paths, bytes or MegaDetector entries) through an actor pool of ``worker``.

        ``upstream_tasks``: ``ds`` comes from Ray tasks (a reader), which need CPUs of their own
        to be scheduled; a pool holding every CPU would wait for them forever. The actors then
        reserve one CPU less per node, half of a one-CPU node (a scheduling token only: their
        threads still use every core)."""
        import ray

        actors, cpus = pool_size(self.start(), self.options)
        if upstream_tasks and self.options.cpus_per_actor is None:
            cpus = max(cpus / 2, cpus - 1)
        return ds.map_batches(worker, fn_constructor_kwargs={"spec": spec}, batch_size=self.options.images_per_task,
                              compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=cpus, batch_format="numpy")

    def _stream(self, rows: list[dict[str, Any]], worker: type, spec: WorkerSpec) -> Iterator[dict[str, Any]]:
        """Batches of the worker's output as they finish; worker errors become one clear ``ClusterError``."""
        if not rows:
            return
        import ray

        ds = self.map_dataset(ray.data.from_items(rows), worker, spec)
        try:
            yield from ds.iter_batches(batch_size=None, batch_format="numpy")
        except (KeyboardInterrupt, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001  Ray wraps worker errors in its own types
            reason = user_error_text(exc)
            if reason is None:
                raise
            raise ClusterError(f"a Ray worker stopped the job: {reason}") from None


def _path_rows(items: Sequence[ImageItem]) -> list[dict[str, str]]:
    """The dataset rows for inputs read by the workers themselves: paths, never bytes."""
    return [{"path": str(i.path), "filepath": i.filepath, "problem": i.problem or ""} for i in items]


def _first_path(items: Sequence[ImageItem]) -> str | None:
    return next((str(i.path.absolute()) for i in items if i.problem is None and i.data is None), None)


def user_error_text(exc: BaseException) -> str | None:
    """The message of the ``UserError`` a worker raised, through Ray's wrappers: as an object
    (``cause``, ``__cause__``) for a failed task, or only as text in the traceback Ray keeps when an
    actor's constructor failed (``ActorDiedError``). None: not a user's error (a bug: re-raised)."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, UserError):
            return str(current)
        stack += [getattr(current, "cause", None), current.__cause__, current.__context__]
    names = _user_error_names(UserError)
    for line in reversed(str(exc).splitlines()):
        match = re.match(r"\s*(?:[\w.]+\.)?(\w+): (.+)", line)
        if match and match.group(1) in names:
            return match.group(2).strip()
    return None


def _user_error_names(cls: type) -> set[str]:
    return {cls.__name__}.union(*(_user_error_names(sub) for sub in cls.__subclasses__()))
