"""What a user asks of the cluster: where it is and how to fill it (plain data, no Ray import)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from bioclip_edge.errors import OptionError

SHARED_PATHS_NOTE = ("bundles, label files and images must be on paths every node sees (a shared file system "
                     "mounted at the same path on each node)")


@dataclass(frozen=True)
class RayOptions:
    """``--engine ray``'s settings; ``None`` fields are filled from the cluster (``connect.pool_size``)."""

    address: str | None = None  # None: $RAY_ADDRESS (Ray's own convention), else a local Ray on this machine
    actors: int | None = None  # model copies; None: as many as the cluster's CPUs hold
    cpus_per_actor: float | None = None  # None: the CPUs of the smallest node (one actor per node)
    images_per_task: int = 64  # images one actor call decodes and embeds (Ray Data's batch)
    local_cpus: int | None = None  # a local Ray only: CPUs it may use (None: all)
    dashboard: bool = False  # a local Ray only: start Ray's dashboard

    def __post_init__(self) -> None:
        if self.actors is not None and self.actors < 1:
            raise OptionError(f"--ray-actors must be at least 1 (got {self.actors})")
        if self.cpus_per_actor is not None and self.cpus_per_actor <= 0:
            raise OptionError(f"--ray-cpus-per-actor must be positive (got {self.cpus_per_actor})")
        if self.images_per_task < 1:
            raise OptionError(f"images_per_task must be at least 1 (got {self.images_per_task})")

    @property
    def resolved_address(self) -> str | None:
        """The cluster to join: ``address``, else ``$RAY_ADDRESS``; None starts a local Ray."""
        return self.address or os.environ.get("RAY_ADDRESS") or None
