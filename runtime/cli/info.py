"""``bioclip-edge info``: what a bundle holds, and whether it can be trusted.

Prints the model, where its weights came from (a RANDOM-WEIGHTS warning first when they are
random), the preprocessing, the tokenizer, and every variant with its size and measured parity
against PyTorch. ``--json`` prints the manifest instead. The bundle is opened with checksum
verification, so a corrupt copy is reported here rather than mid-run.
"""

from __future__ import annotations

import argparse

HELP = "show a bundle's model, weights source, preprocessing and variants with sizes and parity"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", metavar="BUNDLE", help="bundle folder")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")
    parser.add_argument("--no-verify", action="store_true", help="skip sha256 checks (faster on huge bundles)")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.engine.bundle import Bundle

    bundle = Bundle.open(args.bundle, verify_checksums=not args.no_verify)
    if args.json:
        print(bundle.manifest.to_json(), end="")
        return 0
    print(describe(bundle))
    return 0


def describe(bundle) -> str:
    m = bundle.manifest
    model, src, pre, tok = m.model, m.model.source, m.preprocess, m.tokenizer
    lines = []
    if src.random_weights:
        seed = f", seed {src.seed}" if src.seed is not None else ""
        lines.append(f"WARNING: RANDOM WEIGHTS{seed}: this bundle is for testing; its predictions mean nothing.")
    lines += [
        f"bundle:       {bundle.root}",
        f"model:        {model.id} ({model.architecture})",
        f"weights:      {src.kind}: {src.ref}" + (" [random]" if src.random_weights else "") + (f" ({src.note})" if src.note else ""),
        f"parameters:   vision {model.params_vision / 1e6:.1f} M, text {model.params_text / 1e6:.1f} M; embedding dim {model.embed_dim}",
        f"scores:       logit scale {model.logit_scale:.2f}" + (f", bias {model.logit_bias:.3f}" if model.logit_bias is not None else ""),
        f"preprocess:   {pre.image_size[0]}x{pre.image_size[1]}, resize {pre.resize_mode}, {pre.interpolation}, "
        f"mean {tuple(round(x, 4) for x in pre.mean)}, std {tuple(round(x, 4) for x in pre.std)}",
        f"tokenizer:    {tok.kind}, context {tok.context_length}" + ("" if tok.available else " (NOT AVAILABLE: text from token ids only)"),
        f"created:      {m.created_at or '?'} by {', '.join(f'{k} {v}' for k, v in m.created_by.items()) or '?'}",
        "",
        f"{'variant':<22} {'size':>10}  {'storage/compute':<16} parity vs PyTorch",
    ]
    for v in m.variants:
        preset = (v.quantization or {}).get("preset")
        lines.append(f"{v.name:<22} {_size(v.total_bytes):>10}  {v.storage + '/' + v.compute:<16} {_parity(v.parity)}"
                     + (f"; NNCF {preset} preset" if preset else ""))
    lines += ["", f"on this machine: {_auto_choice(bundle)}"]
    return "\n".join(lines)


def _auto_choice(bundle) -> str:
    """What ``classify``/``embed`` run with the default ``--precision auto --backend auto``."""
    from bioclip_edge.errors import UserError
    from bioclip_edge.runtime.engine.selection import select_vision

    try:
        chosen = select_vision(bundle)
    except UserError as exc:
        return f"--precision auto cannot choose ({exc})"
    return f"--precision auto runs {chosen.variant.name} on {chosen.backend} ({chosen.reason})"


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def _parity(p) -> str:
    if p is None:
        return "not measured"
    text = f"cos min {p.cosine_min:.5f}, mean {p.cosine_mean:.5f} on {p.n_inputs}"
    if p.top1 is not None:  # clear-margin top-1 (see bioclip_edge.export.parity)
        text += (f"; {p.n_labels} labels: " if p.n_labels else "; ") + p.top1.text()
    elif p.top1_agreement is not None:  # a bundle exported before clear-margin top-1
        text += f"; top-1 agreement {p.top1_agreement:.1%}"
        if p.n_labels:
            text += f" over {p.n_labels} labels"
    return text + ("; PASS" if p.passed else f"; FAIL ({'; '.join(p.misses())})")
