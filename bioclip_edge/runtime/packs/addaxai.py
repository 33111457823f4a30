"""``pack_addaxai``: a bundle and labels -> a model folder AddaxAI's classification worker loads as it is.

The folder (its name is the AddaxAI ``model_id``; it goes under ``<AddaxAI folder>/models/cls/``)::

    inference.py        ModelInference for AddaxAI's worker (templates/addaxai_inference.py)
    manifest.json       AddaxAI's model manifest (app/ml/schemas/model_manifest.py's fields)
    taxonomy.csv        model_class,class,order,family,genus,species (AddaxAI's taxonomy tree)
    bioclip-pack.json   what the runtime reads back (config.PackConfig)
    labels.npz          the label matrix
    bundle/             the vision graphs under a vision-only manifest (vision_bundle)

Labels given as text are embedded here, with the bundle's text tower, so the pack always holds a
matrix and never the text tower. The folder is built beside ``out`` and renamed into place, so a
failed or interrupted pack leaves no half-made model for AddaxAI to list.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from bioclip_edge.errors import OutputTargetError
from bioclip_edge.runtime.common.files import write_errors
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.plan import PRECISION_CHOICES
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.labels.spec import resolve_labels
from bioclip_edge.runtime.labels.taxonomy import RANKS, epithet
from bioclip_edge.runtime.packs.addaxai_model import MAX_CLASSES_RETURNED
from bioclip_edge.runtime.packs.config import PACK_FILE, PackConfig, PackError
from bioclip_edge.runtime.packs.vision_bundle import copy_vision_bundle, vision_variants

ADDAX_ENVS = ("pytorch", "pywildlife", "tensorflow-v1", "tensorflow-v2")  # AddaxAI's classifier envs (models.json)
MIN_APP_VERSION = "7.0.1"  # what AddaxAI's own catalog asks of its classifiers
TAXONOMY_COLUMNS = ("model_class", "class", "order", "family", "genus", "species")
REGIONS = ("global", "africa", "americas", "asia", "europe", "oceania")  # AddaxAI's ModelRegion
_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class AddaxPackRequest:
    """What to pack and how AddaxAI should list it."""

    bundle: str | os.PathLike
    labels: Any  # anything classify's --labels takes: a label file, a text file, "lion,leopard", a LabelMatrix
    out: str | os.PathLike  # the model folder; its name is AddaxAI's model_id
    precision: str = "auto"  # auto: every vision graph, chosen where the pack runs; else that graph alone
    recipe: str = "plain"  # text recipe, for labels given as text
    name: str | None = None  # AddaxAI's friendly_name (default: from the model and the labels)
    env: str = "pytorch"  # AddaxAI environment the worker runs in (bioclip-edge is installed there)
    developer: str | None = None
    info_url: str | None = None
    region: str | None = None
    overwrite: bool = False

    def check(self) -> Path:
        """The output folder, after refusing what cannot work; raised before anything is read."""
        out = Path(self.out)
        if self.precision not in PRECISION_CHOICES:
            raise PackError(f"--precision {self.precision!r}: choose one of {', '.join(PRECISION_CHOICES)}")
        if self.env not in ADDAX_ENVS:
            raise PackError(f"--env {self.env!r}: AddaxAI runs classifiers in {', '.join(ADDAX_ENVS)}; pick one of those")
        if self.region is not None and self.region not in REGIONS:
            raise PackError(f"--region {self.region!r}: choose one of {', '.join(REGIONS)}")
        if not _MODEL_ID.match(out.name):
            raise PackError(f"--out {out}: the folder's name is AddaxAI's model id; use letters, digits, '.', '_' and '-' "
                            "(e.g. addaxai-bioclip)")
        if out.exists() and not out.is_dir():
            raise OutputTargetError(f"pack folder {out} is a file; choose another --out")
        if out.exists() and not self.overwrite:
            raise OutputTargetError(f"pack folder {out} already exists; pass --overwrite to replace it, or choose another --out")
        if out.exists() and not (out / PACK_FILE).is_file() and any(out.iterdir()):  # another model's folder, or anything else
            raise OutputTargetError(f"pack folder {out} holds files that are not a model pack made by bioclip-edge (no {PACK_FILE}); "
                                    "--overwrite replaces only a pack this command made: choose another --out")
        return out


@dataclass(frozen=True)
class AddaxPack:
    """A pack written: where, and what it holds."""

    folder: Path
    config: PackConfig
    manifest: dict[str, Any]
    variants: tuple[str, ...]  # the vision graphs copied
    bytes: int

    def line(self) -> str:
        weights = "; RANDOM weights: its predictions carry no meaning" if self.config.random_weights else ""
        return (f"wrote {self.folder}: AddaxAI model {self.manifest['model_id']!r}, {self.config.labels_count} labels, "
                f"vision {', '.join(self.variants)} ({self.bytes / 1e6:.1f} MB), env-{self.manifest['env']}{weights}")


def pack_addaxai(request: AddaxPackRequest) -> AddaxPack:
    """Write the AddaxAI model folder ``request.out`` (module docstring); returns what was written."""
    out = request.check()
    bundle = Bundle.open(request.bundle)
    vision_variants(bundle, request.precision)  # a precision the bundle lacks is refused before labels are embedded
    labels = resolve_labels(bundle, request.labels, request.recipe)
    check_class_names(labels.names, labels.where())
    work = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(work, ignore_errors=True)
    try:
        with write_errors(work, note=f"nothing was written to {out}"):
            pack = _write_pack(work, out.name, bundle, labels, request)
        _move_into_place(work, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return AddaxPack(out, pack.config, pack.manifest, pack.variants, pack.bytes)


def check_class_names(names: list[str], where: str) -> None:
    """AddaxAI matches labels by lower-cased name: two that differ only in case would be one class."""
    seen: dict[str, str] = {}
    for name in names:
        key = name.strip().lower()
        if key in seen:
            raise PackError(f"{where}: labels {seen[key]!r} and {name!r} are the same name to AddaxAI, which compares "
                            "names in lower case; rename one or leave it out (bioclip-edge labels subset)")
        seen[key] = name


def _write_pack(work: Path, model_id: str, bundle: Bundle, labels: LabelMatrix, request: AddaxPackRequest) -> AddaxPack:
    from bioclip_edge import __version__

    work.mkdir(parents=True)
    vision = copy_vision_bundle(bundle, work / "bundle", request.precision)
    if labels.path is not None:
        shutil.copyfile(labels.path, work / "labels.npz")
    else:
        labels.save(work / "labels.npz")
    model = bundle.manifest.model
    config = PackConfig(target="addaxai", bundle="bundle", labels="labels.npz", precision=request.precision,
                        model_id=model.id, random_weights=bool(model.source.random_weights), labels_count=labels.n,
                        made_by=f"bioclip-edge {__version__}")
    config.write(work)
    manifest = addax_manifest(model_id, bundle, labels, request)
    (work / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (work / "taxonomy.csv").write_text(taxonomy_csv(labels), encoding="utf-8")
    template = resources.files("bioclip_edge.runtime.packs.templates").joinpath("addaxai_inference.py")
    (work / "inference.py").write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    size = sum(p.stat().st_size for p in work.rglob("*") if p.is_file())
    variants = tuple(v.name for v in vision.manifest.variants)
    return AddaxPack(work, config, manifest, variants, size)


def addax_manifest(model_id: str, bundle: Bundle, labels: LabelMatrix, request: AddaxPackRequest) -> dict[str, Any]:
    """AddaxAI's ``ModelManifest`` for the pack: its required fields, said plainly (random weights too)."""
    model = bundle.manifest.model
    random_note = " RANDOM weights: its predictions carry no meaning." if model.source.random_weights else ""
    source = labels.path.name if labels.path is not None else "labels given as text"
    manifest: dict[str, Any] = {
        "model_id": model_id,
        "friendly_name": request.name or f"{_short_model(model.id)} zero-shot ({labels.n} labels)",
        "env": request.env,
        "model_fname": "bioclip-pack.json",
        "description": (f"Zero-shot classifier: {model.id} ({model.architecture}) scores each MegaDetector box against "
                        f"{labels.n} labels ({source}). Made with bioclip-edge; runs on its torch-free runtime, which "
                        f"must be installed in AddaxAI's env-{request.env}.{random_note}"),
        "description_short": f"{labels.n} labels • {model.architecture} • bioclip-edge",
        "developer": request.developer or f"{model.id}, packed with bioclip-edge",
        "info_url": request.info_url or _info_url(model.id),
        "min_app_version": MIN_APP_VERSION,
    }
    if labels.n <= MAX_CLASSES_RETURNED:
        manifest["species_list"] = list(labels.names)
    if request.region:
        manifest["region"] = request.region
    return manifest


def taxonomy_csv(labels: LabelMatrix) -> str:
    """``model_class,class,order,family,genus,species`` per label, lower case, the species as its
    epithet (AddaxAI shows ``P. leo``); ranks left empty where the labels carry none."""
    ranks = {rank: labels.column(rank) for rank in RANKS} if labels.has_taxonomy else None
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(TAXONOMY_COLUMNS)
    for i, name in enumerate(labels.names):
        if ranks is None:
            writer.writerow([name, "", "", "", "", ""])
            continue
        genus = ranks["genus"][i].strip()
        row = [ranks[r][i] for r in ("class", "order", "family")] + [genus, epithet(genus, ranks["species"][i])]
        writer.writerow([name] + [value.strip().lower() for value in row])
    return buffer.getvalue()


def _short_model(model_id: str) -> str:
    return model_id.split(":", 1)[-1].rstrip("/").split("/")[-1] or model_id


def _info_url(model_id: str) -> str:
    """The model's page when the id says where it came from, else open_clip's (every bundle is an open_clip model)."""
    if model_id.startswith("hf-hub:"):
        return "https://huggingface.co/" + model_id.split(":", 1)[1]
    return "https://github.com/mlfoundations/open_clip"


def _move_into_place(work: Path, out: Path) -> None:
    """Rename the finished folder to ``out``; an old pack there (``--overwrite``) goes only once the new one is in."""
    old = out.with_name(f".{out.name}.{os.getpid()}.old")
    if out.exists():
        out.rename(old)
    try:
        work.rename(out)
    except OSError:
        if old.exists():
            old.rename(out)  # the old pack goes back where it was
        raise
    shutil.rmtree(old, ignore_errors=True)
