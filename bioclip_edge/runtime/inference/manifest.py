"""The bundle manifest: the contract between the exporter and the runtime.

Everything the runtime needs to reproduce open_clip's behaviour is written here, so the
runtime has no hidden defaults: image size, resize mode, interpolation, mean/std, tokenizer
kind and ids, text pooling, and every ONNX variant with its checksum and measured parity.

Plain dataclasses with explicit (de)serialisation keep this module dependency-free.

Optional top-level records, added without a schema version change (``from_dict`` of an older
bioclip-edge builds the manifest from the fields it knows, so it ignores them; this one reads
their absence as "not measured"):

* ``decode_check`` (``DecodeCheck``): draft vs exact JPEG decoding measured at export; what
  ``--decode auto`` decides by. Absent or null: exact decoding.
* ``export_resources`` (``ExportResources``): how long the export took and its peak resident
  memory against the fp32 weights' size. Absent or null: not recorded.

Variant file kinds (``Variant.format``, ``VARIANT_FORMATS``):

* ``onnx`` (the default, and the only kind before it was recorded): ``file`` is an ONNX graph,
  ``data_file`` its external data when over 1 GB. onnxruntime and OpenVINO both read it.
* ``openvino-ir``: ``file`` is OpenVINO's model (``.xml``), ``data_file`` its weights (``.bin``),
  both with sha256 and size. Only OpenVINO runs it; the runtime refuses it on onnxruntime with a
  message saying so. Written for the NNCF int8 graph of vision towers over 1 GB (ViT-L/14, ViT-H/14): NNCF's
  ONNX path held 13 GB on ViT-L/14 and cannot hold ViT-H/14; its OpenVINO path quantizes from the file. ``format`` is written only when
  it is not ``onnx``, so bundles without such a variant read as before, and an older bioclip-edge
  meeting one stops with "unknown field(s) ['format']" instead of loading a file it cannot run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.common.files import write_atomic
from bioclip_edge.runtime.inference.measurements import (  # noqa: F401 (re-exported: the manifest's records)
    DecodeCheck,
    ExportResources,
    Parity,
    Top1Check,
)

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

TOWERS = ("vision", "text")
PRECISIONS = ("fp32", "fp16", "int8")
VARIANT_FORMATS = ("onnx", "openvino-ir")  # see the module docstring
RESIZE_MODES = ("shortest", "longest", "squash")
INTERPOLATIONS = ("bicubic", "bilinear", "nearest")


class ManifestError(UserError, ValueError):
    """A manifest that cannot be used: names the file and what is wrong."""


@dataclass(frozen=True)
class WeightsSource:
    """Where the weights came from; ``random_weights`` is said plainly everywhere."""

    kind: str  # hf-hub | local-dir | checkpoint | pretrained-tag | random
    ref: str  # the spec the user gave (repo id, folder, file, tag)
    random_weights: bool
    note: str = ""
    checkpoint_sha256: str | None = None
    seed: int | None = None  # for random weights: torch seed that rebuilds them


@dataclass(frozen=True)
class ModelInfo:
    id: str  # what the user asked for, e.g. hf-hub:imageomics/bioclip
    architecture: str  # open_clip model name, e.g. ViT-B-16
    source: WeightsSource
    embed_dim: int
    logit_scale: float  # already exp()'d: logits = logit_scale * cos + logit_bias
    logit_bias: float | None
    params_vision: int
    params_text: int
    open_clip_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preprocess:
    """open_clip's eval transform, spelled out (see open_clip.transform.image_transform_v2)."""

    image_size: tuple[int, int]  # (height, width) fed to the vision tower
    resize_mode: str  # shortest: resize shortest side + centre crop; squash: resize to size; longest: fit + pad
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    fill_color: int = 0  # padding value for resize_mode=longest

    def validate(self, where: str) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ManifestError(f"{where}: preprocess.resize_mode {self.resize_mode!r} is not one of {RESIZE_MODES}")
        if self.interpolation not in INTERPOLATIONS:
            raise ManifestError(f"{where}: preprocess.interpolation {self.interpolation!r} is not one of {INTERPOLATIONS}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ManifestError(f"{where}: preprocess.mean/std must be 3 values with std > 0")


@dataclass(frozen=True)
class TokenizerSpec:
    """How label text becomes token ids, exactly as open_clip's tokenizer does it.

    kind: ``clip_bpe`` (open_clip SimpleTokenizer; ``tokenizer.json`` in HF tokenizers format holds
    the same BPE) or ``hf`` (a Hugging Face tokenizer, e.g. facebook/xlm-v-base for MetaCLIP 2).
    ``available`` is False when the exporter could not obtain the tokenizer files (no hub access):
    such a bundle embeds images, and text only from token ids.
    """

    kind: str
    context_length: int
    eot_id: int
    pad_id: int
    sot_id: int | None
    pool: str  # argmax | eos | first | last: how the text tower picks its output token
    clean: str  # open_clip clean function: lower | whitespace | canonicalize
    files: dict[str, str] = field(default_factory=dict)  # role -> path relative to the bundle
    hf_name: str | None = None
    available: bool = True
    note: str = ""


@dataclass(frozen=True)
class Variant:
    """One ONNX graph of one tower at one precision."""

    name: str  # e.g. vision.fp32, vision.int8-static
    tower: str
    precision: str
    file: str  # relative to the bundle
    sha256: str
    size_bytes: int
    opset: int
    input_name: str
    output_name: str
    dynamic_length: bool = True  # text only: accepts token ids shorter than context_length
    data_file: str | None = None  # ONNX external data (graphs with over 1 GB of weights)
    data_sha256: str | None = None
    data_size_bytes: int | None = None
    storage: str = "fp32"  # dtype of the stored weights
    compute: str = "fp32"  # dtype the graph computes in on CPU
    quantization: dict[str, Any] | None = None  # mode (dynamic|static), per_channel, op_types, calibration
    parity: Parity | None = None
    format: str = "onnx"  # onnx | openvino-ir (module docstring); written only when not onnx

    @property
    def total_bytes(self) -> int:
        return self.size_bytes + (self.data_size_bytes or 0)

    @property
    def openvino_only(self) -> bool:
        """An OpenVINO IR file: onnxruntime cannot read it."""
        return self.format == "openvino-ir"


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    model: ModelInfo
    preprocess: Preprocess
    tokenizer: TokenizerSpec
    variants: tuple[Variant, ...]
    created_by: dict[str, str] = field(default_factory=dict)
    created_at: str = ""
    parity_reference: str | None = None  # npz with the torch inputs/outputs parity was measured on
    decode_check: DecodeCheck | None = None  # draft vs exact decoding, measured at export (None: older bundle)
    export_resources: ExportResources | None = None  # time and peak memory of the export (None: not recorded)

    def variant(self, tower: str, precision: str | None = None, name: str | None = None) -> Variant:
        """Pick a variant by name, or by tower and precision (first match)."""
        for v in self.variants:
            if name is not None and v.name == name:
                return v
            if name is None and v.tower == tower and (precision is None or v.precision == precision):
                return v
        have = ", ".join(v.name for v in self.variants) or "none"
        want = name or f"{tower}.{precision or '*'}"
        raise ManifestError(f"bundle has no variant {want!r} (it has: {have})")

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        for v in data["variants"]:  # ONNX is the default kind: leave it out (module docstring)
            if v.get("format") == "onnx":
                del v["format"]
        if data.get("export_resources") is None:
            data.pop("export_resources", None)
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    def write(self, folder: Path) -> Path:
        return write_atomic(Path(folder) / MANIFEST_NAME, self.to_json())

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = MANIFEST_NAME) -> "Manifest":
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: expected a JSON object at the top level")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ManifestError(
                f"{where}: schema_version {version!r} is not supported by this bioclip-edge "
                f"(it reads version {SCHEMA_VERSION}); re-export the bundle or upgrade bioclip-edge"
            )
        try:
            model = dict(data["model"])
            model["source"] = _build(WeightsSource, model["source"], where, "model.source")
            pre = dict(data["preprocess"])
            pre["image_size"] = tuple(pre["image_size"])
            pre["mean"] = tuple(pre["mean"])
            pre["std"] = tuple(pre["std"])
            variants = []
            for i, raw in enumerate(data["variants"]):
                raw = dict(raw)
                if raw.get("parity") is not None:
                    raw["parity"] = _parity(raw["parity"], where, f"variants[{i}].parity")
                variants.append(_build(Variant, raw, where, f"variants[{i}]"))
            manifest = cls(
                schema_version=version,
                model=_build(ModelInfo, model, where, "model"),
                preprocess=_build(Preprocess, pre, where, "preprocess"),
                tokenizer=_build(TokenizerSpec, data["tokenizer"], where, "tokenizer"),
                variants=tuple(variants),
                created_by=dict(data.get("created_by", {})),
                created_at=str(data.get("created_at", "")),
                parity_reference=data.get("parity_reference"),
                decode_check=_decode_check(data.get("decode_check"), where),
                export_resources=_optional(ExportResources, data.get("export_resources"), where, "export_resources"),
            )
        except KeyError as exc:
            raise ManifestError(f"{where}: missing required field {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            if isinstance(exc, ManifestError):
                raise
            raise ManifestError(f"{where}: malformed manifest ({exc})") from None
        manifest.validate(where)
        return manifest

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestError(f"{path}: no manifest here; is this a bundle folder written by 'bioclip-edge export'?") from None
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read manifest ({exc.strerror})") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg}); re-export the bundle") from None
        return cls.from_dict(data, where=str(path))

    def validate(self, where: str) -> None:
        self.preprocess.validate(where)
        seen = set()
        for v in self.variants:
            if v.tower not in TOWERS:
                raise ManifestError(f"{where}: variant {v.name!r} has unknown tower {v.tower!r}")
            if v.precision not in PRECISIONS:
                raise ManifestError(f"{where}: variant {v.name!r} has unknown precision {v.precision!r}")
            if v.format not in VARIANT_FORMATS:
                raise ManifestError(f"{where}: variant {v.name!r} has unknown format {v.format!r} "
                                    f"(this bioclip-edge reads {', '.join(VARIANT_FORMATS)}); upgrade bioclip-edge")
            if v.name in seen:
                raise ManifestError(f"{where}: variant name {v.name!r} appears twice")
            seen.add(v.name)
        if self.model.embed_dim <= 0:
            raise ManifestError(f"{where}: model.embed_dim must be positive")


def _parity(raw: Any, where: str, what: str) -> Parity:
    """A Parity record; ``top1`` is absent from manifests written before it existed."""
    if isinstance(raw, dict) and raw.get("top1") is not None:
        raw = {**raw, "top1": _build(Top1Check, raw["top1"], where, f"{what}.top1")}
    return _build(Parity, raw, where, what)


def _decode_check(raw: Any, where: str) -> DecodeCheck | None:
    """The optional ``decode_check`` record; absent (or null) in bundles exported before it existed."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: decode_check must be an object")
    sizes = tuple((int(w), int(h)) for w, h in raw.get("sizes", ()))
    top1 = _build(Top1Check, raw.get("top1"), where, "decode_check.top1")
    return _build(DecodeCheck, {**raw, "sizes": sizes, "top1": top1}, where, "decode_check")


def _optional(kind: type, raw: Any, where: str, what: str) -> Any:
    """An optional record: None when absent or null, else built like any other."""
    return None if raw is None else _build(kind, raw, where, what)


def _build(kind: type, raw: Any, where: str, what: str) -> Any:
    """Build a dataclass from a dict, naming unknown or missing fields."""
    if not isinstance(raw, dict):
        raise ManifestError(f"{where}: {what} must be an object")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ManifestError(f"{where}: {what} has unknown field(s) {unknown}; written by a newer bioclip-edge?")
    required = {
        f.name
        for f in dataclasses.fields(kind)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    }
    missing = sorted(required - set(raw))
    if missing:
        raise ManifestError(f"{where}: {what} is missing field(s) {missing}")
    return kind(**raw)
