"""Export an open_clip model to a bundle folder: graphs, variants, tokenizer, parity, manifest.

The bundle is written to ``<out>.partial`` and renamed into place only when every variant has
been written, loaded back into onnxruntime and measured, so an interrupted export never leaves
a folder that looks complete: the manifest, written last, is what makes a folder a bundle, and
``Bundle.open`` refuses a ``.partial`` folder as an unfinished export. A disk that fills (or is
read-only, or fails) half-way removes the working folder and raises a ``WriteFailure`` naming it.
"""

from __future__ import annotations

import datetime as _dt
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.common.files import write_errors
from bioclip_edge.runtime.inference.bundle import PARTIAL_SUFFIX
from bioclip_edge.runtime.inference.manifest import PRECISIONS, SCHEMA_VERSION, ExportResources, Manifest, Variant
from bioclip_edge.export import precision as prec
from bioclip_edge.export.build_facts import versions
from bioclip_edge.export.calibration import (
    BUILTIN_CALIBRATION_IMAGES,
    FOLDER_CALIBRATION_IMAGES,
    CalibrationSet,
    calibration_files,
    calibration_set,
)
from bioclip_edge.export.int8_calibrated import NNCF_FORMATS, NncfRequest, nncf_variant, static_variant
from bioclip_edge.export.onnx_export import DEFAULT_OPSET, OnnxFile
from bioclip_edge.export.parity import REFERENCE_FILE, Reference, measure, run_variant
from bioclip_edge.export.resources import give_back_memory, peak_rss_bytes
from bioclip_edge.export.sources import ModelRequest
from bioclip_edge.export.torch_process import run_torch_stage_in_child
from bioclip_edge.export.variant_record import variant_record

if TYPE_CHECKING:  # torch_stage imports torch, which runs in a child process (torch_process)
    from bioclip_edge.export.torch_stage import TorchResults

log = logging.getLogger(__name__)

PRECISION_CHOICES = PRECISIONS  # export --precision: the precisions a manifest variant records


class ExportError(UserError):
    """An export request that cannot be carried out as given."""


@dataclass(frozen=True)
class ExportConfig:
    request: ModelRequest
    out: Path
    precisions: tuple[str, ...] = PRECISION_CHOICES
    calibration: Path | None = None  # folder of the user's images: adds a static int8 vision variant
    calibration_images: int | None = None  # at most this many: default 64 from the folder, 32 built-in photos
    opset: int = DEFAULT_OPSET
    parity_images: int = 64  # photos and crops parity is measured on (see export/reference.py)
    nncf: bool = True  # an NNCF int8 vision variant for OpenVINO when nncf is installed (built-in photos without calibration)
    nncf_preset: str = "auto"  # performance if it passes the gate (see int8_calibrated.nncf_variant), else transformer
    nncf_format: str = "auto"  # onnx | openvino-ir | auto: OpenVINO IR for fp32 vision graphs over 1 GB, else ONNX
    overwrite: bool = False
    progress: Callable[[str], None] = field(default=lambda msg: log.info(msg), compare=False)


def export_bundle(cfg: ExportConfig) -> Manifest:
    """Run the whole export; returns the manifest written to ``cfg.out``."""
    _check_config(cfg)
    say = cfg.progress
    out = Path(cfg.out)
    work = out.with_name(out.name + PARTIAL_SUFFIX)  # the name Bundle.open refuses as unfinished
    shutil.rmtree(work, ignore_errors=True)
    try:
        with write_errors(work, note=f"the unfinished export was removed; {out} was not changed"):
            work.mkdir(parents=True)
            manifest = _export_into(cfg, work, say)
            _readable(work)
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest


def _readable(folder: Path) -> None:
    """Bundles are shared between users: the quantizer writes some files 0600; give them umask defaults."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    for path in folder.rglob("*"):
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


def _check_config(cfg: ExportConfig) -> None:
    bad = [p for p in cfg.precisions if p not in PRECISION_CHOICES]
    if bad or not cfg.precisions:
        raise ExportError(f"--precision {','.join(cfg.precisions)}: choose from {','.join(PRECISION_CHOICES)}")
    if "fp32" not in cfg.precisions:
        raise ExportError("--precision must include fp32: the other variants are derived from it and measured against it")
    if cfg.parity_images < 1:
        raise ExportError(f"--parity-images {cfg.parity_images}: parity needs at least 1 image (default 64)")
    out = Path(cfg.out)
    if out.exists() and not cfg.overwrite:
        raise ExportError(f"{out}: already exists; pass --overwrite to replace it or choose another --out")
    if out.exists() and not (out / "manifest.json").exists() and any(out.iterdir()):
        raise ExportError(f"{out}: exists and is not a bundle; refusing to overwrite it")
    if cfg.calibration is not None and "int8" not in cfg.precisions:
        raise ExportError(f"--calibration {cfg.calibration}: calibration images are for the int8 variants; add int8 to --precision")
    if cfg.calibration is not None and not calibration_files(cfg.calibration):
        raise ExportError(f"--calibration {cfg.calibration}: no images found there (jpg, png, tif, webp, bmp)")
    if cfg.nncf_format not in NNCF_FORMATS:
        raise ExportError(f"--nncf-format {cfg.nncf_format}: choose from {', '.join(NNCF_FORMATS)}")
    if cfg.calibration_images is not None and cfg.calibration_images < 1:
        raise ExportError(f"--calibration-images {cfg.calibration_images}: calibration needs at least 1 image "
                          f"(default {FOLDER_CALIBRATION_IMAGES} from --calibration, {BUILTIN_CALIBRATION_IMAGES} built-in)")


def _export_into(cfg: ExportConfig, work: Path, say: Callable[[str], None]) -> Manifest:
    """PyTorch first, in a child process (``torch_stage``, ``torch_process``: reference, fp32
    graphs, the model's facts), then, in this process and from the fp32 files, every derived
    variant, parity, the decode check, the manifest."""
    started = time.perf_counter()
    user_calib = calibration_files(cfg.calibration)[: cfg.calibration_images or FOLDER_CALIBRATION_IMAGES] \
        if cfg.calibration else []
    cal = _calibration(cfg, user_calib, say)
    # the images are decoded in the child: ``cal`` describes them, and its bound ``images`` pickles
    stage = run_torch_stage_in_child(say, cfg.request, work, cfg.parity_images, user_calib,
                                     cal.images if cal is not None else None, cfg.opset)
    torch_results: TorchResults = stage.results
    ref, fp32_files, dynamic_length = torch_results.reference, torch_results.fp32_files, torch_results.dynamic_length

    # The calibrated graphs first: NNCF's quantization is the export's largest step after PyTorch's,
    # and it starts here from this process's smallest resident set. After onnxruntime's quantizer and
    # fp16 conversion, malloc kept 0.9 GB it could not return, and a ViT-L/14 export peaked at 4.0x
    # its fp32 weights in NNCF instead of 3.5x.
    calibrated = _calibrated_variants(cfg, work, cal, torch_results, ref, say) if cal is not None else []
    variants: list[Variant] = []
    for tower, input_name in (("vision", "pixels"), ("text", "input_ids")):
        f = fp32_files[tower]
        variants.append(variant_record(work, f, tower, "fp32", input_name, cfg.opset, dynamic_length))
        variants += _derived_variants(cfg, work, f, tower, input_name, dynamic_length, say)
        give_back_memory()  # the quantizer's protobuf copies sit in malloc's arenas otherwise
    variants += calibrated

    say("measuring parity of every variant against PyTorch")
    variants = [_with_parity(work, v, ref) for v in variants]
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        model=torch_results.model,
        preprocess=torch_results.preprocess,
        tokenizer=torch_results.tokenizer,
        variants=tuple(variants),
        created_by=versions(),
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        parity_reference=REFERENCE_FILE,
    )
    manifest = _with_decode_check(work, manifest, ref, say)
    peak = max(peak_rss_bytes(), stage.peak_rss_bytes)
    resources = ExportResources(round(time.perf_counter() - started, 1), peak, torch_results.fp32_weights_bytes)
    manifest = _replace(manifest, export_resources=resources)
    manifest.write(work)
    say(f"bundle written: {resources.text()}")
    return manifest


def _with_decode_check(work: Path, manifest: Manifest, ref: Reference, say: Callable[[str], None]) -> Manifest:
    """The manifest with its decode check: may ``--decode auto`` draft JPEGs? (``export.decode_check``)."""
    from bioclip_edge.export.decode_check import measure_decode_check

    say("checking draft JPEG decoding against exact (fp32 graph, camera-trap-size frames)")
    check = measure_decode_check(work, manifest, ref)
    log.log(logging.INFO if check.passed else logging.WARNING, "decode check: %s", check.text())
    return _replace(manifest, decode_check=check)


def _nncf_wanted(cfg: ExportConfig, say: Callable[[str], None]) -> bool:
    """NNCF's variant is written when int8 is exported, not opted out, and nncf is installed."""
    if "int8" not in cfg.precisions or not cfg.nncf:
        return False
    if not prec.nncf_available():
        say("skipping the NNCF int8 variant: nncf is not installed (pip install \"bioclip-edge[openvino]\")")
        return False
    return True


def _calibration(cfg: ExportConfig, user_calib: list[Path], say: Callable[[str], None]) -> CalibrationSet | None:
    """The images int8 calibration will see (the user's, else built-in photos for NNCF), or None."""
    if "int8" not in cfg.precisions or not (user_calib or _nncf_wanted(cfg, say)):
        return None
    cal = calibration_set(cfg.calibration, user_calib, cfg.calibration_images)
    for line in cal.announcement() if cal.builtin else ():
        say(line)
    return cal


def _calibrated_variants(cfg: ExportConfig, work: Path, cal: CalibrationSet, torch_results: TorchResults,
                         ref: Reference, say: Callable[[str], None]) -> list[Variant]:
    """Static QDQ (only with the user's images) and NNCF's graph (``export.int8_calibrated``)."""
    fp32, pixels = torch_results.fp32_files["vision"], torch_results.calibration_pixels
    out = [] if cal.builtin else [static_variant(work, fp32, pixels, cal.record("minmax"), cfg.opset, say)]
    if cfg.nncf and prec.nncf_available():
        request = NncfRequest(cfg.nncf_preset, cfg.nncf_format, cfg.opset)
        out.append(nncf_variant(work, fp32, pixels, torch_results.calibration_embeddings, cal.record("minmax"), ref,
                                request, say))
    return out


def _derived_variants(cfg: ExportConfig, work: Path, f: OnnxFile, tower: str, input_name: str,
                      dynamic_length: bool, say: Callable[[str], None]) -> list[Variant]:
    """fp16 (storage) and dynamic int8 variants of one tower's fp32 graph."""
    out = []
    if "fp16" in cfg.precisions:
        say(f"writing {tower} fp16 (fp16 weights, fp32 compute)")
        f16 = prec.to_fp16_storage(f.graph, work / f"{tower}.fp16.onnx")
        out.append(variant_record(work, f16, tower, "fp16", input_name, cfg.opset, dynamic_length,
                                  storage="fp16", compute="fp32"))
    if "int8" in cfg.precisions:
        # The text tower's token embedding is a third of its weights: quantize its Gather too.
        ops = ("MatMul",) if tower == "vision" else ("MatMul", "Gather")
        say(f"quantizing {tower} int8 (dynamic, {'+'.join(ops)}, per-channel)")
        q = prec.QuantSettings("dynamic", op_types=ops)
        f8 = prec.quantize_dynamic_int8(f.graph, work / f"{tower}.int8.onnx", q)
        out.append(variant_record(work, f8, tower, "int8", input_name, cfg.opset, dynamic_length,
                                  storage="int8", compute="int8", quantization=q.to_manifest()))
    return out


def _with_parity(work: Path, v: Variant, ref: Reference) -> Variant:
    got = run_variant(work / v.file, v, ref)
    parity = measure(v, got, ref)
    level = logging.INFO if parity.passed else logging.WARNING
    log.log(level, "%s: cosine min %.6f mean %.6f, %s (%s)", v.name, parity.cosine_min, parity.cosine_mean,
            parity.top1.text(), "ok" if parity.passed else "BELOW BOUND: " + "; ".join(parity.misses()))
    return _replace(v, parity=parity)


def _replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


def parse_precisions(text: str | Sequence[str]) -> tuple[str, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(p.strip().lower() for p in items if p.strip())
