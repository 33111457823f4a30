"""SpeciesNet's geofence applied to a label matrix: keep only the labels allowed in a region.

The geofence file (SpeciesNet's ``geofence_release.json``) maps a taxon key to its rules::

    {"mammalia;carnivora;felidae;panthera;leo": {"allow": {"KEN": [], "TZA": []}},
     "mammalia;carnivora;ursidae;;": {"block": {"GBR": []}},
     "mammalia;carnivora;felidae;panthera;": {"allow": {"USA": ["AK", "CA"]}}}

Keys are ``class;order;family;genus;species`` in lower case with the species as its epithet, a
higher-rank taxon leaving the lower tokens empty; the same string ``taxonomy.taxonomy_description``
writes for a label. Rules map ISO 3166-1 alpha-3 countries to admin-1 codes; an empty list means
the whole country.

A label is dropped exactly when SpeciesNet's ``should_geofence_animal_classification`` would
geofence it, decided from the label's own key only:

- a label whose key is not in the file is kept;
- ``allow``, when it names any country: a country not named drops the label; a named country
  with admin-1 codes drops it when an admin-1 region is given and is not among them (without a
  region, a partly allowed country keeps it);
- ``block``, then: a country blocked whole drops the label, and so does a given admin-1 region
  listed under its country.

Higher-rank labels (a genus, a family) obey their own key's rules, never their species': that is
how SpeciesNet's release file is meant to be read, since its build copies every species'
allowed countries up to the genus, family, order and class keys.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from bioclip_edge.errors import OptionError, UserError
from bioclip_edge.runtime.labels.sources import SourceFile, read_source
from bioclip_edge.runtime.labels.taxonomy import RANKS, taxonomy_description

RULE_KINDS = ("allow", "block")
NO_TAXON_KEY = ";;;;"  # what SpeciesNet's key is for a label without class..species (e.g. "animal")
_COUNTRY = re.compile(r"^[A-Za-z]{3}$")


class GeofenceError(UserError, ValueError):
    """A geofence file that cannot be read, or a label matrix it cannot be applied to."""


@dataclass(frozen=True)
class Region:
    """Where the camera stands: an ISO 3166-1 alpha-3 country and, optionally, an admin-1 code
    as the geofence file writes it (``CA`` for California)."""

    country: str
    admin1: str | None = None

    @classmethod
    def parse(cls, country: str | None, admin1: str | None = None) -> "Region":
        """``--country`` and ``--admin1``; ``--admin1`` may be a whole ISO 3166-2 code (``US-CA``),
        which names the country too (``USA``): ``--country`` may then be left out, and must agree."""
        from bioclip_edge.runtime.labels.iso3166 import split_subdivision

        code = (admin1 or "").strip().upper()
        admin1 = code or None
        split = split_subdivision(code) if code else None
        if split is not None:
            if country and country.strip().upper() != split[0]:
                raise OptionError(f"--admin1 {code} is in {split[0]} (ISO 3166-2: {code.split('-')[0]} is "
                                  f"{split[0]}), but --country is {country.strip().upper()}; give the region of "
                                  "that country, or leave --country out")
            country, admin1 = split
        if not country:
            raise OptionError("--geofence needs --country ISO3 (an ISO 3166-1 alpha-3 code such as KEN or USA)"
                              if not admin1 else "--admin1 needs --country ISO3 (e.g. --country USA --admin1 CA), "
                              "or give --admin1 as an ISO 3166-2 code such as US-CA")
        if not _COUNTRY.match(country.strip()):
            raise OptionError(f"--country {country!r}: expected an ISO 3166-1 alpha-3 code, three letters such as "
                              "KEN, USA or GBR")
        return cls(country.strip().upper(), admin1)

    def to_dict(self) -> dict[str, Any]:
        return {"country": self.country, "admin1": self.admin1}

    def __str__(self) -> str:
        return self.country + (f"-{self.admin1}" if self.admin1 else "")


@dataclass(frozen=True)
class GeofenceRule:
    """One key's rules: country -> admin-1 codes (empty: the whole country). ``None``: no such map."""

    allow: Mapping[str, tuple[str, ...]] | None = None
    block: Mapping[str, tuple[str, ...]] | None = None

    def drops(self, region: Region) -> bool:
        """Whether SpeciesNet geofences this key in ``region`` (see the module docstring)."""
        if self.allow:  # an empty allow map restricts nothing, as in SpeciesNet
            if region.country not in self.allow:
                return True
            regions = self.allow[region.country]
            if region.admin1 and regions and region.admin1 not in regions:
                return True
        if self.block and region.country in self.block:
            regions = self.block[region.country]
            if not regions or (region.admin1 and region.admin1 in regions):
                return True
        return False


@dataclass(frozen=True)
class Geofence:
    """A parsed geofence file: key -> rule, and the file it came from."""

    rules: Mapping[str, GeofenceRule]
    source: SourceFile | None = None

    @classmethod
    def read(cls, path: str | Path) -> "Geofence":
        source, text = read_source(path, "geofence file", GeofenceError)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise GeofenceError(f"{path}: not a JSON geofence file ({exc}); pass SpeciesNet's geofence "
                                "JSON (taxon key -> allow/block rules)") from None
        return cls.from_dict(data, str(path), source)

    @classmethod
    def from_dict(cls, data: Any, where: str = "geofence", source: SourceFile | None = None) -> "Geofence":
        if not isinstance(data, dict):
            raise GeofenceError(f"{where}: expected a JSON object mapping taxon keys to rules, "
                                f"found {type(data).__name__}")
        rules = {}
        for key, rule in data.items():
            if len(str(key).split(";")) != 5:
                raise GeofenceError(f"{where}: key {key!r} is not class;order;family;genus;species "
                                    "(five ';'-separated tokens); is this SpeciesNet's geofence file?")
            rules[str(key).lower()] = _parse_rule(rule, f"{where}: {key!r}")
        return cls(rules, source)

    def drops(self, key: str, region: Region) -> bool:
        rule = self.rules.get(key)
        return rule is not None and rule.drops(region)


def _parse_rule(rule: Any, where: str) -> GeofenceRule:
    if not isinstance(rule, dict) or set(rule) - set(RULE_KINDS):
        raise GeofenceError(f"{where}: expected {{\"allow\": {{...}}, \"block\": {{...}}}}, found {rule!r:.80}")
    maps: dict[str, dict[str, tuple[str, ...]] | None] = {}
    for kind in RULE_KINDS:
        countries = rule.get(kind)
        if countries is None:
            maps[kind] = None
            continue
        if not isinstance(countries, dict) or not all(
                isinstance(codes, list) and all(isinstance(c, str) for c in codes) for codes in countries.values()):
            raise GeofenceError(f"{where}: {kind!r} must map ISO3 country codes to lists of admin-1 codes, "
                                f"found {countries!r:.80}")
        maps[kind] = {str(country).upper(): tuple(c.upper() for c in codes) for country, codes in countries.items()}
    return GeofenceRule(allow=maps["allow"], block=maps["block"])


def label_keys(columns: Mapping[str, list[str]]) -> list[str]:
    """SpeciesNet's key for every label, from the matrix's taxonomy columns."""
    ranks = [columns[rank] for rank in RANKS]
    return [taxonomy_description(dict(zip(RANKS, values))) or NO_TAXON_KEY for values in zip(*ranks)]


def allowed_rows(matrix, geofence: Geofence, region: Region) -> np.ndarray:
    """Bool mask over ``matrix``'s labels: True where SpeciesNet's geofence keeps the label in ``region``."""
    if not matrix.has_taxonomy:
        raise GeofenceError(f"{matrix.where()}: this label matrix has no taxonomy columns, so its labels cannot "
                            "be matched to geofence keys; build it from a taxonomy CSV or import TreeOfLife")
    keys = label_keys({rank: matrix.column(rank) for rank in RANKS})
    return np.fromiter((not geofence.drops(key, region) for key in keys), dtype=bool, count=len(keys))
