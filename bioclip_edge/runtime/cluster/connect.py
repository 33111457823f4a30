"""Start or join Ray quietly, and say what the cluster holds, before any image is read.

Quiet because the job draws one progress bar of its own: Ray's start-up lines, Ray Data's
per-operator bars and its "execution finished" banners are switched off, and workers' log
lines are not copied to the driver (errors still come back as exceptions). The dashboard is
not started unless asked. Every problem here is a ``ClusterError`` (exit 2, nothing done).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import sys
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.cluster.options import RayOptions

CONNECT_TIMEOUT_S = 5.0
INSTALL_HINT = 'pip install "bioclip-edge[ray]"'


class ClusterError(UserError):
    """Ray missing, a cluster that cannot be reached, or a node that cannot run the plan."""


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    ip: str
    cpus: float


@dataclass(frozen=True)
class ClusterInfo:
    address: str  # what was joined, or "local"
    nodes: tuple[NodeInfo, ...]
    started_here: bool  # this process started Ray (and stops it when done)

    @property
    def cpus(self) -> float:
        return sum(n.cpus for n in self.nodes)

    def describe(self) -> str:
        where = "a local Ray" if self.address == "local" else f"Ray at {self.address}"
        return f"{where}: {len(self.nodes)} node(s), {self.cpus:g} CPUs"


def import_ray() -> Any:
    """``ray``, or a ``ClusterError`` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  the [data] extra: pyarrow, pandas
    except ImportError as exc:
        raise ClusterError(f"--engine ray needs Ray Data, which is not installed ({exc}); {INSTALL_HINT}, "
                           "or run without --engine ray") from None
    return ray


def connect(options: RayOptions) -> ClusterInfo:
    """Join ``options.resolved_address`` or start a local Ray (reusing one this process already runs)."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls from a field box
    address = options.resolved_address
    started = False
    if not ray.is_initialized():
        if address:
            check_reachable(address)
        _init(ray, address, options)
        started = True
    quiet_ray_data(ray)
    nodes = alive_nodes(ray)
    if not nodes:
        raise ClusterError(f"{address or 'the local Ray'}: no node with CPUs is alive; start workers with "
                           "'ray start --address=HEAD:6379'")
    return ClusterInfo(address=address or "local", nodes=nodes, started_here=started)


def _init(ray: Any, address: str | None, options: RayOptions) -> None:
    quiet = {"logging_level": logging.ERROR, "log_to_driver": False, "configure_logging": True}
    # Ray's C++ core prints warnings meant for its developers on this process's stderr (one per
    # Ray Data actor: "constructor arguments in the object store"); fatal only. Setting the level
    # prints one line itself, at start-up, which _captured_stderr holds back unless start-up fails.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    try:
        with _captured_stderr():
            if address:
                ray.init(address=address, **quiet)
            else:
                # "local": a new Ray for this run, even where another one runs on this machine
                ray.init(address="local", num_cpus=options.local_cpus, include_dashboard=options.dashboard, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"RAY_ADDRESS={address}" if address else "a local Ray"
        raise ClusterError(f"cannot start or join {where} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                           "check the address ('ray status' on the head node prints it), or unset RAY_ADDRESS "
                           "to run a local Ray") from None


@contextlib.contextmanager
def _captured_stderr() -> Iterator[None]:
    """File descriptor 2 into a temporary file (C++ writes there, not to ``sys.stderr``); replayed on error."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def check_reachable(address: str) -> None:
    """A ``host:port`` address must accept a connection within seconds; Ray itself retries for a minute."""
    if address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"RAY_ADDRESS={address}: not HOST:PORT (e.g. 10.0.0.5:6379, the head node's "
                           "'ray start --head' address)")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise ClusterError(f"RAY_ADDRESS={address}: cannot reach a Ray head there ({exc}); start one with "
                           "'ray start --head' on that machine, fix the address, or unset RAY_ADDRESS to run a "
                           "local Ray") from None


def quiet_ray_data(ray: Any) -> None:
    """No Ray Data progress bars or banners: the job's own bar is the one display."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    ctx.verbose_stats_logs = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)


def alive_nodes(ray: Any) -> tuple[NodeInfo, ...]:
    nodes = []
    for node in ray.nodes():
        cpus = float((node.get("Resources") or {}).get("CPU", 0))
        if node.get("Alive") and cpus > 0:
            nodes.append(NodeInfo(node["NodeID"], str(node.get("NodeManagerAddress", "?")), cpus))
    return tuple(nodes)


def pool_size(info: ClusterInfo, options: RayOptions) -> tuple[int, float]:
    """(actors, CPUs per actor): by default one actor per node holding the smallest node's CPUs,
    which fills a cluster of equal nodes; asked-for values are kept, within what the cluster has."""
    per_actor = options.cpus_per_actor or min(n.cpus for n in info.nodes)
    fits = sum(math.floor(n.cpus / per_actor + 1e-9) for n in info.nodes)
    if fits < 1:
        raise ClusterError(f"--ray-cpus-per-actor {per_actor:g}: no node has that many CPUs "
                           f"({info.describe()}); ask for fewer")
    actors = options.actors or fits
    if actors > fits:
        raise ClusterError(f"--ray-actors {actors} x {per_actor:g} CPUs does not fit {info.describe()}; "
                           f"at most {fits} actor(s) of {per_actor:g} CPUs fit")
    return actors, per_actor


def disconnect(info: ClusterInfo) -> None:
    """Stop Ray when this process started it (a cluster joined by address keeps running)."""
    if info.started_here:
        import ray

        ray.shutdown()
