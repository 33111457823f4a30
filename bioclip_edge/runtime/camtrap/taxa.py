"""A label's taxon for ``observations.scientificName`` and the package's ``taxonomic`` block.

The taxonomy comes from the label matrix classify used (``--labels``: kingdom to species and a
common name per label), else from a MegaDetector output's category descriptions
(``class;order;family;genus;epithet``, lower case: written here with the usual capitals). The
scientific name is the deepest rank known: the binomial, else the genus, family, ... A label with
no taxonomy keeps its own text as the name (right for labels that are scientific names, as
BioCLIP's often are; the summary lists the others so they can be fixed before publishing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from bioclip_edge.runtime.labels.taxonomy import RANKS, binomial

DESCRIBED_RANKS = ("class", "order", "family", "genus", "species")


@dataclass(frozen=True)
class Taxon:
    scientific_name: str
    rank: str | None  # None: a label's own text, no rank known
    ranks: dict[str, str] = field(default_factory=dict)  # kingdom .. genus (the ones known)
    vernacular: str = ""

    def block(self) -> dict[str, Any]:
        """The ``taxonomic`` entry of the profile: name, rank, higher ranks, English common name."""
        entry: dict[str, Any] = {"scientificName": self.scientific_name}
        if self.rank:
            entry["taxonRank"] = self.rank
        entry.update({rank: value for rank, value in self.ranks.items() if value and rank != "species"})
        if self.vernacular:
            entry["vernacularNames"] = {"eng": self.vernacular}
        return entry


def taxon_of(ranks: Mapping[str, str], vernacular: str = "") -> Taxon | None:
    """The deepest named rank of a lineage (the species as a binomial); None when no rank is named."""
    lineage = {rank: (ranks.get(rank) or "").strip() for rank in RANKS}
    lineage["species"] = binomial(lineage["genus"], lineage["species"])
    for rank in reversed(RANKS):
        if lineage[rank]:
            return Taxon(lineage[rank], rank, {r: v for r, v in lineage.items() if v}, vernacular.strip())
    return None


class Taxa:
    """label -> Taxon for the labels a package uses; ``source`` says where the taxonomy came from."""

    def __init__(self, taxa: Mapping[str, Taxon], source: str):
        self._taxa = dict(taxa)
        self.source = source

    def get(self, label: str) -> Taxon:
        return self._taxa.get(label) or Taxon(label.strip(), None)

    @classmethod
    def from_descriptions(cls, descriptions: Mapping[str, str], source: str) -> "Taxa":
        taxa = {}
        for label, text in descriptions.items():
            tokens = [t.strip() for t in str(text).split(";")]
            if len(tokens) != len(DESCRIBED_RANKS):
                continue  # a label's own text, not a taxonomy string
            ranks = dict(zip(DESCRIBED_RANKS, tokens))
            ranks = {rank: (value.capitalize() if rank != "species" else value) for rank, value in ranks.items()}
            taxon = taxon_of(ranks)
            if taxon:
                taxa[label] = taxon
        return cls(taxa, source)

    @classmethod
    def from_matrix(cls, path: Path, labels: Iterable[str]) -> "Taxa":
        from bioclip_edge.runtime.labels.matrix import LabelMatrix

        matrix = LabelMatrix.load(path)
        wanted = set(labels)
        common = matrix.columns.get("common_name")
        taxa = {}
        if matrix.has_taxonomy:
            for i, name in enumerate(matrix.names):
                if name in wanted and name not in taxa:
                    taxon = taxon_of({rank: matrix.columns[rank][i] for rank in RANKS}, common[i] if common is not None else "")
                    if taxon:
                        taxa[name] = taxon
        return cls(taxa, str(path))
