"""Build PyTorch reference inputs and outputs for parity (needs torch and open_clip).

Images are real photos (scikit-image's samples, plus the user's calibration images when given),
preprocessed by open_clip's own transform; labels are camera-trap species names tokenised by
open_clip's tokenizer. When the tokenizer cannot be obtained (MetaCLIP 2's comes from the hub),
token ids are synthesised in the same shape (random ids, end-of-text at the end) so the text
graph is still checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .parity import Reference
from .sources import LoadedModel

PARITY_LABELS = (
    "lion", "leopard", "cheetah", "spotted hyena", "african elephant", "plains zebra", "giraffe",
    "impala", "thomson's gazelle", "cape buffalo", "warthog", "olive baboon", "vervet monkey",
    "white rhinoceros", "hippopotamus", "african wild dog", "black-backed jackal", "honey badger",
    "aardvark", "common eland", "greater kudu", "ostrich", "secretary bird", "helmeted guineafowl",
    "Panthera leo", "Crocuta crocuta", "Loxodonta africana", "red fox", "white-tailed deer",
    "wild boar", "empty savanna", "human",
)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "camera", "coins", "colorwheel", "retina", "moon", "page")


def sample_photos(n: int, extra: Sequence[Path] = ()) -> list[Image.Image]:
    """Real photos: the user's images first, then scikit-image's samples."""
    images: list[Image.Image] = []
    for path in extra:
        if len(images) >= n:
            break
        try:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        except Exception:  # parity must not fail on one bad calibration file
            continue
    if len(images) < n:
        import skimage.data

        for name in SKIMAGE_PHOTOS[: n - len(images)]:
            images.append(Image.fromarray(getattr(skimage.data, name)()).convert("RGB"))
    return images


def open_clip_transform(loaded: LoadedModel):
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = {k: v for k, v in loaded.preprocess_cfg.items() if k in PreprocessCfg.__dataclass_fields__}
    return image_transform_v2(PreprocessCfg(**cfg), is_train=False)


def preprocess(loaded: LoadedModel, images: Sequence[Image.Image]) -> np.ndarray:
    transform = open_clip_transform(loaded)
    return torch.stack([transform(im) for im in images]).numpy().astype(np.float32)


def token_ids(loaded: LoadedModel, labels: Sequence[str], context_length: int, vocab_size: int,
              pool: str, eos_id: int | None) -> np.ndarray:
    """[M, context_length] int32 ids: open_clip's tokenizer, or synthetic ids when it is unavailable."""
    if loaded.tokenizer is not None:
        return loaded.tokenizer(list(labels)).numpy().astype(np.int32)
    rng = np.random.default_rng(0)
    end = eos_id if pool == "eos" and eos_id is not None else vocab_size - 1
    ids = np.zeros((len(labels), context_length), dtype=np.int32)
    for row in range(len(labels)):
        length = int(rng.integers(3, 20))
        ids[row, :length] = rng.integers(3, min(vocab_size - 1, 50_000), size=length)
        ids[row, length] = end
    return ids


def trimmed_length(ids: np.ndarray, pool: str, eos_id: int | None) -> int:
    """Shortest context holding every label's pooled token (exact under the causal mask)."""
    if pool == "eos" and eos_id is not None:
        last = (ids == eos_id).argmax(axis=1)
    elif pool == "argmax":
        last = ids.argmax(axis=1)
    else:
        return ids.shape[1]
    return int(last.max()) + 1


def build_reference(loaded: LoadedModel, text_cfg: dict, n_images: int = 12,
                    extra_images: Sequence[Path] = ()) -> Reference:
    model = loaded.model
    pixels = preprocess(loaded, sample_photos(n_images, extra_images))
    context = int(text_cfg.get("context_length", 77))
    pool = text_cfg.get("pool_type", "argmax")
    eos_id = text_cfg.get("eos_id")
    ids = token_ids(loaded, PARITY_LABELS, context, int(text_cfg.get("vocab_size", 49408)), pool, eos_id)
    with torch.no_grad():
        image_emb = F.normalize(model.encode_image(torch.from_numpy(pixels)), dim=-1).numpy()
        text_emb = F.normalize(model.encode_text(torch.from_numpy(ids).long()), dim=-1).numpy()
    trimmed = ids[:, : max(2, trimmed_length(ids, pool, eos_id))]
    return Reference(pixels, image_emb.astype(np.float32), np.ascontiguousarray(trimmed),
                     text_emb.astype(np.float32), PARITY_LABELS)
