"""A species checklist applied to a label matrix: keep the labels of the taxa a place has.

A checklist is a GBIF checklist or species-list download (CSV or TSV, whichever delimiter its
header uses, with ``scientificName`` or ``species`` and ideally ``taxonRank`` and kingdom..genus),
or a text file of scientific names, one a line (``#`` starts a comment). Names may carry their
authorship ("Panthera leo (Linnaeus, 1758)"): GBIF's ``species`` column and the canonical name
are used when present, otherwise the authorship is stripped.

What is kept:

- a species label (its species column is set) whose binomial is listed, or whose first two words
  are (a listed species keeps its subspecies' labels); a listed subspecies lists its species too;
- a higher-rank label (genus, family, ...: no species) whose taxon contains a listed species:
  a rank named in the checklist row (GBIF's kingdom..genus columns), the genus of a listed
  binomial, or a rank of a species label the checklist kept; or whose taxon is listed itself.

Names are compared case-insensitively and by name alone, not by lineage, since a checklist's
higher taxonomy (GBIF's backbone) and the matrix's (TreeOfLife) often place a taxon differently.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.labels.sources import SourceFile, read_source
from bioclip_edge.runtime.labels.taxonomy import RANKS, binomial

NAME_COLUMNS = ("canonicalname", "scientificname", "species")  # any one makes a file a table
HIGHER_RANKS = frozenset({"domain", "kingdom", "subkingdom", "phylum", "subphylum", "superclass", "class", "subclass",
                          "superorder", "order", "suborder", "infraorder", "superfamily", "family", "subfamily", "tribe",
                          "subtribe", "genus", "subgenus", "section"})
_RANK_MARKERS = frozenset({"subsp.", "ssp.", "var.", "subvar.", "f.", "fo.", "forma", "cv.", "x", "\u00d7"})
_TABLE_SUFFIXES = (".csv", ".tsv", ".tab")


class ChecklistError(UserError, ValueError):
    """A checklist file that cannot be read, or a label matrix it cannot be applied to."""


@dataclass(frozen=True)
class ChecklistEntry:
    """One listed taxon: how it is shown, the lower-case names it matches, whether it is a species
    (or below), and the lower-case higher taxa that contain it."""

    name: str
    keys: tuple[str, ...]
    species: bool
    taxa: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checklist:
    entries: tuple[ChecklistEntry, ...]
    source: SourceFile | None = None

    @classmethod
    def read(cls, path: str | Path) -> "Checklist":
        source, text = read_source(path, "checklist", ChecklistError)
        entries = _parse(text, Path(path))
        if not entries:
            raise ChecklistError(f"{path}: the checklist lists no names; pass a GBIF checklist download or a "
                                 "text file with one scientific name a line")
        return cls(tuple(entries), source)

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "Checklist":
        """A checklist of scientific names (authorship allowed), ranks guessed from the word count."""
        return cls(tuple(_dedupe(e for e in (_entry(canonical_name(n), "", {}) for n in names) if e)))


@dataclass(frozen=True)
class ChecklistMatch:
    """Which labels a checklist keeps, and the listed names that matched no label."""

    keep: np.ndarray
    unmatched: tuple[str, ...]


def canonical_name(name: str) -> str:
    """A scientific name without its authorship or rank markers: "Ursus arctos subsp. horribilis
    Ord, 1815" -> "Ursus arctos horribilis"; epithets are the lower-case words after the first."""
    words = name.strip().strip("\"'").split()
    out = words[:1]
    for word in words[1:]:
        if word.lower() in _RANK_MARKERS:
            continue
        if not (word[0].islower() and all(c.isalpha() or c == "-" for c in word)):
            break
        out.append(word)
    return " ".join(out)


def _norm(name: str) -> str:
    return " ".join(name.split()).lower()


def _entry(name: str, rank: str, row: Mapping[str, str], accepted: str = "") -> ChecklistEntry | None:
    names = [n for n in (name, accepted) if n]
    if not names:
        return None
    rank = rank.strip().lower()
    is_species = len(names[0].split()) >= 2 if rank in ("", "unranked") else rank not in HIGHER_RANKS
    keys = {_norm(n) for n in names}
    taxa = {_norm(row[r]) for r in RANKS[:-1] if row.get(r, "").strip()}
    if is_species:
        keys |= {" ".join(k.split()[:2]) for k in keys if len(k.split()) > 2}
        taxa |= {k.split()[0] for k in keys}
    return ChecklistEntry(names[0], tuple(sorted(keys)), is_species, tuple(sorted(taxa - keys)))


def _dedupe(entries: Iterable[ChecklistEntry]) -> list[ChecklistEntry]:
    seen: dict[str, ChecklistEntry] = {}
    for entry in entries:
        seen.setdefault(_norm(entry.name), entry)
    return list(seen.values())


def _parse(text: str, path: Path) -> list[ChecklistEntry]:
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        return []
    first = lines[0]
    delimiter = "\t" if "\t" in first else ("," if "," in first else ";" if ";" in first else None)
    header = [h.strip().lower() for h in first.split(delimiter)] if delimiter else [first.strip().lower()]
    if set(header) & set(NAME_COLUMNS):
        return _parse_table(lines, delimiter or "\t", path)
    if path.suffix.lower() in _TABLE_SUFFIXES:
        raise ChecklistError(f"{path}: no scientificName or species column in its header ({first[:80]!r}); "
                             "pass a GBIF checklist download, or a .txt file with one scientific name a line")
    return _dedupe(e for e in (_entry(canonical_name(line), "", {}) for line in lines) if e)


def _parse_table(lines: Sequence[str], delimiter: str, path: Path) -> list[ChecklistEntry]:
    reader = csv.reader(lines, delimiter=delimiter)
    header = [h.strip().lower() for h in next(reader)]
    entries = []
    for number, values in enumerate(reader, start=2):
        if len(values) > len(header):
            raise ChecklistError(f"{path}: line {number} has {len(values)} fields but the header has {len(header)}; "
                                 "is the file cut or its delimiter mixed?")
        row = {key: value.strip() for key, value in zip(header, values)}
        name = canonical_name(row.get("canonicalname") or row.get("scientificname") or "")
        entry = _entry(name, row.get("taxonrank", ""), row, canonical_name(row.get("species", "")))
        if entry:
            entries.append(entry)
    return _dedupe(entries)


def listed_rows(matrix, checklist: Checklist) -> ChecklistMatch:
    """Which of ``matrix``'s labels the checklist keeps (see the module docstring)."""
    if not matrix.has_taxonomy:
        raise ChecklistError(f"{matrix.where()}: this label matrix has no taxonomy columns, so its labels cannot "
                             "be matched to checklist names; build it from a taxonomy CSV or import TreeOfLife")
    columns = {rank: matrix.column(rank) for rank in RANKS}
    by_key = {key: i for i, entry in enumerate(checklist.entries) if entry.species for key in entry.keys}
    higher = {key: i for i, entry in enumerate(checklist.entries) if not entry.species for key in entry.keys}
    contained = {taxon for entry in checklist.entries if entry.species for taxon in entry.taxa}
    matched: set[int] = set()
    keep = np.zeros(matrix.n, dtype=bool)
    for row, lineage in enumerate(zip(*(columns[rank] for rank in RANKS))):
        species = _norm(binomial(lineage[-2], lineage[-1]))
        if not species:
            continue
        hits = [by_key[k] for k in (species, " ".join(species.split()[:2])) if k in by_key]
        if hits:
            keep[row] = True
            matched.update(hits)
            contained.update(_norm(v) for v in lineage[:-1] if v.strip())
    for row, lineage in enumerate(zip(*(columns[rank] for rank in RANKS))):
        if lineage[-1].strip():
            continue
        deepest = next((_norm(v) for v in reversed(lineage[:-1]) if v.strip()), "")
        if deepest in higher:
            matched.add(higher[deepest])
        keep[row] = bool(deepest) and (deepest in contained or deepest in higher)
    unmatched = tuple(entry.name for i, entry in enumerate(checklist.entries) if i not in matched)
    return ChecklistMatch(keep, unmatched)
