"""Build PyTorch reference inputs and outputs for parity (needs torch and open_clip).

Images are real photos: the user's calibration images when given, scikit-image's samples, and
seeded random crops of those samples up to the parity set's size (64 by default: enough images
with a clear top-1 margin to judge zero-shot agreement, see ``parity``), preprocessed by
open_clip's own transform; labels are 110 camera-trap species, taxa and scene names tokenised by
open_clip's tokenizer. When the tokenizer cannot be obtained (MetaCLIP 2's comes from the hub),
token ids are synthesised in the same shape (random ids, end-of-text at the end) so the text
graph is still checked.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from bioclip_edge.export.parity import Reference, normalise_pixels
from bioclip_edge.export.sources import LoadedModel

PARITY_LABELS = (
    # East African savanna
    "lion", "leopard", "cheetah", "serval", "caracal", "spotted hyena", "striped hyena", "aardwolf",
    "african elephant", "plains zebra", "grevy's zebra", "giraffe", "impala", "thomson's gazelle",
    "grant's gazelle", "cape buffalo", "common warthog", "olive baboon", "vervet monkey", "white rhinoceros",
    "black rhinoceros", "hippopotamus", "african wild dog", "black-backed jackal", "honey badger", "aardvark",
    "common eland", "greater kudu", "lesser kudu", "topi", "hartebeest", "blue wildebeest", "waterbuck",
    "bushbuck", "dik-dik", "gerenuk", "oryx", "african civet", "common genet", "banded mongoose",
    "crested porcupine", "cape hare", "rock hyrax", "ostrich", "secretary bird", "helmeted guineafowl",
    "kori bustard", "marabou stork", "lappet-faced vulture",
    # temperate and tropical camera traps
    "red fox", "gray fox", "coyote", "gray wolf", "bobcat", "puma", "ocelot", "jaguar", "american black bear",
    "brown bear", "raccoon", "striped skunk", "virginia opossum", "white-tailed deer", "mule deer", "elk",
    "moose", "wild boar", "collared peccary", "nine-banded armadillo", "eastern gray squirrel",
    "eastern cottontail", "north american porcupine", "american badger", "wild turkey", "european badger",
    "roe deer", "red deer", "eurasian lynx", "pine marten", "european hedgehog", "tiger", "asian elephant",
    "sambar deer", "sun bear", "malayan tapir", "domestic cow", "domestic dog", "domestic cat", "horse",
    "domestic goat", "sheep",
    # taxa
    "Panthera leo", "Panthera pardus", "Crocuta crocuta", "Loxodonta africana", "Equus quagga",
    "Giraffa camelopardalis", "Syncerus caffer", "Canis latrans", "Odocoileus virginianus", "Sus scrofa",
    "Procyon lotor", "Vulpes vulpes", "Ursus americanus", "Meleagris gallopavo",
    # what camera traps also see
    "empty savanna", "empty forest", "human", "vehicle", "bird",
)
SKIMAGE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "camera", "coins", "colorwheel", "retina", "moon", "page", "cat", "brick", "grass", "gravel")
CROP_SEED = 0  # the parity crops are the same at every export


@lru_cache(maxsize=None)
def sample_photo(name: str) -> Image.Image:
    """One of scikit-image's sample photos as RGB: real pictures that need no download."""
    import skimage.data

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


def _skimage_photos() -> tuple[Image.Image, ...]:
    return tuple(sample_photo(name) for name in SKIMAGE_PHOTOS)


def write_sample_photos(folder: Path, names: Sequence[str] = SKIMAGE_PHOTOS, quality: int = 90) -> Path:
    """The sample photos as JPEG files in ``folder``, like a camera card (demo, tests, benchmarks)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        sample_photo(name).save(folder / f"{name}.jpg", quality=quality)
    return folder


def sample_photos(n: int, extra: Sequence[Path] = ()) -> list[Image.Image]:
    """Real photos: the user's images first, then scikit-image's samples (at most all of them)."""
    images: list[Image.Image] = []
    for path in extra:
        if len(images) >= n:
            break
        try:
            with Image.open(path) as im:
                images.append(im.convert("RGB"))
        except Exception:  # parity must not fail on one bad calibration file
            continue
    return images + list(_skimage_photos()[: max(0, n - len(images))])


def photo_crops(n: int, seed: int = CROP_SEED, photos: Sequence[Image.Image] | None = None) -> list[Image.Image]:
    """``n`` random crops (10-100% of the area, aspect 3:4 to 4:3, half of them mirrored) of
    ``photos`` (default: scikit-image's samples): many distinct real-photo inputs at no download."""
    photos = list(photos) if photos is not None else list(_skimage_photos())
    rng = np.random.default_rng(seed)
    return [random_crop(photos[i % len(photos)], rng) for i in range(n)]


def random_crop(im: Image.Image, rng: np.random.Generator, min_area: float = 0.1) -> Image.Image:
    """One crop of ``min_area``-100% of the area, aspect 3:4 to 4:3, mirrored half the time."""
    area = rng.uniform(min_area, 1.0) * im.width * im.height
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    w = int(min(im.width, max(16, round(np.sqrt(area * aspect)))))
    h = int(min(im.height, max(16, round(np.sqrt(area / aspect)))))
    x, y = int(rng.integers(0, im.width - w + 1)), int(rng.integers(0, im.height - h + 1))
    crop = im.crop((x, y, x + w, y + h))
    return crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else crop


def parity_photos(n: int, extra: Sequence[Path] = ()) -> list[Image.Image]:
    """The parity set: the user's images, the whole sample photos, then random crops of them up to ``n``."""
    images = sample_photos(n, extra)
    return images + photo_crops(n - len(images))


def open_clip_transform(loaded: LoadedModel):
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = {k: v for k, v in loaded.preprocess_cfg.items() if k in PreprocessCfg.__dataclass_fields__}
    return image_transform_v2(PreprocessCfg(**cfg), is_train=False)


def preprocess(loaded: LoadedModel, images: Sequence[Image.Image]) -> np.ndarray:
    import torch

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


def cropped_uint8(loaded: LoadedModel, images: Sequence[Image.Image]) -> tuple[np.ndarray, tuple, tuple] | None:
    """open_clip's transform split at ToTensor: the resized and cropped photos as uint8 [N, H, W, 3]
    plus Normalize's mean and std; None when the transform does not end in ToTensor + Normalize."""
    from torchvision.transforms import Compose

    steps = list(open_clip_transform(loaded).transforms)
    if len(steps) < 2 or not type(steps[-2]).__name__.endswith("ToTensor") or type(steps[-1]).__name__ != "Normalize":
        return None
    head = Compose(steps[:-2])
    crops = np.stack([np.asarray(head(im).convert("RGB"), dtype=np.uint8) for im in images])
    return crops, tuple(float(x) for x in steps[-1].mean), tuple(float(x) for x in steps[-1].std)


def image_embeddings(loaded: LoadedModel, pixels: np.ndarray, batch: int = 16) -> np.ndarray:
    """PyTorch fp32's normalised image embeddings of preprocessed ``pixels`` (open_clip itself)."""
    import torch
    import torch.nn.functional as F

    with torch.no_grad():
        return torch.cat([F.normalize(loaded.model.encode_image(torch.from_numpy(pixels[i:i + batch])), dim=-1)
                          for i in range(0, len(pixels), batch)]).numpy().astype(np.float32)


def build_reference(loaded: LoadedModel, text_cfg: dict, n_images: int = 64,
                    extra_images: Sequence[Path] = (), batch: int = 16) -> Reference:
    """PyTorch fp32 embeddings of the parity photos (``parity_photos``) and labels (``PARITY_LABELS``)."""
    import torch
    import torch.nn.functional as F

    model = loaded.model
    photos = parity_photos(n_images, extra_images)
    cropped = cropped_uint8(loaded, photos)
    pixels = normalise_pixels(*cropped) if cropped else preprocess(loaded, photos)
    context = int(text_cfg.get("context_length", 77))
    pool = text_cfg.get("pool_type", "argmax")
    eos_id = text_cfg.get("eos_id")
    ids = token_ids(loaded, PARITY_LABELS, context, int(text_cfg.get("vocab_size", 49408)), pool, eos_id)
    image_emb = image_embeddings(loaded, pixels, batch)
    with torch.no_grad():
        text_emb = F.normalize(model.encode_text(torch.from_numpy(ids).long()), dim=-1).numpy()
    trimmed = ids[:, : max(2, trimmed_length(ids, pool, eos_id))]
    images, mean, std = cropped if cropped else (None, (), ())
    return Reference(pixels, image_emb.astype(np.float32), np.ascontiguousarray(trimmed),
                     text_emb.astype(np.float32), PARITY_LABELS, images, mean, std)
