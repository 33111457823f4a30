"""The steps behind ``profile report`` and ``profile size``, callable from Python and benchmarks.

``report``: measure a bundle on this machine, size it on every hardware target, write the folder.
``size``: size a bundle on chosen hardware from an efficiency that is given, read from an earlier
report's JSON, or measured now with a short benchmark (batch 8, the bundle's variant, onnxruntime).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Sequence

from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.plan import PROFILE_ALIASES
from bioclip_edge.profiling.bench import BenchSettings
from bioclip_edge.profiling.flops import DEFAULT_TRIMMED_LENGTH
from bioclip_edge.profiling.measure import ProfileRun, profile_bundle
from bioclip_edge.profiling.sizing import SizingError, PrecisionSizing, efficiency_from_rows, find_hardware, input_for_bundle, load_hardware, size_all

log = logging.getLogger(__name__)


def sizings_for_run(run: ProfileRun, bundle: Bundle, precisions: Sequence[str], images_per_day: int, hardware: str = "all",
                    n_labels: int = 1000, batch: int = 8, hardware_file: str | None = None) -> list[PrecisionSizing]:
    """One ``PrecisionSizing`` per precision that has a measured efficiency in ``run``."""
    table = find_hardware(hardware, load_hardware(hardware_file))
    sizings = []
    for precision in precisions:
        eff = efficiency_from_rows(run.rows, precision)
        if eff is None:
            log.info("no successful %s measurement to size from; skipping it", precision)
            continue
        inp = input_for_bundle(bundle, precision, images_per_day, eff, n_labels, batch, run.flops,
                               label_tokens=run.settings.get("length"))
        sizings.append(size_all(inp, table))
    return sizings


def report(bundle_path: str | Path, out: str | Path, backends: Sequence[str] = ("ort",),
           precisions: Sequence[str] = ("fp32", "int8"), batches: Sequence[int] = (1, 8), threads: Sequence[int] | None = None,
           images_per_day: int = 50_000, n_labels: int = 1000, hardware: str = "all", tower: str = "vision",
           length: int = DEFAULT_TRIMMED_LENGTH, settings: BenchSettings = BenchSettings(), peak_seconds: float = 0.5,
           hardware_file: str | None = None, progress: Callable[[str], None] = lambda m: log.info(m),
           ray_bench: str | Path | None = None) -> Path:
    """Measure, size and write a report folder; returns its path. ``ray_bench``: a bench_ray result
    whose figures add the many-machines estimate (read first: a bad file stops before measuring)."""
    from bioclip_edge.profiling.report import write_report
    from bioclip_edge.profiling.scale_out import from_ray_bench

    scale = from_ray_bench(ray_bench) if ray_bench else None

    run = profile_bundle(bundle_path, backends, precisions, batches, threads, tower, length, settings, peak_seconds, progress)
    bundle = Bundle.open(bundle_path, verify_checksums=False)  # checked once already by profile_bundle
    sizings = []
    if tower == "vision":
        sizing_precisions = [p for p in dict.fromkeys(list(precisions) + (["bf16"] if "openvino" in backends else []))]
        sizings = sizings_for_run(run, bundle, sizing_precisions, images_per_day, hardware, n_labels,
                                batch=max(batches), hardware_file=hardware_file)
    progress(f"writing the report to {out}")
    return write_report(run, out, sizings, images_per_day, scale)


def efficiency_from_report(path: str | Path, precision: str) -> tuple[float, str]:
    """The best measured efficiency for ``precision`` in an earlier report.json (or its folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SizingError(f"--from {path}: not a readable report.json ({exc})") from None
    found = efficiency_from_rows(data.get("rows", []), precision)
    if found is None:
        raise SizingError(f"--from {path}: no successful {precision} vision measurement in it; run "
                          f"'profile report' with --precision {precision} or pass --efficiency")
    return found[0], f"{found[1]} (from {path})"


def measure_efficiency(bundle_path: str | Path, precision: str, batch: int = 8,
                       progress: Callable[[str], None] = lambda m: log.info(m)) -> tuple[float, str]:
    """A short benchmark of one target on this machine, for ``size`` without an earlier report."""
    backend = "openvino" if PROFILE_ALIASES.get(precision, ("", ""))[1] == "openvino" else "ort"  # bf16: OpenVINO
    run = profile_bundle(bundle_path, (backend,), (precision,), (batch,), None, "vision",
                         settings=BenchSettings(warmup=1, min_runs=3, max_runs=10, seconds_per_target=3.0),
                         peak_seconds=0.5, progress=progress)
    found = efficiency_from_rows(run.rows, precision)
    if found is None:
        errors = "; ".join(str(r.get("error")) for r in run.rows if r.get("status") != "ok")
        raise SizingError(f"could not measure {precision} on this machine ({errors or 'no result'}); pass --efficiency")
    return found[0], f"{found[1]} (measured now)"


def size(bundle_path: str | Path, precision: str, images_per_day: int, hardware: str = "all", n_labels: int = 1000,
         batch: int = 8, efficiency: float | None = None, from_report: str | Path | None = None,
         hardware_file: str | None = None, progress: Callable[[str], None] = lambda m: log.info(m)) -> PrecisionSizing:
    """Size one bundle at one precision on the chosen hardware targets."""
    bundle = Bundle.open(bundle_path)
    table = find_hardware(hardware, load_hardware(hardware_file))
    if efficiency is not None:
        eff = (float(efficiency), "given with --efficiency")
    elif from_report is not None:
        eff = efficiency_from_report(from_report, precision)
    else:
        eff = measure_efficiency(bundle_path, precision, batch, progress)
    inp = input_for_bundle(bundle, precision, images_per_day, eff, n_labels, batch)
    return size_all(inp, table)


def ensure_bundle(folder: str | Path, model: str, precisions: Sequence[str] = ("fp32", "int8"), random: bool = True,
                  calibration: str | Path | None = None, parity_images: int | None = None,
                  is_current: Callable[[Bundle], bool] = lambda b: True,
                  progress: Callable[[str], None] = lambda m: log.info(m)) -> Path:
    """A benchmark's bundle, exported once and reused: re-exported when it is missing, fails to
    open, or ``is_current`` says an earlier export lacks something the benchmark reads."""
    from bioclip_edge.export.build import ExportConfig, export_bundle
    from bioclip_edge.export.sources import ModelRequest

    folder = Path(folder)
    if (folder / "manifest.json").is_file():
        try:
            if is_current(Bundle.open(folder)):
                return folder
        except Exception as exc:  # a broken earlier export: make it again
            log.info("re-exporting %s (%s)", folder, exc)
    progress(f"exporting {model} to {folder} (once; a few minutes)")
    request = ModelRequest(model, random=random) if random else ModelRequest(model, allow_random=True)
    extra = {"parity_images": parity_images} if parity_images else {}
    export_bundle(ExportConfig(request=request, out=folder, precisions=tuple(precisions),
                               calibration=Path(calibration) if calibration else None,
                               overwrite=True, progress=progress, **extra))
    return folder
