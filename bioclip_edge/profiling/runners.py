"""One callable per benchmark target: run one batch through one tower on one backend.

Each backend reads what a user would run: onnxruntime and OpenVINO load the bundle's own ONNX
files (OpenVINO reads ONNX directly, shapes fixed to the batch so it can plan memory), and the
PyTorch baseline rebuilds the same open_clip architecture from the manifest's config and calls
``encode_image``/``encode_text`` under inference mode, as pybioclip does. The baseline's weights
are random (the bundle holds no torch weights); speed does not depend on their values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from bioclip_edge.runtime.inference import backends
from bioclip_edge.runtime.inference.bundle import Bundle
from bioclip_edge.runtime.inference.manifest import Variant
from bioclip_edge.runtime.inference.plan import PROFILE_ALIASES, InferencePlan, SessionOptions
from bioclip_edge.runtime.inference.selection import plan_for


@dataclass(frozen=True)
class Target:
    """What is timed: backend x bundle variant x batch x model threads (x text length)."""

    backend: str  # ort | openvino | torch
    variant: str  # bundle variant name (vision.fp32, vision.int8-static); torch: torch.fp32
    precision: str  # what the label says: fp32 | fp16 | int8 | int8-static | bf16
    compute: str  # what the arithmetic runs in: fp32 | int8 | bf16 (picks the peak it is held to)
    batch: int
    threads: int  # model (intra-op) threads: onnxruntime's, OpenVINO's or torch's; rows keep this name
    tower: str = "vision"
    length: int | None = None  # text tokens per label

    @property
    def name(self) -> str:
        tail = f" L{self.length}" if self.tower == "text" else ""
        return f"{self.backend}:{self.precision} {self.tower} b{self.batch} t{self.threads}{tail}"


def make_inputs(bundle: Bundle, target: Target):
    """Random pixels, or token ids shaped like real labels (start, words, end-of-text)."""
    import numpy as np

    rng = np.random.default_rng(0)
    m = bundle.manifest
    if target.tower == "vision":
        h, w = m.preprocess.image_size
        return rng.standard_normal((target.batch, 3, h, w), dtype=np.float32)
    tok = m.tokenizer
    length = int(target.length or tok.context_length)
    vocab = int(m.model.open_clip_config.get("text_cfg", {}).get("vocab_size", 49408))
    ids = np.full((target.batch, length), tok.pad_id, dtype=np.int32)
    words = max(1, length - 2)
    ids[:, 1:1 + words] = rng.integers(1, max(2, min(vocab, tok.eot_id) - 1), size=(target.batch, words))
    ids[:, 0] = tok.sot_id if tok.sot_id is not None else ids[:, 0]
    ids[:, min(length - 1, words + 1)] = tok.eot_id
    return ids


def profile_plan(bundle: Bundle, backend: str, tower: str, precision: str, threads: int | None = None) -> InferencePlan | str:
    """A profiling label (``ort``/``openvino`` x a variant precision or ``bf16``) as the inference plan it
    times, or the reason it cannot run here. The mapping is ``plan.py``'s: ``bf16`` is the fp32 graph
    on OpenVINO's default hint; OpenVINO's ``int8`` takes the QDQ graphs made for it first (NNCF's,
    then static: dynamic-quantized MatMulInteger graphs fall back to slow paths); other float
    targets on OpenVINO run exact f32."""
    graph_precision, alias_backend = PROFILE_ALIASES.get(precision, (precision, None))
    if alias_backend is not None and backend != alias_backend:
        return "bf16 runs through OpenVINO (onnxruntime's CPU provider has no bf16 kernels)"
    caps = backends.openvino_capabilities() if backend == "openvino" else ()
    if precision == "bf16" and "BF16" not in caps:
        return "this CPU has no bf16 arithmetic (AMX / AVX-512 BF16), or OpenVINO is not installed"
    wanted = ("int8-nncf", "int8-static", "int8") if backend == "openvino" and precision == "int8" else (graph_precision,)
    variant = next((v for p in wanted if (v := _variant_for(bundle, tower, p)) is not None), None)
    if variant is None:
        have = ", ".join(v.name for v in bundle.manifest.variants if v.tower == tower)
        return f"bundle has no {tower} fp32 variant" if precision == "bf16" else \
            f"bundle has no {tower} {precision} variant (it has {have})"
    if variant.openvino_only and backend == "ort":
        return f"{variant.name} is an OpenVINO IR file: only OpenVINO runs it"
    quantized = "int8" in (variant.compute or "") or precision.startswith("int8")
    runs_on = "onnxruntime" if backend == "ort" else ("openvino" if quantized or precision == "bf16" else "openvino-f32")
    return plan_for(variant, runs_on, f"profile target {backend}:{precision}", SessionOptions(model_threads=threads), caps)


def _variant_for(bundle: Bundle, tower: str, precision: str) -> Variant | None:
    """Bundle variant for a precision: int8 -> dynamic int8, int8-static -> the QDQ graph."""
    names = {v.name: v for v in bundle.manifest.variants if v.tower == tower}
    if f"{tower}.{precision}" in names:
        return names[f"{tower}.{precision}"]
    return next((v for v in names.values() if v.precision == precision), None)


def target_plan(bundle: Bundle, target: Target, static_shape: tuple[int, ...] | None = None) -> InferencePlan:
    """The plan a target runs (``profile_plan``), its input shape fixed where OpenVINO compiles one."""
    plan = profile_plan(bundle, target.backend, target.tower, target.precision, target.threads)
    if isinstance(plan, str):
        raise RuntimeError(plan)
    return dataclasses.replace(plan, static_shape=static_shape)


def session_runner(bundle: Bundle, target: Target) -> Callable[[], Any]:
    """onnxruntime or OpenVINO, as the runtime opens them (``open_session``). OpenVINO compiles for
    the target's batch so it can plan memory; fp32 targets run exact f32, bf16 and int8 targets
    OpenVINO's default precision, as the runtime does (bf16 where the CPU has it)."""
    x = make_inputs(bundle, target)
    session, input_name = open_plan(target_plan(bundle, target, x.shape if target.backend == "openvino" else None), bundle)
    feed = {input_name: x}
    return lambda: session.run(None, feed)


def open_plan(plan: InferencePlan, bundle: Bundle | None = None) -> tuple[Any, str]:
    """(session, its input name) for a plan: what every benchmark runner feeds."""
    from bioclip_edge.runtime.inference.session import open_session

    session = open_session(plan, bundle)
    return session, plan.input_name or session.get_inputs()[0].name


ort_runner = openvino_runner = session_runner  # one runner for both backends; the plan says which


def torch_model(bundle: Bundle):
    """The bundle's architecture as an open_clip model with random weights, in eval mode."""
    import copy

    from open_clip.model import CLIP, CustomTextCLIP

    cfg = copy.deepcopy(dict(bundle.manifest.model.open_clip_config))
    if not cfg:
        raise ValueError("the manifest has no open_clip_config; the PyTorch baseline cannot rebuild the model")
    custom = cfg.pop("custom_text", False) or "hf_model_name" in cfg.get("text_cfg", {})
    cfg.get("text_cfg", {}).pop("hf_model_pretrained", None)
    return (CustomTextCLIP if custom else CLIP)(**cfg).eval()


def torch_runner(bundle: Bundle, target: Target, model=None) -> Callable[[], Any]:
    import torch

    model = model if model is not None else torch_model(bundle)
    x = torch.from_numpy(make_inputs(bundle, target))
    encode = model.encode_image if target.tower == "vision" else model.encode_text
    if target.tower == "text":
        # open_clip always runs the full context: pad the label ids out to it, as pybioclip does
        context = int(bundle.manifest.tokenizer.context_length)
        padded = torch.zeros((x.shape[0], context), dtype=torch.long)
        padded[:, : x.shape[1]] = x.long()
        x = padded

    def run():
        torch.set_num_threads(target.threads)
        with torch.inference_mode():
            return encode(x)

    return run


RUNNERS = {"ort": ort_runner, "openvino": openvino_runner, "torch": torch_runner}
