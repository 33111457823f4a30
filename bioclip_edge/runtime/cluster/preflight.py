"""Before any work: every node sees the bundle, the label file and the images, and has the backend.

A cluster's workers read files themselves (image bytes never pass through the driver), so a
path that only the driver sees would fail every image on the other nodes, or stop the job after
the model loaded. One tiny task per node (pinned there, no CPU reserved) looks first and
reports every problem at once, naming the node and the path.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from bioclip_edge.runtime.cluster.connect import ClusterError, ClusterInfo
from bioclip_edge.runtime.cluster.options import SHARED_PATHS_NOTE

Check = tuple[str, str]  # (what, path)


def look(checks: Sequence[Check], modules: Sequence[str]) -> list[str]:
    """Run on one node: what of ``checks`` cannot be read and which ``modules`` cannot be imported."""
    import importlib
    import socket

    host = socket.gethostname()
    problems = [f"{what} {path}: not readable on node {host}" for what, path in checks
                if not os.access(path, os.R_OK)]
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            problems.append(f"node {host} cannot import {name} ({exc}); install the same bioclip-edge extras on every node")
    return problems


def check_nodes(info: ClusterInfo, checks: Sequence[Check], modules: Sequence[str]) -> None:
    """``look`` on every node; a ``ClusterError`` listing all problems, before any image is read."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    remote = ray.remote(num_cpus=0, max_retries=0)(look)
    refs = [remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False))
            .remote(list(checks), list(modules)) for node in info.nodes]
    problems = sorted({p for found in ray.get(refs) for p in found})
    if problems:
        raise ClusterError("; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
                           + f". {SHARED_PATHS_NOTE.capitalize()}.")


def visible_everywhere(info: ClusterInfo, path: str) -> bool:
    """Whether every node can read ``path`` (a label matrix is then memory-mapped on each node)."""
    try:
        check_nodes(info, [("file", path)], [])
    except ClusterError:
        return False
    return True


def file_checks(bundle: Any, plan_file: str, first_image: str | None) -> list[Check]:
    """The bundle's manifest and the plan's graph, and one input image (when images come as paths)."""
    root = os.path.abspath(bundle.root)
    checks = [("bundle manifest", os.path.join(root, "manifest.json")), ("bundle graph", os.path.join(root, plan_file))]
    if first_image:
        checks.append(("input image", os.path.abspath(first_image)))
    return checks


def backend_modules(backend: str) -> list[str]:
    return ["onnxruntime", "openvino"] if backend.startswith("openvino") else ["onnxruntime"]
