"""Text recipes: how a label becomes the text(s) the text tower embeds.

A label matrix records its recipe, because the same species embedded as ``Panthera leo`` or as
the TreeOfLife text under 80 templates gives different vectors; scoring images against a matrix
built with another recipe than the user thinks silently changes the answers.

- ``plain``: the label text itself.
- ``photo``: ``a photo of {name}.``
- ``tol``: the TreeOfLife recipe of the official BioCLIP matrices: the 7 ranks joined by spaces
  plus the common name, embedded under each of the 80 OpenAI ImageNet templates, the 80
  normalised embeddings averaged and re-normalised (Imageomics' make_txt_embedding.py).
- ``openai``: the 80 templates around the plain label text (CLIP's ImageNet prompt ensemble).
"""

from __future__ import annotations

from dataclasses import dataclass

from bioclip_edge.errors import UserError

# CLIP's 80 ImageNet prompt templates (Radford et al. 2021, notebooks/Prompt_Engineering_for_ImageNet).
OPENAI_IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.", "a photo of many {}.", "a sculpture of a {}.", "a photo of the hard to see {}.",
    "a low resolution photo of the {}.", "a rendering of a {}.", "graffiti of a {}.", "a bad photo of the {}.",
    "a cropped photo of the {}.", "a tattoo of a {}.", "the embroidered {}.", "a photo of a hard to see {}.",
    "a bright photo of a {}.", "a photo of a clean {}.", "a photo of a dirty {}.", "a dark photo of the {}.",
    "a drawing of a {}.", "a photo of my {}.", "the plastic {}.", "a photo of the cool {}.",
    "a close-up photo of a {}.", "a black and white photo of the {}.", "a painting of the {}.", "a painting of a {}.",
    "a pixelated photo of the {}.", "a sculpture of the {}.", "a bright photo of the {}.", "a cropped photo of a {}.",
    "a plastic {}.", "a photo of the dirty {}.", "a jpeg corrupted photo of a {}.", "a blurry photo of the {}.",
    "a photo of the {}.", "a good photo of the {}.", "a rendering of the {}.", "a {} in a video game.",
    "a photo of one {}.", "a doodle of a {}.", "a close-up photo of the {}.", "a photo of a {}.",
    "the origami {}.", "the {} in a video game.", "a sketch of a {}.", "a doodle of the {}.",
    "a origami {}.", "a low resolution photo of a {}.", "the toy {}.", "a rendition of the {}.",
    "a photo of the clean {}.", "a photo of a large {}.", "a rendition of a {}.", "a photo of a nice {}.",
    "a photo of a weird {}.", "a blurry photo of a {}.", "a cartoon {}.", "art of a {}.",
    "a sketch of the {}.", "a embroidered {}.", "a pixelated photo of a {}.", "itap of the {}.",
    "a jpeg corrupted photo of the {}.", "a good photo of a {}.", "a plushie {}.", "a photo of the nice {}.",
    "a photo of the small {}.", "a photo of the weird {}.", "the cartoon {}.", "art of the {}.",
    "a drawing of the {}.", "a photo of the large {}.", "a black and white photo of a {}.", "the plushie {}.",
    "a dark photo of a {}.", "itap of a {}.", "graffiti of the {}.", "a toy {}.",
    "itap of my {}.", "a photo of a cool {}.", "a photo of a small {}.", "a tattoo of the {}.",
)


class RecipeError(UserError, ValueError):
    """An unknown recipe name."""


@dataclass(frozen=True)
class Recipe:
    name: str
    templates: tuple[str, ...]  # each with one "{}" for the label text
    taxonomic: bool  # label text is "kingdom ... species_epithet common_name" when taxonomy is known
    description: str

    def texts(self, label_text: str) -> list[str]:
        return [t.format(label_text) for t in self.templates]


RECIPES: dict[str, Recipe] = {
    "plain": Recipe("plain", ("{}",), False, "the label text as given"),
    "photo": Recipe("photo", ("a photo of {}.",), False, 'the label in "a photo of {}."'),
    "tol": Recipe("tol", OPENAI_IMAGENET_TEMPLATES, True,
                  "TreeOfLife: 7 ranks + common name under the 80 OpenAI ImageNet templates, averaged"),
    "openai": Recipe("openai", OPENAI_IMAGENET_TEMPLATES, False, "the label text under the 80 OpenAI ImageNet templates, averaged"),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise RecipeError(f"unknown text recipe {name!r}; choose one of {', '.join(RECIPES)}") from None


def tol_text(ranks: tuple[str, ...] | list[str], common_name: str = "") -> str:
    """The TreeOfLife label text: ranks joined by spaces, then the common name (as Imageomics builds it)."""
    return " ".join(ranks) + " " + common_name


def embed_texts(encoder, label_texts: list[str], recipe: Recipe, batch_size: int = 256, progress: bool = False):
    """Embed labels under a recipe: one row per label, L2-normalised float32.

    With several templates each label's template embeddings (already normalised by the text
    tower) are averaged and re-normalised, as the official TreeOfLife matrices were made.
    """
    import numpy as np

    if len(recipe.templates) == 1:
        return encoder.encode([recipe.templates[0].format(t) for t in label_texts], batch_size=batch_size, progress=progress)
    n_t = len(recipe.templates)
    texts = [tmpl.format(t) for t in label_texts for tmpl in recipe.templates]
    emb = encoder.encode(texts, batch_size=batch_size, progress=progress).reshape(len(label_texts), n_t, -1)
    mean = emb.mean(axis=1)
    return (mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)).astype(np.float32)
