"""Label data for tests: a small species CSV, the official TreeOfLife matrix layout, synthetic
taxonomies, the bundle description a label matrix records, and real label strings to tokenize."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bioclip_edge.runtime.labels.taxonomy import RANKS

SPECIES_CSV = """Kingdom,Phylum,Class,Order,Family,Genus,Species,Common Name
Animalia,Chordata,Mammalia,Carnivora,Felidae,Panthera,leo,lion
Animalia,Chordata,Mammalia,Carnivora,Felidae,Panthera,Panthera pardus,leopard
Animalia,Chordata,Mammalia,Carnivora,Hyaenidae,Crocuta,crocuta,spotted hyena
Animalia,Chordata,Aves,Passeriformes,Corvidae,Corvus,corax,common raven
Animalia,Chordata,Aves,Struthioniformes,Struthionidae,Struthio,camelus,
"""

TAXA = [
    (["Animalia", "Chordata", "Mammalia", "Carnivora", "Felidae", "Panthera", "leo"], "lion"),
    (["Animalia", "Chordata", "Mammalia", "Carnivora", "Felidae", "Panthera", "pardus"], "leopard"),
    (["Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Corvus", "corax"], "common raven"),
    (["Plantae", "Tracheophyta", "Magnoliopsida", "Fagales", "Fagaceae", "Quercus", "robur"], ""),
    (["Animalia", "Arthropoda", "Insecta", "Lepidoptera", "Nymphalidae", "Danaus", "plexippus"], "monarch"),
]


def model_info(dim: int) -> dict:
    """The bundle description a label matrix records, for a random-weight model of ``dim`` dimensions."""
    return {"model_id": "test", "architecture": "ViT-T", "embed_dim": dim, "logit_scale": 100.0, "logit_bias": None,
            "random_weights": True, "seed": 0, "text_variant": None, "text_sha256": None, "text_tower_sha256s": []}


INFO = model_info(32)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def synthetic_taxonomy(n: int, rng) -> dict[str, list[str]]:
    """n species in a small tree: 2 kingdoms, ~6 classes, ~40 families, ~300 genera."""
    cols: dict[str, list[str]] = {r: [] for r in RANKS}
    for i in range(n):
        g = int(rng.integers(0, 300))
        lineage = [f"K{g % 2}", f"P{g % 4}", f"C{g % 6}", f"O{g % 13}", f"F{g % 40}", f"G{g}"]
        for rank, value in zip(RANKS, lineage):
            cols[rank].append(value)
        cols["species"].append(f"G{g} s{i}")
    cols["common_name"] = [f"critter {i}" for i in range(n)]
    return cols


def write_official(folder: Path, dim: int, n: int, zero_tail: int, seed: int = 0):
    """The shipped layout: float32 [dim, N], columns = labels, the last ``zero_tail`` columns all zero."""
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((dim, n)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=0, keepdims=True)
    if zero_tail:
        emb[:, n - zero_tail :] = 0
    names = [[list(TAXA[i % len(TAXA)][0]), TAXA[i % len(TAXA)][1]] for i in range(n)]
    np.save(folder / "txt_emb_species.npy", emb)
    (folder / "txt_emb_species.json").write_text(json.dumps(names), encoding="utf-8")
    return folder / "txt_emb_species.npy", folder / "txt_emb_species.json", emb


LABELS_FILE = Path(__file__).resolve().parents[1] / "data" / "labels_tokenizer.txt"
EXTRA = ["", " ", "\t\n", "lion\n", "  spaced  out  ", "x" * 400, "Panthera leo " * 30]


def real_labels() -> list[str]:
    """Real label strings (tests/data/labels_tokenizer.txt) and edge cases: empty, blank, overlong."""
    return LABELS_FILE.read_text(encoding="utf-8").split("\n") + EXTRA
