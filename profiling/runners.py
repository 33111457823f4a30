"""One callable per benchmark target: run one batch through one tower on one backend.

Each backend reads what a user would run: onnxruntime and OpenVINO load the bundle's own ONNX
files (OpenVINO reads ONNX directly, shapes fixed to the batch so it can plan memory), and the
PyTorch baseline rebuilds the same open_clip architecture from the manifest's config and calls
``encode_image``/``encode_text`` under inference mode, as pybioclip does. The baseline's weights
are random (the bundle holds no torch weights); speed does not depend on their values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..runtime.engine.bundle import Bundle


@dataclass(frozen=True)
class Target:
    """What is timed: backend x bundle variant x batch x threads (x text length)."""

    backend: str  # ort | openvino | torch
    variant: str  # bundle variant name (vision.fp32, vision.int8-static); torch: torch.fp32
    precision: str  # what the label says: fp32 | fp16 | int8 | int8-static | bf16
    compute: str  # what the arithmetic runs in: fp32 | int8 | bf16 (picks the peak it is held to)
    batch: int
    threads: int
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


def ort_runner(bundle: Bundle, target: Target) -> Callable[[], Any]:
    from ..runtime.engine.session import SessionOptions, make_session

    variant = bundle.variant(target.tower, name=target.variant)
    session = make_session(bundle.path(variant.file), SessionOptions(intra_op_threads=target.threads))
    feed = {variant.input_name: make_inputs(bundle, target)}
    return lambda: session.run(None, feed)


def openvino_runner(bundle: Bundle, target: Target) -> Callable[[], Any]:
    """The runtime's own OpenVINO session (one stream, latency hint), shape fixed to the batch.
    fp32 targets run exact f32; bf16 and int8 targets run OpenVINO's default precision, as the
    runtime does (bf16 where the CPU has it, for whatever an int8 graph leaves in float)."""
    from ..runtime.engine.backends import OpenVinoSession

    variant = bundle.variant(target.tower, name=target.variant)
    x = make_inputs(bundle, target)
    session = OpenVinoSession(bundle.path(variant.file), exact_fp32=target.compute == "fp32", threads=target.threads,
                              int8=target.compute.startswith("int8"),
                              static_shape=x.shape)
    feed = {variant.input_name: x}
    return lambda: session.run(None, feed)


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
