"""A tiny *trained* open_clip model for the tests, and the script that trains it.

Why: random weights make every label score nearly the same (int8 flips are then noise the parity
rule must ignore) and have none of the activation structure training builds, so the int8
variants, the NNCF preset gate and the draft-decode check were only ever exercised on a model
whose answers mean nothing. This model answers something: it is trained with the standard CLIP
contrastive loss on augmented crops of scikit-image's sample photos (``export.reference``)
paired with captions naming them, so its zero-shot top-1 on held-out crops is far above chance
and its margins are clear.

Train (about 5 minutes on one CPU thread; deterministic kernels and seeds: the same seed and torch
build give the same weights)::

    .venv/bin/python -m tests.helpers.trained_tiny --out tests/data/trained-tiny

The folder is open_clip's local-dir hub layout (``open_clip_config.json`` + fp16
``open_clip_model.safetensors``, 3.8 MB: the text tower is narrow because open_clip's default
tokenizer brings a 49408-row token embedding) plus ``training.json`` with the recipe and the
held-out figures. ``tests/export/test_trained_tiny.py`` exports it and checks the bundle.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

# One class per subject; chelsea and cat are both cats, so they share a caption.
CLASSES = {
    "astronaut": "an astronaut", "chelsea": "a cat", "cat": "a cat", "coffee": "a cup of coffee",
    "rocket": "a rocket", "hubble_deep_field": "galaxies in deep space",
    "immunohistochemistry": "stained tissue under a microscope", "camera": "a man with a camera",
    "coins": "old coins", "colorwheel": "a colour wheel", "retina": "a retina", "moon": "the moon",
    "page": "a page of printed text", "brick": "a brick wall", "grass": "grass", "gravel": "gravel",
}
TEMPLATES = ("a photo of {}.", "a picture of {}.", "{}", "a close-up photo of {}.", "an image showing {}.",
             "a cropped photo of {}.")
ZERO_SHOT_TEMPLATE = "a photo of {}"  # the label text the tests classify with (no full stop: not a training caption)
MODEL_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
PREPROCESS_CFG = {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711],
                  "interpolation": "bicubic", "resize_mode": "shortest"}
SEED = 0
HELD_OUT_SEED = 2026  # photo_crops(seed=...) for evaluation; training crops come from another stream
STEPS = 2400
LR = 2e-3
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "trained-tiny"


def subjects() -> list[str]:
    """The distinct captions' subjects, in a fixed order (the zero-shot label order)."""
    return list(dict.fromkeys(CLASSES.values()))


def zero_shot_labels() -> list[str]:
    return [ZERO_SHOT_TEMPLATE.format(s) for s in subjects()]


def held_out(n: int, seed: int = HELD_OUT_SEED) -> tuple[list, np.ndarray]:
    """``n`` crops never trained on (``export.reference.photo_crops`` with its own seed: crop i
    comes from photo i mod 16) and the index of each one's true label in ``zero_shot_labels()``."""
    from bioclip_edge.export.reference import SKIMAGE_PHOTOS, photo_crops

    order = subjects()
    truth = np.array([order.index(CLASSES[SKIMAGE_PHOTOS[i % len(SKIMAGE_PHOTOS)]]) for i in range(n)])
    return photo_crops(n, seed=seed), truth


def _sources() -> dict[str, list]:
    """Each subject's photos, shrunk to a 448-pixel short side so cropping stays cheap."""
    from PIL import Image

    from bioclip_edge.export.reference import sample_photo

    out: dict[str, list] = {}
    for name, subject in CLASSES.items():
        im = sample_photo(name)
        scale = 448 / min(im.size)
        if scale < 1:
            im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.BICUBIC)
        out.setdefault(subject, []).append(im)
    return out


def augment(im, rng: np.random.Generator):
    """A random crop (15-100% of the area, aspect 3:4 to 4:3), mirror and colour jitter."""
    from PIL import ImageEnhance

    from bioclip_edge.export.reference import random_crop

    crop = random_crop(im, rng, min_area=0.15)  # the same draws, in the same order, as before it was shared
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        crop = enhance(crop).enhance(float(rng.uniform(0.75, 1.25)))
    return crop


def _batch(sources: dict[str, list], rng: np.random.Generator, transform, tokenizer):
    """One crop of every subject, each with a random caption template: all pairs in a batch are
    distinct subjects, so the contrastive loss has no false negatives."""
    import torch

    images, captions = [], []
    for subject, photos in sources.items():
        images.append(transform(augment(photos[int(rng.integers(len(photos)))], rng)))
        captions.append(TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(subject))
    return torch.stack(images), tokenizer(captions)


def _optimizer(model, steps: int):
    """AdamW without weight decay on gains, biases, embeddings and the logit scale; warmup then cosine."""
    import torch

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.98), eps=1e-6)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + np.cos(np.pi * (s - warm) / max(1, steps - warm))))
    return opt, sched


def train(steps: int = STEPS, seed: int = SEED, log_every: int = 100):
    """The model after ``steps`` steps of CLIP's contrastive loss (image->text and text->image
    cross-entropy over the batch), on one thread with deterministic kernels."""
    import open_clip
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(**MODEL_CFG)  # what create_model("local-dir:...") builds from this config
    transform, tokenizer = _transform(), open_clip.get_tokenizer("ViT-B-32")  # open_clip's default CLIP BPE, context 77
    sources, rng = _sources(), np.random.default_rng(seed)
    opt, sched = _optimizer(model, steps)
    model.train()
    started = time.perf_counter()
    for step in range(steps):
        images, ids = _batch(sources, rng, transform, tokenizer)
        img, txt, scale = model(images, ids)[:3]
        logits = scale * img @ txt.T
        target = torch.arange(len(logits))
        loss = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:5d}  loss {loss.item():.4f}  scale {scale.item():6.2f}  {time.perf_counter() - started:6.1f} s",
                  flush=True)
    return model.eval()


def _transform():
    """open_clip's evaluation transform for this config: training crops go through it too, so the
    only augmentation is the crop and colour jitter of ``augment``."""
    import open_clip

    return open_clip.image_transform(224, is_train=False, mean=PREPROCESS_CFG["mean"], std=PREPROCESS_CFG["std"],
                                     resize_mode=PREPROCESS_CFG["resize_mode"], interpolation=PREPROCESS_CFG["interpolation"])


def evaluate(model, n: int = 160) -> dict:
    """Zero-shot top-1 and margins on ``n`` held-out crops (open_clip's own preprocessing)."""
    import open_clip
    import torch
    import torch.nn.functional as F

    transform = _transform()
    crops, truth = held_out(n)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    with torch.no_grad():
        img = F.normalize(model.encode_image(torch.stack([transform(c) for c in crops])), dim=-1)
        txt = F.normalize(model.encode_text(tokenizer(zero_shot_labels())), dim=-1)
    return score_summary((img @ txt.T).numpy(), truth)


def score_summary(scores: np.ndarray, truth: np.ndarray) -> dict:
    """Top-1 accuracy, chance level and the top-1/top-2 cosine gap (median, 10th percentile)."""
    ranked = np.sort(scores, axis=1)
    gap = ranked[:, -1] - ranked[:, -2]
    return {"images": int(len(truth)), "labels": int(scores.shape[1]), "chance": round(1 / scores.shape[1], 4),
            "top1": round(float((scores.argmax(axis=1) == truth).mean()), 4),
            "median_gap": round(float(np.median(gap)), 4), "p10_gap": round(float(np.quantile(gap, 0.1)), 4)}


def save(model, out: Path, info: dict) -> Path:
    """open_clip's local-dir layout with fp16 weights (half the bytes; open_clip casts them back
    to fp32 on load), plus training.json."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(json.dumps({"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG},
                                                          indent=2) + "\n")
    state = {k: v.detach().half().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))
    (out / "open_clip_model.safetensors").chmod(0o644)  # safetensors writes 0600; the file is committed
    (out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train the tiny open_clip model the tests use (CPU, minutes).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    model = train(args.steps, args.seed)
    seconds = round(time.perf_counter() - started, 1)
    import open_clip

    save(model, args.out, {"command": f"python -m tests.helpers.trained_tiny --steps {args.steps} --seed {args.seed}",
                           "steps": args.steps, "seed": args.seed, "train_seconds": seconds, "lr": LR,
                           "batch": len(subjects()), "captions": TEMPLATES, "classes": CLASSES,
                           "zero_shot_template": ZERO_SHOT_TEMPLATE, "held_out_seed": HELD_OUT_SEED})
    reloaded = open_clip.create_model(f"local-dir:{args.out}").eval()  # what export loads: fp16 weights cast back
    figures = evaluate(reloaded)
    info = json.loads((args.out / "training.json").read_text())
    (args.out / "training.json").write_text(json.dumps({**info, "held_out": figures}, indent=2) + "\n")
    print(f"trained in {seconds} s; held-out zero-shot (reloaded from {args.out}): {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
