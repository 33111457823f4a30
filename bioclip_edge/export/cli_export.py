"""``bioclip-edge export``: an open_clip model -> a verified bundle folder."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "export an open_clip model (hf-hub:, local-dir:, name + --pretrained) to an ONNX bundle"
DESCRIPTION = """Export both towers of an open_clip model to ONNX (fp32, fp16, int8), with a manifest,
tokenizer files and parity figures measured against PyTorch. Needs the export extra
(pip install "bioclip-edge[export]"). Models: hf-hub:ORG/REPO, local-dir:PATH, an open_clip
name with --pretrained, or a short name (bioclip, biocap, bioclip-2, bioclip-2.5-huge, openai-b16,
metaclip-b32, ...). Without --calibration, the NNCF int8 graph for OpenVINO (what classify runs
by default there) is calibrated on built-in sample photos; --no-nncf leaves it out."""
EPILOG = """examples:
  bioclip-edge export hf-hub:imageomics/bioclip --out bundles/bioclip
  bioclip-edge export bioclip --out bundles/bioclip --calibration DCIM/   # int8 calibrated on your own frames"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("model", help="hf-hub:ORG/REPO, local-dir:PATH, an open_clip name (ViT-B-16) or a short name (bioclip)")
    p.add_argument("--out", required=True, type=Path, help="bundle folder to write")
    p.add_argument("--pretrained", help="open_clip pretrained tag (openai, metaclip_400m) or a checkpoint file")
    p.add_argument("--precision", default="fp32,fp16,int8", help="comma list of fp32,fp16,int8 (default: all)")
    p.add_argument("--calibration", type=Path, metavar="DIR",
                   help="folder of your own camera's frames to calibrate int8 on: adds a static int8 vision variant "
                        "and calibrates the NNCF one on them (default: NNCF int8 only, calibrated on built-in "
                        "daylight sample photos and crops of them; your own frames, night IR included, calibrate better)")
    p.add_argument("--calibration-images", type=int, metavar="N",
                   help="at most this many calibration images (default 64 from --calibration, 32 built-in)")
    p.add_argument("--no-nncf", action="store_true",
                   help="skip the NNCF int8 variant for OpenVINO (without --calibration: no calibrated variant at all, "
                        "so classify --precision auto runs OpenVINO bf16 or onnxruntime int8 instead)")
    p.add_argument("--nncf-preset", choices=("auto", "performance", "performance-sq", "transformer"), default="auto",
                   help="NNCF int8 preset: auto (default: the first of performance, performance-sq, transformer whose "
                        "min cosine is >= 0.995 and whose top-1 agrees on >= 99%% of the images with a clear margin), "
                        "performance (~1.6x OpenVINO bf16 on ViT-B/16 here), performance-sq (the same speed, with "
                        "SmoothQuant and a float output projection: what ViT-L/14 needed), or transformer (about "
                        "bf16 speed where the CPU has AMX)")
    p.add_argument("--nncf-format", choices=("auto", "onnx", "openvino-ir"), default="auto",
                   help="file kind of the NNCF int8 graph: auto (default: ONNX QDQ, which onnxruntime can also run, "
                        "for fp32 vision graphs up to 1 GB such as ViT-B/16; OpenVINO IR (.xml + .bin, OpenVINO only) "
                        "for larger ones: ViT-L/14 exports in a third of the memory, and ViT-H/14's 2.5 GB graph "
                        "only this way), onnx, or openvino-ir")
    p.add_argument("--parity-images", type=int, default=64, metavar="N",
                   help="photos parity is measured on: your calibration images first, then sample photos and "
                        "crops of them (default 64; fewer export faster, but under 10 with a clear top-1 margin "
                        "leave top-1 not measurable)")
    p.add_argument("--random", action="store_true", help="random weights on purpose (speed and parity work only)")
    p.add_argument("--allow-random", action="store_true", help="if the weights cannot be fetched, export the architecture with random weights (said plainly in the bundle)")
    p.add_argument("--seed", type=int, default=0, help="seed for random weights (default 0)")
    p.add_argument("--resize-mode", choices=("shortest", "squash", "longest"), help="override the model's image resize mode (pybioclip uses squash for TreeOfLife models)")
    p.add_argument("--opset", type=int, default=20, help="ONNX opset (default 20)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle at --out")


def run(args: argparse.Namespace) -> int:
    from bioclip_edge.export.build import ExportConfig, export_bundle, parse_precisions
    from bioclip_edge.export.sources import ModelRequest
    from bioclip_edge.export.summary import print_bundle_summary

    request = ModelRequest(spec=args.model, pretrained=args.pretrained, random=args.random,
                           allow_random=args.allow_random, seed=args.seed, resize_mode=args.resize_mode)
    cfg = ExportConfig(request=request, out=args.out, precisions=parse_precisions(args.precision),
                       calibration=args.calibration, calibration_images=args.calibration_images,
                       parity_images=args.parity_images, opset=args.opset, overwrite=args.overwrite,
                       nncf=not args.no_nncf, nncf_preset=args.nncf_preset, nncf_format=args.nncf_format,
                       progress=lambda m: print(f"- {m}", flush=True))
    manifest = export_bundle(cfg)
    print_bundle_summary(args.out, manifest)
    return 0 if all(v.parity is None or v.parity.passed for v in manifest.variants) else 1
