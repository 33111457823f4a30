"""Label names on both sides: truth labels matched to the model's, and roll-ups to a rank.

Truth labels are matched case-insensitively to the model's label names, and to the common names
and binomials the taxonomy knows (a folder ``lion`` matches ``Panthera leo``). The taxonomy comes
from the label matrix (``--labels``: every rank, kingdom to species) or from a MegaDetector
output's ``classification_category_descriptions`` (``class;order;family;genus;epithet``: class to
species). ``--rank`` rolls both sides up: a label becomes its taxon's name at that rank, a truth label may also name a taxon at or below the rank
(a folder ``Panthera`` at genus). A prediction's top-k at a rank sums its labels' scores per taxon
(the labels the output kept: a lower bound of pybioclip's sum over every label). A label without
that rank (``blank``, a plain text label) stays as it is.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from bioclip_edge.runtime.labels.taxonomy import RANKS, TaxonomyError, binomial, check_rank

DESCRIBED_RANKS = ("class", "order", "family", "genus", "species")  # what a MegaDetector description holds


class Names:
    """``lineages``: label -> {rank: value}; ``aliases``: lower-case name -> the model's label."""

    def __init__(self, lineages: Mapping[str, Mapping[str, str]], aliases: Mapping[str, str], source: str):
        self.lineages = {label: dict(ranks) for label, ranks in lineages.items()}
        self.aliases = dict(aliases)
        self.source = source  # where the taxonomy came from, for messages and the report

    @classmethod
    def from_matrix(cls, matrix: Any, wanted: set[str]) -> "Names":
        """From a ``LabelMatrix``: aliases for every name and common name among ``wanted`` (lower case),
        lineages for the rows they and the predicted labels name."""
        names = matrix.names
        common = matrix.columns["common_name"].values() if "common_name" in matrix.columns else [""] * len(names)
        aliases: dict[str, str] = {}
        rows: dict[str, int] = {}
        for i, (name, vernacular) in enumerate(zip(names, common)):
            for key in (name.lower(), vernacular.strip().lower()):
                if key and key in wanted:
                    aliases.setdefault(key, name)
                    rows.setdefault(name, i)
        lineages = {}
        if matrix.has_taxonomy:
            for name, i in rows.items():
                ranks = {rank: matrix.columns[rank][i].strip() for rank in RANKS}
                ranks["species"] = binomial(ranks["genus"], ranks["species"])
                lineages[name] = ranks
        return cls(lineages, aliases, matrix.where())

    @classmethod
    def from_descriptions(cls, known: Sequence[str], descriptions: Mapping[str, str], source: str) -> "Names":
        lineages: dict[str, dict[str, str]] = {}
        aliases = {label.lower(): label for label in known}
        for label, text in descriptions.items():
            tokens = [t.strip() for t in str(text).split(";")]
            if len(tokens) != len(DESCRIBED_RANKS) or not any(tokens):
                continue  # a label text, not a taxonomy string
            ranks = dict(zip(DESCRIBED_RANKS, tokens))
            ranks["species"] = binomial(ranks["genus"], ranks["species"])
            lineages[label] = ranks
            if ranks["species"]:
                aliases.setdefault(ranks["species"].lower(), label)
        return cls(lineages, aliases, source)

    def canonical(self, label: str) -> str:
        """The model's label a truth label names, or the truth label itself when it names none."""
        return self.aliases.get(label.strip().lower(), label.strip())

    def check_rank(self, rank: str) -> str:
        rank = rank.lower()
        check_rank(rank, RANKS, "--rank")  # an unknown rank: the project's one message
        have = {r for ranks in self.lineages.values() for r, v in ranks.items() if v}
        if rank not in have:
            raise TaxonomyError(f"--rank {rank}: {self.source} carries no {rank!r} taxonomy for these labels; pass --labels "
                                "with the taxonomy label matrix classify used (labels build from a taxonomy CSV, or TreeOfLife)")
        return rank

    def taxon(self, label: str, rank: str) -> str:
        """``label`` (a model label, or a truth label naming a taxon) at ``rank``; unchanged when unknown."""
        ranks = self.lineages.get(label)
        if ranks is None:
            ranks = self._taxon_named(label, rank)
            if ranks is None:
                return label
        return ranks.get(rank) or label

    def _taxon_named(self, label: str, rank: str) -> dict[str, str] | None:
        """A lineage (down to ``rank``) whose taxon at ``rank`` or below is called ``label``."""
        key = label.strip().lower()
        for ranks in self.lineages.values():
            for r in RANKS[RANKS.index(rank):]:
                if (ranks.get(r) or "").lower() == key:
                    return ranks
        return None

    def rolled(self, labels: Sequence[str], scores: Sequence[float], rank: str) -> tuple[list[str], list[float]]:
        """A prediction's top-k at ``rank``: scores summed per taxon, best first (ties: first seen)."""
        if not scores:
            return [self.taxon(label, rank) for label in labels], []
        sums: dict[str, float] = {}
        for label, score in zip(labels, scores):
            taxon = self.taxon(label, rank)
            sums[taxon] = sums.get(taxon, 0.0) + float(score)
        ranked = sorted(sums.items(), key=lambda kv: -kv[1])
        return [t for t, _ in ranked], [s for _, s in ranked]
