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
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.common.files import write_atomic

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"

TOWERS = ("vision", "text")
PRECISIONS = ("fp32", "fp16", "int8")
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
class Top1Check:
    """Zero-shot top-1 agreement with PyTorch fp32, counted only where a flip means something.

    An image is judged when its fp32 top-1 leads every other label by more than twice the
    variant's score error (any flip there is a real error), or when the variant's top-1 trails
    fp32's by that much (a clear miss). Near-ties are left out: with random or weak weights many
    labels score within noise of each other, and a flip between them says nothing about the
    variant. The rule and why are in ``bioclip_edge.export.parity``.
    """

    agree: int  # k: judged images whose top-1 is fp32's
    clear: int  # n: judged images (a clear margin either way)
    unclear: int  # m: images with no clear margin, not judged
    images: int  # N = n + m
    score_error: float  # E: the variant's typical score error (cosine units)
    min_clear: int  # fewer judged images than this: "not measurable", never a failure
    bound: float | None = None  # required k / n; None: recorded, not held

    @property
    def measurable(self) -> bool:
        return self.clear >= self.min_clear

    @property
    def agreement(self) -> float | None:
        return self.agree / self.clear if self.clear else None

    @property
    def passed(self) -> bool:
        return self.bound is None or not self.measurable or self.agree / self.clear >= self.bound

    def text(self) -> str:
        if not self.measurable:
            return (f"top-1 not measurable: {self.clear} of {self.images} images have a clear margin "
                    f"(> 2 x score error {self.score_error:.2g}; {self.min_clear} needed)")
        return f"top-1 agreement {self.agree}/{self.clear} on images with a clear margin " \
               f"({self.unclear} of {self.images} had none)"

    def cell(self) -> str:
        """The same, short enough for a table column."""
        if not self.measurable:
            return f"not measurable ({self.clear} of {self.images} clear)"
        return f"{self.agree}/{self.clear} ({self.unclear} of {self.images} unclear)"


@dataclass(frozen=True)
class Parity:
    """Measured agreement of one variant with PyTorch open_clip on the same inputs.

    Manifests written before ``top1`` existed carry only ``top1_agreement`` (over every image,
    near-ties included); they read as before, with ``top1`` None.
    """

    cosine_min: float
    cosine_mean: float
    n_inputs: int
    bound: float  # the bound the figure is held to (cosine_min for fp32/fp16, cosine_mean for int8)
    metric: str  # which figure is held to the bound
    passed: bool
    top1_agreement: float | None = None  # zero-shot top-1 agreement with torch fp32 over every image
    n_labels: int | None = None
    max_abs_diff: float | None = None
    top1: Top1Check | None = None  # the same on images with a clear margin: what is held

    def misses(self) -> list[str]:
        """What fell short of the bound, in words (empty when the variant passed)."""
        if self.passed:
            return []
        figure = self.cosine_min if self.metric.startswith("cosine_min") else self.cosine_mean
        out = [] if figure >= self.bound else [f"{self.metric.split()[0]} {figure:.6f} < {self.bound}"]  # NaN too
        if self.top1 is not None and not self.top1.passed:
            out.append(f"top-1 {self.top1.agree}/{self.top1.clear} on clear margins < {self.top1.bound:.0%}")
        return out or [f"{self.metric} >= {self.bound}"]  # an older manifest's wording


@dataclass(frozen=True)
class DecodeCheck:
    """Whether draft JPEG decoding (``--decode draft``) keeps this model's answers: measured at export.

    Optional (bundles exported before it have none; older runtimes ignore it, so the schema version
    is unchanged). The exporter writes its sample photos as JPEGs at camera-trap sizes (``sizes``),
    decodes each exactly and drafted (DCT scaling, kept ``margin`` x the model's input side) with
    the runtime's own decode and transform code, embeds both with the fp32 vision graph on
    onnxruntime and compares: ``cosine_*`` between the two embeddings of each frame, ``top1``
    the clear-margin zero-shot top-1 (``bioclip_edge.export.parity.clear_top1``, exact decoding as
    the reference) against the parity labels. ``passed``: cosine_min >= ``min_cosine`` and every
    judged top-1 agrees; ``--decode auto`` drafts only then. Rule and bound: ``export.decode_check``.
    """

    version: int  # of this record's rule; 1
    method: str  # what "draft" means, e.g. "jpeg-dct-scaling"
    margin: int  # the drafted picture keeps >= margin x the model's input side
    sizes: tuple[tuple[int, int], ...]  # frame sizes (width, height) written and decoded
    images: int  # frames compared (photos x sizes)
    graph: str  # what embedded them, e.g. "vision.fp32 on onnxruntime CPU"
    cosine_min: float
    cosine_mean: float
    top1: Top1Check
    min_cosine: float  # the bound cosine_min is held to
    passed: bool
    seconds: float | None = None  # how long the check took at export

    def text(self) -> str:
        sizes = ", ".join(f"{w}x{h}" for w, h in self.sizes)
        verdict = "passed: --decode auto drafts" if self.passed else "FAILED: --decode auto decodes exactly"
        return (f"draft vs exact JPEG decoding on {self.images} frames at {sizes} ({self.graph}): cosine min "
                f"{self.cosine_min:.6f}, mean {self.cosine_mean:.6f} (bound >= {self.min_cosine}); {self.top1.text()}; {verdict}")


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
    data_file: str | None = None  # ONNX external data (models over 2 GB)
    data_sha256: str | None = None
    data_size_bytes: int | None = None
    storage: str = "fp32"  # dtype of the stored weights
    compute: str = "fp32"  # dtype the graph computes in on CPU
    quantization: dict[str, Any] | None = None  # mode (dynamic|static), per_channel, op_types, calibration
    parity: Parity | None = None

    @property
    def total_bytes(self) -> int:
        return self.size_bytes + (self.data_size_bytes or 0)


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
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"

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
