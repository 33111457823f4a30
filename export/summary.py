"""Human-readable bundle summaries: the parity table and size per variant (torch-free)."""

from __future__ import annotations

from pathlib import Path

from ..runtime.manifest import Manifest, Parity, Variant


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def _parity_cells(p: Parity | None) -> tuple[str, str, str, str]:
    if p is None:
        return ("-", "-", "-", "not measured")
    top1 = f"{p.top1_agreement:.3f}" if p.top1_agreement is not None else "-"
    return (f"{p.cosine_min:.6f}", f"{p.cosine_mean:.6f}", top1, "ok" if p.passed else f"BELOW BOUND ({p.metric} >= {p.bound})")


def parity_table(variants: tuple[Variant, ...] | list[Variant]) -> str:
    rows = [("variant", "size", "storage/compute", "cos min", "cos mean", "top-1", "parity")]
    for v in variants:
        rows.append((v.name, _mb(v.total_bytes), f"{v.storage}/{v.compute}", *_parity_cells(v.parity)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


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
    n_bad = sum(1 for v in manifest.variants if v.parity is not None and not v.parity.passed)
    print(f"\n{len(manifest.variants)} variants, {n_bad} below their parity bound" if n_bad else
          f"\n{len(manifest.variants)} variants, all within their parity bounds")
