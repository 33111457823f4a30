"""``bioclip-edge pack``: a bundle and labels laid out as another program's model (``pack addaxai``)."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "lay out a bundle and labels as another program's model (addaxai: an AddaxAI classification model)"
DESCRIPTION = """Make a model folder another program loads as one of its own.
  pack addaxai BUNDLE --labels labels/site.npz --out addaxai-bioclip/
      an AddaxAI classification model: inference.py, manifest.json, taxonomy.csv, the vision graphs and
      the label matrix (no text tower). Copy the folder to <AddaxAI folder>/models/cls/ and install
      bioclip-edge into AddaxAI's env-pytorch (docs/guides/addaxai.md)."""
EPILOG = """examples:
  bioclip-edge pack addaxai bundles/bioclip --labels labels/site.npz --out addaxai-bioclip/
  bioclip-edge pack addaxai bundles/bioclip --labels "lion,leopard,spotted hyena" --precision int8 --out bioclip-mara/"""
FORMATTER = argparse.RawDescriptionHelpFormatter


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="pack_command", metavar="TARGET", required=True)
    a = sub.add_parser("addaxai", help="an AddaxAI classification model folder (models/cls/<name>)",
                       epilog=EPILOG, formatter_class=FORMATTER)
    a.add_argument("bundle", type=Path, help="bundle folder written by 'bioclip-edge export'")
    a.add_argument("--labels", required=True,
                   help="label matrix (bioclip-edge labels build/import/adapt), a text file with one label per line, "
                        "or \"lion,leopard,empty savanna\" (embedded now: the pack holds a matrix, never the text tower)")
    a.add_argument("--out", type=Path, required=True,
                   help="model folder to write; its name is AddaxAI's model id (letters, digits, . _ -)")
    a.add_argument("--precision", default="auto",
                   help="vision graph(s) to include: auto (default: all, the fastest verified one is chosen on the "
                        "machine AddaxAI runs on, as classify chooses) or one of fp32, fp16, int8, int8-static, int8-nncf")
    a.add_argument("--recipe", default="plain", help="text recipe for labels given as text (default plain)")
    a.add_argument("--name", help="name AddaxAI shows (default: the model and the number of labels)")
    a.add_argument("--env", default="pytorch",
                   help="AddaxAI environment the model runs in, where bioclip-edge must be installed (default pytorch)")
    a.add_argument("--developer", help="developer AddaxAI shows (default: the model id)")
    a.add_argument("--info-url", help="link AddaxAI shows (default: the model's page)")
    a.add_argument("--region", help="AddaxAI's region group: global, africa, americas, asia, europe or oceania")
    a.add_argument("--overwrite", action="store_true", help="replace --out if it is a pack already")
    a.set_defaults(run=run_addaxai)


def run(args: argparse.Namespace) -> int:  # the group itself: argparse requires an action
    return args.run(args)


def run_addaxai(args: argparse.Namespace) -> int:
    from bioclip_edge.runtime.packs.addaxai import AddaxPackRequest, pack_addaxai

    request = AddaxPackRequest(bundle=args.bundle, labels=args.labels, out=args.out, precision=args.precision,
                               recipe=args.recipe, name=args.name, env=args.env, developer=args.developer,
                               info_url=args.info_url, region=args.region, overwrite=args.overwrite)
    pack = pack_addaxai(request)
    print(pack.line())
    print(f"  register it: copy the folder to <AddaxAI folder>/models/cls/{pack.folder.name}/ and install bioclip-edge "
          f"in AddaxAI's env-{pack.manifest['env']} (docs/guides/addaxai.md)")
    return 0
