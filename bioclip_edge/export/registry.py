"""Known models: the BioCLIP family and the CLIP models the seed documents name.

Like timm's pretrained configs, one frozen record per model. The exporter uses ``architecture``
to build a random-weight stand-in when a hub is unreachable (said plainly in the bundle), and
profiling compares its counts with the ``published_*`` figures.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KnownModel:
    name: str  # short name users type, e.g. bioclip
    spec: str  # what open_clip loads: hf-hub:... or an open_clip model name
    architecture: str  # open_clip config name with the same shapes
    pretrained: str | None = None  # open_clip pretrained tag, for built-in names
    family: str = ""
    published_params_m: float | None = None
    published_gflops_image: float | None = None
    published_gflops_label: float | None = None
    resize_mode: str | None = None  # override of the hub config's resize mode, where known
    note: str = ""


KNOWN_MODELS: tuple[KnownModel, ...] = (
    KnownModel("bioclip", "hf-hub:imageomics/bioclip", "ViT-B-16", family="BioCLIP",
               published_params_m=150, published_gflops_image=34, published_gflops_label=6),
    KnownModel("biocap", "hf-hub:imageomics/biocap", "ViT-B-16", family="BioCLIP",
               published_params_m=150, published_gflops_image=34, published_gflops_label=6),
    KnownModel("bioclip-2", "hf-hub:imageomics/bioclip-2", "ViT-L-14", family="BioCLIP",
               published_params_m=428, published_gflops_image=155, published_gflops_label=13),
    KnownModel("bioclip-2.5-huge", "hf-hub:imageomics/bioclip-2.5-vith14", "ViT-H-14", family="BioCLIP",
               published_params_m=986, published_gflops_image=325, published_gflops_label=47),
    KnownModel("openai-rn50", "RN50", "RN50", pretrained="openai", family="OpenAI CLIP"),
    KnownModel("openai-b32", "ViT-B-32", "ViT-B-32", pretrained="openai", family="OpenAI CLIP"),
    KnownModel("openai-b16", "ViT-B-16", "ViT-B-16", pretrained="openai", family="OpenAI CLIP"),
    KnownModel("openai-l14", "ViT-L-14", "ViT-L-14", pretrained="openai", family="OpenAI CLIP"),
    KnownModel("openai-l14-336", "ViT-L-14-336", "ViT-L-14-336", pretrained="openai", family="OpenAI CLIP"),
    KnownModel("metaclip-b32", "ViT-B-32-quickgelu", "ViT-B-32-quickgelu", pretrained="metaclip_400m", family="MetaCLIP 1"),
    KnownModel("metaclip-b16", "ViT-B-16-quickgelu", "ViT-B-16-quickgelu", pretrained="metaclip_400m", family="MetaCLIP 1"),
    KnownModel("metaclip-l14", "ViT-L-14-quickgelu", "ViT-L-14-quickgelu", pretrained="metaclip_400m", family="MetaCLIP 1"),
    KnownModel("metaclip2-h14", "ViT-H-14-worldwide", "ViT-H-14-worldwide", pretrained="metaclip2_worldwide",
               family="MetaCLIP 2", note="text tower takes facebook/xlm-v-base token ids"),
    KnownModel("metaclip2-l14", "ViT-L-14-worldwide", "ViT-L-14-worldwide", pretrained="metaclip2_worldwide",
               family="MetaCLIP 2", note="text tower takes facebook/xlm-v-base token ids"),
)


def find_known(spec: str) -> KnownModel | None:
    """Look up a model by short name or by the spec open_clip loads (case-insensitive)."""
    key = spec.strip().lower()
    for m in KNOWN_MODELS:
        if key in (m.name.lower(), m.spec.lower()):
            return m
    return None
