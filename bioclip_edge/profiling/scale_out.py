"""Images per day on N machines: the measured rate of one node times N, times the measured
efficiency of the cluster engine (its throughput over the local engine's on the same node).

An *estimate*: it assumes the images sit on a shared file system fast enough for every node
(reading, not decoding, becomes the limit somewhere), nodes like the measured one, and Ray's
per-node overhead staying what one node showed. Every assumption is written out with the figures.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from bioclip_edge.errors import UserError

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class ScaleOutRow:
    nodes: int
    images_per_second: float
    images_per_day: float


@dataclass(frozen=True)
class ScaleOutEstimate:
    node_rate: float  # images/s of the local engine on one node (measured)
    ray_efficiency: float  # Ray engine / local engine throughput on that node (measured, same run)
    rows: tuple[ScaleOutRow, ...]
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict:
        return {**asdict(self), "rows": [asdict(r) for r in self.rows], "estimate": True}

    def markdown(self) -> list[str]:
        lines = ["| nodes | images/s | images/day |", "|---|---|---|"]
        lines += [f"| {r.nodes} | {r.images_per_second:.1f} | {r.images_per_day / 1e6:.2f} M |" for r in self.rows]
        return ["**Estimate, not a measurement:**", "", *lines, "", *[f"- {a}" for a in self.assumptions]]


def scale_out(node_rate: float, ray_efficiency: float, nodes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> ScaleOutEstimate:
    """Images/day for each count of ``nodes`` like the measured one."""
    if node_rate <= 0 or ray_efficiency <= 0:
        raise ValueError(f"node_rate and ray_efficiency must be positive (got {node_rate}, {ray_efficiency})")
    per_node = node_rate * ray_efficiency
    rows = tuple(ScaleOutRow(n, per_node * n, per_node * n * SECONDS_PER_DAY) for n in nodes)
    notes = (f"one node: {node_rate:.1f} images/s with the local engine, measured in this run",
             f"the Ray engine ran at {ray_efficiency:.2f}x the local engine on that node, measured in the same run",
             "every node is like the measured one and holds one actor with all its CPUs (the default)",
             "images, bundle and labels are on a shared file system that keeps every node fed; "
             "its read rate is not modelled and becomes the limit on large clusters",
             "the driver's work per image (checkpoint, progress) stays small next to a node's rate")
    return ScaleOutEstimate(node_rate, ray_efficiency, rows, notes)


def from_ray_bench(path: str | Path, nodes: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> ScaleOutEstimate:
    """The estimate from ``benchmarks/bench_ray.py``'s ``result.json`` (or its folder): its measured
    local rate and Ray efficiency, for ``profile report --ray-bench``."""
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return scale_out(float(data["images_per_second"]["local"]), float(data["ray_over_local"]), nodes)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--ray-bench {path}: not a result of benchmarks/bench_ray.py ({exc}); run "
                        "'make bench' (or benchmarks/bench_ray.py --out DIR) and pass DIR/result.json") from None
