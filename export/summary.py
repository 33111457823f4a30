"""Human-readable bundle summaries: the parity table and size per variant (torch-free)."""

from __future__ import annotations

from pathlib import Path

from ..runtime.engine.manifest import Manifest, Parity, Variant


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
    """What the top-1 column counts, and where it was not measurable (see export/parity.py)."""
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


def print_bundle_summary(folder: Path, manifest: Manifest) -> None:
    m = manifest.model
    print(f"\nbundle: {folder}")
    print(f"model: {m.id} ({m.architecture}, embed dim {m.embed_dim}, "
          f"{(m.params_vision + m.params_text) / 1e6:.1f}M params)")
    if m.source.random_weights:
        print(m.source.note)
    else:
        print(f"weights: {m.source.kind} {m.source.ref}")
    tok = manifest.tokenizer
    print(f"tokenizer: {tok.kind}, context {tok.context_length}" + ("" if tok.available else f" (UNAVAILABLE: {tok.note})"))
    pre = manifest.preprocess
    print(f"preprocess: {pre.image_size[0]}x{pre.image_size[1]}, {pre.resize_mode} resize, {pre.interpolation}")
    print()
    print(parity_table(manifest.variants))
    if m.source.random_weights:
        print("weights are RANDOM: labels nearly tie, so many images have no clear top-1 margin; "
              "top-1 is judged on those that have one")
    n_bad = sum(1 for v in manifest.variants if v.parity is not None and not v.parity.passed)
    print(f"\n{len(manifest.variants)} variants, {n_bad} below their parity bound" if n_bad else
          f"\n{len(manifest.variants)} variants, all within their parity bounds")
