"""A small label matrix with species and higher-rank rows, and a geofence in SpeciesNet's layout
holding the rules of SpeciesNet's own geofence tests (``speciesnet/geofence_utils_test.py``)."""

from __future__ import annotations

import numpy as np

from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.labels.taxonomy import RANKS
from tests.helpers.labels import INFO, unit

CARNIVORA = ["Animalia", "Chordata", "Mammalia", "Carnivora"]
# name -> kingdom..species (species as a binomial, or an epithet as TreeOfLife stores it)
TAXA = {
    "lion": CARNIVORA + ["Felidae", "Panthera", "Panthera leo"],
    "leopard": CARNIVORA + ["Felidae", "Panthera", "pardus"],
    "panthera genus": CARNIVORA + ["Felidae", "Panthera", ""],
    "cat family": CARNIVORA + ["Felidae", "", ""],
    "carnivorous mammal": CARNIVORA + ["", "", ""],
    "mammal": CARNIVORA[:3] + ["", "", "", ""],
    "puma": CARNIVORA + ["Felidae", "Puma", "concolor"],
    "sand cat": CARNIVORA + ["Felidae", "Felis", "Felis margarita"],
    "brown bear": CARNIVORA + ["Ursidae", "Ursus", "Ursus arctos"],
    "polar bear": CARNIVORA + ["Ursidae", "Ursus", "maritimus"],
    "ursus species": CARNIVORA + ["Ursidae", "Ursus", ""],
    "bear family": CARNIVORA + ["Ursidae", "", ""],
    "spotted hyena": CARNIVORA + ["Hyaenidae", "Crocuta", "Crocuta crocuta"],
    "hyena family": CARNIVORA + ["Hyaenidae", "", ""],
    "dog": CARNIVORA + ["Canidae", "Canis", "Canis lupus familiaris"],
    "common raven": ["Animalia", "Chordata", "Aves", "Passeriformes", "Corvidae", "Corvus", "corax"],
    "bird": ["Animalia", "Chordata", "Aves", "", "", "", ""],
    "animal": ["Animalia", "", "", "", "", "", ""],
}

# SpeciesNet's test geofence, keys as its full class strings
GEOFENCE = {
    "mammalia;carnivora;felidae;panthera;leo": {"allow": {"KEN": [], "TZA": []}},
    "mammalia;carnivora;felidae;panthera;": {"allow": {"KEN": [], "TZA": [], "USA": ["AK", "CA"]}},
    "mammalia;carnivora;felidae;;": {"allow": {"FRA": [], "KEN": [], "TZA": [], "USA": []},
                                     "block": {"FRA": [], "USA": ["NY"]}},
    "mammalia;carnivora;felidae;felis;margarita": {"block": {"AUS": []}},
    "mammalia;carnivora;ursidae;;": {"block": {"GBR": []}},
}


def place_matrix() -> LabelMatrix:
    """The TAXA rows as a label matrix (names are the common names, so tests read naturally)."""
    names = list(TAXA)
    rng = np.random.default_rng(0)
    columns = {rank: [TAXA[name][i] for name in names] for i, rank in enumerate(RANKS)}
    columns["common_name"] = names
    emb = unit(rng.standard_normal((len(names), INFO["embed_dim"])))
    return LabelMatrix.from_embeddings(emb, names, INFO, "plain", columns=columns)
