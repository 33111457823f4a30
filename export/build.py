"""Export an open_clip model to a bundle folder: graphs, variants, tokenizer, parity, manifest.

The bundle is written to ``<out>.partial`` and renamed into place only when every variant has
been written, loaded back into onnxruntime and measured, so an interrupted export never leaves
a folder that looks complete.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import UserError
from ..runtime.engine.bundle import sha256_file
from ..runtime.engine.manifest import (
    SCHEMA_VERSION,
    Manifest,
    ModelInfo,
    Preprocess,
    Variant,
)
from . import precision as prec
from .calibration import BUILTIN_CALIBRATION_IMAGES, FOLDER_CALIBRATION_IMAGES, calibration_files, calibration_set
from .onnx_export import DEFAULT_OPSET, OnnxFile, export_tower
from .nncf_gate import choose_preset, gate_figures, gate_misses, preset_verdict
from .parity import REFERENCE_FILE, Reference, measure, run_variant
from .sources import LoadedModel, ModelRequest, load_model
from .towers import VisionTower, count_params, text_tower_for, use_export_attention

log = logging.getLogger(__name__)

PRECISION_CHOICES = ("fp32", "fp16", "int8")


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
    nncf_preset: str = "auto"  # performance if it passes the gate (see _nncf_variant), else transformer
    overwrite: bool = False
    progress: Callable[[str], None] = field(default=lambda msg: log.info(msg), compare=False)


def export_bundle(cfg: ExportConfig) -> Manifest:
    """Run the whole export; returns the manifest written to ``cfg.out``."""
    _check_config(cfg)
    say = cfg.progress
    out = Path(cfg.out)
    work = out.with_name(out.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
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
    if cfg.calibration_images is not None and cfg.calibration_images < 1:
        raise ExportError(f"--calibration-images {cfg.calibration_images}: calibration needs at least 1 image "
                          f"(default {FOLDER_CALIBRATION_IMAGES} from --calibration, {BUILTIN_CALIBRATION_IMAGES} built-in)")


def _export_into(cfg: ExportConfig, work: Path, say: Callable[[str], None]) -> Manifest:
    started = time.perf_counter()
    say(f"loading {cfg.request.spec}")
    loaded = load_model(cfg.request)  # logs a warning when the weights are random
    text_cfg = dict(loaded.model_cfg.get("text_cfg", {}))
    context = int(getattr(getattr(loaded.model, "text", loaded.model), "context_length", text_cfg.get("context_length", 77)))
    text_cfg.setdefault("context_length", context)
    text_cfg.setdefault("pool_type", getattr(loaded.model, "text_pool_type", "argmax"))

    calib = calibration_files(cfg.calibration)[: cfg.calibration_images or FOLDER_CALIBRATION_IMAGES] \
        if cfg.calibration else []
    ref = _reference(cfg, loaded, text_cfg, calib, work, say)

    variants: list[Variant] = []
    fp32_files: dict[str, OnnxFile] = {}
    swapped = use_export_attention(loaded.model)  # after the PyTorch reference: parity is against open_clip itself
    log.info("exporting %d attention blocks with the batch-first attention graph", swapped)
    vision_tower = VisionTower(loaded.model).eval()
    text_tower, dynamic_length = text_tower_for(loaded.model)
    for tower, module, example, input_name, arg in (
        ("vision", vision_tower, torch.from_numpy(ref.pixels[:2]), "pixels", "pixels"),
        ("text", text_tower, torch.from_numpy(_example_ids(ref, dynamic_length, context)), "input_ids", "ids"),
    ):
        say(f"exporting {tower} tower (fp32)")
        f = export_tower(module, example, work / f"{tower}.fp32.onnx", input_name, arg,
                         dynamic_length=context if (tower == "text" and dynamic_length) else None, opset=cfg.opset)
        fp32_files[tower] = f
        variants.append(_variant(work, f, tower, "fp32", input_name, cfg.opset, dynamic_length))
        variants += _derived_variants(cfg, work, f, tower, input_name, dynamic_length, say)

    if "int8" in cfg.precisions:
        variants += _calibrated_variants(cfg, work, loaded, calib, fp32_files["vision"], ref, dynamic_length, say)

    say("measuring parity of every variant against PyTorch")
    variants = [_with_parity(work, v, ref) for v in variants]
    from .tokenizer_files import write_tokenizer_files

    tokenizer = write_tokenizer_files(loaded.tokenizer, _tokenizer_cfg(loaded, text_cfg), work)
    if loaded.tokenizer_error and tokenizer.available:
        tokenizer = _replace(tokenizer, note=loaded.tokenizer_error)
    manifest = Manifest(
        schema_version=SCHEMA_VERSION,
        model=_model_info(loaded, text_tower),
        preprocess=_preprocess(loaded),
        tokenizer=tokenizer,
        variants=tuple(variants),
        created_by=_versions(),
        created_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        parity_reference=REFERENCE_FILE,
    )
    manifest = _with_decode_check(work, manifest, ref, say)
    manifest.write(work)
    say(f"bundle written in {time.perf_counter() - started:.0f} s")
    return manifest


def _with_decode_check(work: Path, manifest: Manifest, ref: Reference, say: Callable[[str], None]) -> Manifest:
    """The manifest with its decode check: may ``--decode auto`` draft JPEGs? (``export.decode_check``)."""
    from .decode_check import measure_decode_check

    say("checking draft JPEG decoding against exact (fp32 graph, camera-trap-size frames)")
    check = measure_decode_check(work, manifest, ref)
    log.log(logging.INFO if check.passed else logging.WARNING, "decode check: %s", check.text())
    return _replace(manifest, decode_check=check)


def _reference(cfg: ExportConfig, loaded: LoadedModel, text_cfg: dict, calib: list[Path], work: Path,
               say: Callable[[str], None]) -> Reference:
    """PyTorch's outputs on the parity photos and labels, saved into the bundle for ``verify``."""
    from .reference import build_reference

    say(f"measuring PyTorch reference outputs on {cfg.parity_images} photos")
    ref = build_reference(loaded, text_cfg, cfg.parity_images, extra_images=calib[: cfg.parity_images])
    ref.save(work / REFERENCE_FILE)
    return ref


def _calibrated_variants(cfg: ExportConfig, work: Path, loaded: LoadedModel, calib: list[Path], fp32: OnnxFile,
                         ref: Reference, dynamic_length: bool, say: Callable[[str], None]) -> list[Variant]:
    """The vision int8 variants that need calibration images. With ``--calibration``: static QDQ and
    NNCF's for OpenVINO, both on the user's images, as always. Without: only NNCF's, on the built-in
    sample photos (``export.calibration``), because ``--precision auto`` runs it on OpenVINO; the
    static QDQ graph is for onnxruntime users who name it, and is worth its size only when
    calibrated on their own frames."""
    from .reference import preprocess

    nncf = cfg.nncf and prec.nncf_available() and fp32.data is None
    if cfg.nncf and not nncf:
        say("skipping the NNCF int8 variant: " + ("nncf is not installed (pip install \"bioclip-edge[openvino]\")"
                                                  if not prec.nncf_available() else "graphs over 2 GB are not supported"))
    if not calib and not nncf:
        return []
    cal = calibration_set(cfg.calibration, calib, cfg.calibration_images)
    for line in cal.announcement() if cal.builtin else ():
        say(line)
    pixels = preprocess(loaded, cal.images)
    out = [_static_variant(cfg, work, fp32, pixels, cal.record("minmax"), dynamic_length, say)] if calib else []
    if nncf:
        out.append(_nncf_variant(cfg, work, fp32, pixels, cal.record("minmax"), ref, dynamic_length, say))
    return out


def _static_variant(cfg: ExportConfig, work: Path, fp32: OnnxFile, pixels: np.ndarray, calibration: dict,
                    dynamic_length: bool, say: Callable[[str], None]) -> Variant:
    """onnxruntime's static QDQ int8 of the vision graph, calibrated on the user's images."""
    say(f"quantizing vision int8 (static QDQ, calibrated on {len(pixels)} images from {cfg.calibration})")
    q = prec.QuantSettings("static", calibration=calibration)
    f8s = prec.quantize_static_int8(fp32.graph, work / "vision.int8-static.onnx",
                                    (pixels[i:i + 8] for i in range(0, len(pixels), 8)), "pixels", q)
    return _variant(work, f8s, "vision", "int8", "pixels", cfg.opset, dynamic_length, name="vision.int8-static",
                    storage="int8", compute="int8", quantization=q.to_manifest())


def _nncf_variant(cfg: ExportConfig, work: Path, fp32: OnnxFile, pixels: np.ndarray, calibration: dict,
                  ref: Reference, dynamic_length: bool, say: Callable[[str], None]) -> Variant:
    """The NNCF int8 vision graph for OpenVINO. Preset ``auto`` keeps the fast ``performance``
    preset when it passes the gate (``nncf_gate.choose_preset``) on the reference photos plus the
    calibration images; otherwise the ``transformer`` preset is quantized and *measured the same
    way*, and the one that passes (or, when both miss, the one closer to fp32) is written. The
    manifest records both figures, the decision and ``gate_passed``: ``--precision auto`` never
    picks a graph that missed the gate."""
    if cfg.nncf_preset != "auto":
        return _nncf_candidate(cfg, work, fp32, pixels, calibration, cfg.nncf_preset, work / "vision.int8-nncf.onnx", say)[0]
    gate_pixels = np.concatenate([ref.pixels, pixels])
    fast, fast_file = _nncf_candidate(cfg, work, fp32, pixels, calibration, "performance", work / "vision.int8-nncf.onnx", say)
    measured = [("performance", fast, gate_figures(fp32.graph, fast_file.graph, gate_pixels, ref.text_embeddings))]
    if gate_misses(measured[0][2]):
        other, other_file = _nncf_candidate(cfg, work, fp32, pixels, calibration, "transformer",
                                            work / "vision.int8-nncf.transformer.onnx", say)
        measured.append(("transformer", other, gate_figures(fp32.graph, other_file.graph, gate_pixels, ref.text_embeddings)))
    preset, variant, figures = choose_preset(measured)
    note = f"auto: {preset_verdict(measured, preset)}"
    say(note)
    if preset == "transformer":  # the chosen graph takes the variant's file name
        os.replace(work / "vision.int8-nncf.transformer.onnx", work / "vision.int8-nncf.onnx")
        variant = _replace(variant, file="vision.int8-nncf.onnx")
    else:
        (work / "vision.int8-nncf.transformer.onnx").unlink(missing_ok=True)
    quant = {**(variant.quantization or {}), "preset_note": note, "gate_passed": not gate_misses(figures)}
    return _replace(variant, quantization=quant)


def _nncf_candidate(cfg: ExportConfig, work: Path, fp32: OnnxFile, pixels: np.ndarray, calibration: dict, preset: str,
                    target: Path, say: Callable[[str], None]) -> tuple[Variant, OnnxFile]:
    """One preset's NNCF graph at ``target``, as the ``vision.int8-nncf`` variant it would be."""
    say(f"quantizing vision int8 with NNCF ({preset} preset, for OpenVINO) on {len(pixels)} images")
    qn = prec.QuantSettings("static", op_types=("all",), calibration={**calibration, "method": f"nncf-{preset}"})
    f8n = prec.quantize_nncf_int8(fp32.graph, target, [pixels[i:i + 1] for i in range(len(pixels))], "pixels", qn, preset)
    quant = {**qn.to_manifest(), "tool": "nncf", "preset": preset, "for_backend": "openvino"}
    variant = _variant(work, f8n, "vision", "int8", "pixels", cfg.opset, False, name="vision.int8-nncf",
                       storage="int8", compute="int8", quantization=quant)
    return variant, f8n


def _derived_variants(cfg: ExportConfig, work: Path, f: OnnxFile, tower: str, input_name: str,
                      dynamic_length: bool, say: Callable[[str], None]) -> list[Variant]:
    """fp16 (storage) and dynamic int8 variants of one tower's fp32 graph."""
    out = []
    if "fp16" in cfg.precisions:
        say(f"writing {tower} fp16 (fp16 weights, fp32 compute)")
        f16 = prec.to_fp16_storage(f.graph, work / f"{tower}.fp16.onnx")
        out.append(_variant(work, f16, tower, "fp16", input_name, cfg.opset, dynamic_length,
                            storage="fp16", compute="fp32"))
    if "int8" in cfg.precisions:
        # The text tower's token embedding is a third of its weights: quantize its Gather too.
        ops = ("MatMul",) if tower == "vision" else ("MatMul", "Gather")
        say(f"quantizing {tower} int8 (dynamic, {'+'.join(ops)}, per-channel)")
        q = prec.QuantSettings("dynamic", op_types=ops)
        f8 = prec.quantize_dynamic_int8(f.graph, work / f"{tower}.int8.onnx", q)
        out.append(_variant(work, f8, tower, "int8", input_name, cfg.opset, dynamic_length,
                            storage="int8", compute="int8", quantization=q.to_manifest()))
    return out


def _example_ids(ref: Reference, dynamic_length: bool, context: int) -> np.ndarray:
    if dynamic_length:
        return ref.ids[:2]
    ids = np.zeros((2, context), dtype=np.int32)
    ids[:, : ref.ids.shape[1]] = ref.ids[:2]
    return ids


def _variant(work: Path, f: OnnxFile, tower: str, precision: str, input_name: str, opset: int,
             dynamic_length: bool, name: str | None = None, storage: str = "fp32", compute: str = "fp32",
             quantization: dict | None = None) -> Variant:
    return Variant(
        name=name or f"{tower}.{precision}",
        tower=tower,
        precision=precision,
        file=f.graph.name,
        sha256=sha256_file(f.graph),
        size_bytes=f.graph.stat().st_size,
        opset=opset,
        input_name=input_name,
        output_name="embeddings",
        dynamic_length=dynamic_length if tower == "text" else False,
        data_file=f.data.name if f.data else None,
        data_sha256=sha256_file(f.data) if f.data else None,
        data_size_bytes=f.data.stat().st_size if f.data else None,
        storage=storage,
        compute=compute,
        quantization=quantization,
    )


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


def _tokenizer_cfg(loaded: LoadedModel, text_cfg: dict) -> dict:
    cfg = dict(loaded.model_cfg)
    cfg["text_cfg"] = text_cfg
    return cfg


def _model_info(loaded: LoadedModel, text_tower) -> ModelInfo:
    model = loaded.model
    scale = float(model.logit_scale.exp().item()) if getattr(model, "logit_scale", None) is not None else 100.0
    bias = getattr(model, "logit_bias", None)
    embed_dim = _embed_dim(loaded)
    return ModelInfo(
        id=loaded.id,
        architecture=loaded.architecture,
        source=loaded.source,
        embed_dim=embed_dim,
        logit_scale=scale,
        logit_bias=float(bias.item()) if bias is not None else None,
        params_vision=count_params(model.visual),
        params_text=count_params(text_tower),
        open_clip_config=loaded.model_cfg,
    )


def _embed_dim(loaded: LoadedModel) -> int:
    dim = loaded.model_cfg.get("embed_dim")
    if dim:
        return int(dim)
    return int(getattr(loaded.model.visual, "output_dim"))


def _image_size(loaded: LoadedModel) -> tuple[int, int]:
    size = loaded.preprocess_cfg.get("size", 224)
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _preprocess(loaded: LoadedModel) -> Preprocess:
    pre = loaded.preprocess_cfg
    return Preprocess(
        image_size=_image_size(loaded),
        resize_mode=str(pre.get("resize_mode", "shortest")),
        interpolation=str(pre.get("interpolation", "bicubic")),
        mean=tuple(float(x) for x in pre["mean"]),
        std=tuple(float(x) for x in pre["std"]),
        fill_color=int(pre.get("fill_color", 0)),
    )


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import open_clip

    from .. import __version__

    return {"bioclip_edge": __version__, "torch": torch.__version__, "open_clip": open_clip.__version__,
            "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}


def parse_precisions(text: str | Sequence[str]) -> tuple[str, ...]:
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(p.strip().lower() for p in items if p.strip())
