"""One human-readable rendering of a bundle: header, the parity table per variant, the verdict.

``bioclip-edge export`` prints it after writing a bundle, ``verify`` prints its table, and
``bioclip-edge info`` prints it with the plan this machine would make: one renderer, so the
three never disagree about what a bundle holds.
"""

from __future__ import annotations

from pathlib import Path

from bioclip_edge.runtime.inference.manifest import DecodeCheck, Manifest, Parity, Variant


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _parity_cells(p: Parity | None) -> tuple[str, str, str, str]:
    if p is None:
        return ("-", "-", "-", "not measured")
    if p.top1 is not None:
        top1 = p.top1.cell()
    else:  # a manifest written before clear-margin top-1: agreement over every image
        top1 = f"{p.top1_agreement:.3f}" if p.top1_agreement is not None else "-"
    verdict = "ok" if p.passed else f"BELOW BOUND ({'; '.join(p.misses())})"
    return (f"{p.cosine_min:.6f}", f"{p.cosine_mean:.6f}", top1, verdict)


def parity_table(variants: tuple[Variant, ...] | list[Variant]) -> str:
    rows = [("variant", "size", "storage/compute", "cos min", "cos mean", "top-1", "parity")]
    for v in variants:
        rows.append((v.name, _mb(v.total_bytes), f"{v.storage}/{v.compute}", *_parity_cells(v.parity)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines + top1_legend(variants))


def top1_legend(variants: tuple[Variant, ...] | list[Variant]) -> list[str]:
    """What the top-1 column counts, and where it was not measurable (see bioclip_edge.export.parity)."""
    checks = [(v.name, v.parity) for v in variants if v.parity is not None and v.parity.top1 is not None]
    if not checks:
        return []
    top1 = checks[0][1].top1
    lines = ["", f"top-1: zero-shot agreement with PyTorch fp32 ({top1.images} photos x {checks[0][1].n_labels} labels) "
             "on the images whose fp32 top-1 leads",
             "       by more than 2x the variant's score error; near-ties are not judged; "
             f"under {top1.min_clear} clear images: not measurable, not held"]
    lines += [f"{name}: {p.top1.text()}" for name, p in checks if not p.top1.measurable and p.top1.bound is not None]
    return lines


BUILTIN_CALIBRATION_ADVICE = ("built-in photos are daylight pictures, not your camera's frames (night IR frames "
                              "differ): for the best int8 accuracy, export with --calibration DIR of your own frames")


def calibration_source(calibration: dict) -> str:
    """Which images a variant was calibrated on (its ``quantization.calibration``). Bundles exported
    before the ``source`` phrase was recorded were always calibrated on the user's folder."""
    if calibration.get("source"):
        return str(calibration["source"])
    folder, n = calibration.get("folder"), calibration.get("images", "?")
    return f"user folder {folder} ({n} images)" if folder else f"{n} images"


def quantization_notes(variants: tuple[Variant, ...] | list[Variant]) -> list[str]:
    """One line per NNCF or calibrated variant (preset, calibration images), plus the advice to
    calibrate on one's own frames when any was calibrated on the built-in photos: int8 accuracy
    depends on the images the activation ranges were set on."""
    lines, builtin = [], False
    for v in variants:
        q = v.quantization or {}
        cal = q.get("calibration") if isinstance(q.get("calibration"), dict) else None
        parts = ([f"OpenVINO IR ({v.file} + {v.data_file}): runs on OpenVINO only"] if v.openvino_only else []) + \
            ([f"NNCF {q['preset']} preset"] if q.get("preset") else []) + \
            (["missed the preset gate: --precision auto does not pick it"] if q.get("gate_passed") is False else []) + \
            ([f"calibrated on {calibration_source(cal)}"] if cal else [])
        builtin = builtin or bool(cal and cal.get("kind") == "builtin")
        if parts:
            lines.append(f"{v.name}: " + ", ".join(parts))
    return lines + ([f"note: {BUILTIN_CALIBRATION_ADVICE}"] if builtin else [])


def decode_check_line(check: DecodeCheck | None) -> str:
    """A bundle's decode check (``Manifest.decode_check``), or why ``--decode auto`` decodes exactly."""
    if check is None:
        return "decode check: none recorded (exported before it existed): --decode auto decodes JPEGs exactly"
    return f"decode check: {check.text()}"


def describe_bundle(root: str | Path, manifest: Manifest) -> str:
    """The bundle's model, weights, preprocessing, tokenizer, parity table and verdict."""
    m = manifest.model
    src, pre, tok = m.source, manifest.preprocess, manifest.tokenizer
    lines = []
    if src.random_weights:
        seed = f", seed {src.seed}" if src.seed is not None else ""
        lines.append(f"WARNING: RANDOM WEIGHTS{seed}: this bundle is for testing; its predictions mean nothing.")
    lines += [
        f"bundle:       {root}",
        f"model:        {m.id} ({m.architecture})",
        f"weights:      {src.kind}: {src.ref}" + (" [random]" if src.random_weights else "") + (f" ({src.note})" if src.note else ""),
        f"parameters:   vision {m.params_vision / 1e6:.1f} M, text {m.params_text / 1e6:.1f} M; embedding dim {m.embed_dim}",
        f"scores:       logit scale {m.logit_scale:.2f}" + (f", bias {m.logit_bias:.3f}" if m.logit_bias is not None else ""),
        f"preprocess:   {pre.image_size[0]}x{pre.image_size[1]}, resize {pre.resize_mode}, {pre.interpolation}, "
        f"mean {tuple(round(x, 4) for x in pre.mean)}, std {tuple(round(x, 4) for x in pre.std)}",
        f"tokenizer:    {tok.kind}, context {tok.context_length}" + ("" if tok.available else f" (UNAVAILABLE: {tok.note or 'text from token ids only'})"),
        f"created:      {manifest.created_at or '?'} by {', '.join(f'{k} {v}' for k, v in manifest.created_by.items()) or '?'}",
        "",
        parity_table(manifest.variants),
    ]
    notes = quantization_notes(manifest.variants)
    lines += [""] + notes if notes else []
    lines += ["", decode_check_line(manifest.decode_check)]
    if manifest.export_resources is not None:
        lines.append(f"export:       {manifest.export_resources.text()}")
    if src.random_weights:
        lines.append("weights are RANDOM: labels nearly tie, so many images have no clear top-1 margin; "
                     "top-1 is judged on those that have one")
    n_bad = sum(1 for v in manifest.variants if v.parity is not None and not v.parity.passed)
    lines.append(f"\n{len(manifest.variants)} variants, {n_bad} below their parity bound" if n_bad else
                 f"\n{len(manifest.variants)} variants, all within their parity bounds")
    return "\n".join(lines)
