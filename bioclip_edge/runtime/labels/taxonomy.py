"""Taxonomy columns of a label matrix: roll-ups to higher ranks and subsets, as pybioclip does.

A label's taxonomy is kingdom .. genus, the species as a binomial (``Panthera leo``), and a
common name. Rolling species probabilities up to a rank sums them over labels that share the
whole lineage down to that rank (so two genera of the same name in different families stay
apart, as in pybioclip's grouped predictions).

Output files describe a label's taxonomy the way MegaDetector's and SpeciesNet's tools read it
(``classification_category_descriptions``): the Wildlife Insights taxonomy string, five
lower-case tokens ``class;order;family;genus;species`` with the species as its epithet, e.g.
``mammalia;carnivora;felidae;panthera;leo``; a genus-level label leaves the last token empty
(``mammalia;carnivora;felidae;panthera;``). Kingdom and phylum are left out because those
strings start at class: MegaDetector's ``clean_taxonomy_string`` accepts exactly five tokens (or
seven, GUID and common name around them), and reads a kingdom-first seven-rank string as
GUID + ranks + common name, one rank off. A label without any rank is described by its text.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from bioclip_edge.errors import UserError

RANKS = ("kingdom", "phylum", "class", "order", "family", "genus", "species")
TAXONOMY_COLUMNS = RANKS + ("common_name",)
NAME_COLUMN = "name"
DESCRIPTION_RANKS = ("class", "order", "family")  # then genus and the species epithet
_DESCRIPTION_SEPARATORS = (";", "|")  # token and multi-description separators in MegaDetector's tools


class TaxonomyError(UserError, ValueError):
    """A rank or column that a label matrix does not have."""


def check_rank(rank: str, have: Sequence[str], where: str) -> int:
    rank = rank.lower()
    if rank not in RANKS:
        raise TaxonomyError(f"unknown rank {rank!r}; choose one of {', '.join(RANKS)}")
    if rank not in have:
        raise TaxonomyError(f"{where}: this label matrix has no taxonomy (no {rank!r} column); "
                            "roll-ups need a matrix built from a taxonomy CSV or imported from TreeOfLife")
    return RANKS.index(rank)


def binomial(genus: str, species: str) -> str:
    """The species column as a binomial: an epithet alone ("leo") gets its genus in front."""
    genus, species = genus.strip(), species.strip()
    if not species:
        return ""
    if genus and not species.startswith(genus + " ") and " " not in species:
        return f"{genus} {species}"
    return species


def epithet(genus: str, species: str) -> str:
    """The species epithet that the TreeOfLife text uses ("Panthera leo" -> "leo")."""
    genus, species = genus.strip(), species.strip()
    if genus and species.startswith(genus + " "):
        return species[len(genus) + 1 :]
    return species


def taxonomy_description(ranks: Mapping[str, str]) -> str:
    """``class;order;family;genus;epithet`` in lower case (see the module docstring); "" without ranks."""
    genus, species = (ranks.get("genus") or "").strip(), (ranks.get("species") or "").strip()
    if not genus and " " in species:  # a binomial with no genus column: "Felis catus"
        genus = species.split(" ", 1)[0]
    tokens = [(ranks.get(rank) or "") for rank in DESCRIPTION_RANKS] + [genus, epithet(genus, species)]
    if not any(token.strip() for token in tokens):
        return ""
    return ";".join(_description_token(token) for token in tokens)


def _description_token(value: str) -> str:
    for sep in _DESCRIPTION_SEPARATORS:
        value = value.replace(sep, " ")
    return " ".join(value.split()).lower()


class LabelDescriptions:
    """Per-label descriptions for output files, computed on demand.

    A TreeOfLife matrix holds ~900k labels and an output lists only the few predicted, so the
    strings are made when asked for, from the (lazily decoded) columns.
    """

    def __init__(self, names: Sequence[str], ranks: Mapping[str, Sequence[str]] | None):
        self._names = names
        self._ranks = dict(ranks) if ranks else None

    def __len__(self) -> int:
        return len(self._names)

    def __getitem__(self, index: int) -> str:
        index = int(index)
        if self._ranks is not None:
            described = taxonomy_description({rank: col[index] for rank, col in self._ranks.items()})
            if described:
                return described
        return str(self._names[index])


def display_name(ranks: Mapping[str, str], common_name: str = "") -> str:
    """A label's name for output: the binomial, else its deepest known rank, else the common name."""
    for rank in reversed(RANKS):
        value = (ranks.get(rank) or "").strip()
        if value:
            return value
    return common_name.strip()


def lineage_groups(columns: Mapping[str, Sequence[str]], rank: str) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Group id per label and each group's lineage (kingdom .. rank), in order of first appearance."""
    depth = RANKS.index(rank) + 1
    cols = [columns[r] for r in RANKS[:depth]]
    n = len(cols[0])
    ids = np.empty(n, dtype=np.int64)
    seen: dict[tuple[str, ...], int] = {}
    for i, key in enumerate(zip(*cols)):
        ids[i] = seen.setdefault(key, len(seen))
    return ids, list(seen)


def parse_where(items: Sequence[str]) -> dict[str, set[str]]:
    """``["class=Aves", "order=Passeriformes,Piciformes"]`` -> {column: allowed values}."""
    out: dict[str, set[str]] = {}
    for item in items:
        if "=" not in item:
            raise TaxonomyError(f"--where {item!r}: expected COLUMN=VALUE[,VALUE...], e.g. class=Aves")
        key, _, values = item.partition("=")
        key = key.strip().lower().replace(" ", "_")
        vals = {v.strip() for v in values.split(",") if v.strip()}
        if not vals:
            raise TaxonomyError(f"--where {item!r}: no value after '='")
        out.setdefault(key, set()).update(vals)
    return out


def where_mask(columns: Mapping[str, Sequence[str]], where: Mapping[str, set[str]], where_name: str) -> np.ndarray:
    """Rows whose every named column holds one of the allowed values (case-insensitive)."""
    mask: np.ndarray | None = None
    for key, allowed in where.items():
        if key not in columns:
            raise TaxonomyError(f"{where_name}: no column {key!r} to select on (it has: {', '.join(columns)})")
        allowed_lower = {a.lower() for a in allowed}
        col = np.fromiter((v.lower() in allowed_lower for v in columns[key]), dtype=bool, count=len(columns[key]))
        mask = col if mask is None else (mask & col)
    if mask is None:
        raise TaxonomyError("no selection given; pass --where COLUMN=VALUE")
    return mask
