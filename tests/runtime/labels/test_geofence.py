"""SpeciesNet's geofence on a label matrix: its own test cases, keys, higher ranks, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bioclip_edge.errors import OptionError, UserError
from bioclip_edge.runtime.labels.geofence import Geofence, GeofenceError, Region, allowed_rows, label_keys
from bioclip_edge.runtime.labels.taxonomy import RANKS
from tests.helpers.place import GEOFENCE, TAXA, place_matrix


@pytest.fixture(scope="module")
def matrix():
    return place_matrix()


def kept(matrix, rules, country, admin1=None) -> set[str]:
    mask = allowed_rows(matrix, Geofence.from_dict(rules), Region.parse(country, admin1))
    return {name for name, keep in zip(matrix.names, mask) if keep}


# speciesnet/geofence_utils_test.py, test_should_geofence_animal_classification: (label, country,
# admin1, geofenced); their labels are the rows of the same name here
SPECIESNET_CASES = [
    ("puma", "USA", None, False),  # not in the geofence map
    ("puma", "USA", "CA", False),
    ("lion", "GBR", None, True),  # allow: country not allowed
    ("lion", "KEN", None, False),
    ("panthera genus", "USA", None, False),  # allowed in part of the country, no region given
    ("panthera genus", "USA", "NY", True),  # region not allowed
    ("panthera genus", "USA", "CA", False),
    ("cat family", "FRA", None, True),  # allowed, then the whole country blocked
    ("cat family", "TZA", None, False),
    ("cat family", "USA", "CA", False),
    ("cat family", "USA", "NY", True),  # region blocked
    ("sand cat", "GBR", None, False),  # block elsewhere only
    ("sand cat", "AUS", None, True),
]


@pytest.mark.parametrize("label,country,admin1,geofenced", SPECIESNET_CASES)
def test_speciesnet_cases(matrix, label, country, admin1, geofenced):
    assert (label not in kept(matrix, GEOFENCE, country, admin1)) is geofenced


def test_speciesnet_rollup_cases_drop_the_same_rows(matrix):
    # geofence_animal_classification's cases: in TZA the lion stays; in USA it is dropped while the
    # cat family stays; in USA-NY the cat family goes and the order stays; in GBR the bears go
    tza, usa, ny, gbr = (kept(matrix, GEOFENCE, *r) for r in (("TZA",), ("USA",), ("USA", "NY"), ("GBR",)))
    assert "lion" in tza and "lion" not in usa and "cat family" in usa
    assert "cat family" not in ny and "carnivorous mammal" in ny
    assert "bear family" not in gbr and "carnivorous mammal" in gbr


def test_whole_region_and_labels_missing_from_the_file(matrix):
    every = set(TAXA)
    assert kept(matrix, GEOFENCE, "USA", "NY") == every - {"lion", "panthera genus", "cat family"}
    assert kept(matrix, GEOFENCE, "KEN") == every
    # higher ranks obey their own key only: the cat family is blocked in France, the sand cat is
    # not (its key blocks Australia alone), and bears have no key, so only their family goes in GBR
    assert kept(matrix, GEOFENCE, "FRA") == every - {"lion", "panthera genus", "cat family"}
    assert kept(matrix, GEOFENCE, "GBR") == every - {"lion", "panthera genus", "cat family", "bear family"}


def test_empty_allow_map_restricts_nothing(matrix):
    # SpeciesNet's release file propagates species' allow rules up; a taxon with none gets {"allow": {}}
    rules = {"mammalia;carnivora;ursidae;ursus;": {"allow": {}}, "aves;;;;": {"allow": {}, "block": {}}}
    assert kept(matrix, rules, "GBR") == set(TAXA)


def test_keys_match_speciesnet_full_class_strings(matrix):
    keys = dict(zip(matrix.names, label_keys({r: matrix.column(r) for r in RANKS})))
    assert keys["lion"] == "mammalia;carnivora;felidae;panthera;leo"  # binomial -> epithet
    assert keys["polar bear"] == "mammalia;carnivora;ursidae;ursus;maritimus"  # epithet as stored
    assert keys["dog"] == "mammalia;carnivora;canidae;canis;lupus familiaris"
    assert keys["panthera genus"] == "mammalia;carnivora;felidae;panthera;"
    assert keys["mammal"] == "mammalia;;;;" and keys["animal"] == ";;;;"


def test_codes_are_case_insensitive_and_read_from_a_file(tmp_path, matrix):
    path = tmp_path / "geofence.json"
    path.write_text(json.dumps({"MAMMALIA;Carnivora;felidae;panthera;leo": {"allow": {"ken": []}},
                                "mammalia;carnivora;felidae;panthera;": {"block": {"usa": ["ca"]}}}), encoding="utf-8")
    fence = Geofence.read(path)
    assert fence.source.name == "geofence.json" and len(fence.source.sha256) == 64
    mask = allowed_rows(matrix, fence, Region.parse("usa", "ca"))
    assert set(np.array(matrix.names)[~mask]) == {"lion", "panthera genus"}
    assert Region.parse(" ken ") == Region("KEN")


@pytest.mark.parametrize("country,admin1,message", [
    ("KE", None, "three letters"),
    ("K3N", None, "three letters"),
    (None, None, "--geofence needs --country"),
    (None, "CA", "--admin1 needs --country"),
])
def test_bad_region(country, admin1, message):
    with pytest.raises(OptionError, match=message):
        Region.parse(country, admin1)


@pytest.mark.parametrize("content,message", [
    ("{not json", "not a JSON geofence file"),
    ("[1, 2]", "expected a JSON object"),
    ('{"mammalia;carnivora;felidae": {"allow": {}}}', "not class;order;family;genus;species"),
    ('{"a;b;c;d;e": {"allow": ["KEN"]}}', "'allow' must map ISO3 country codes"),
    ('{"a;b;c;d;e": {"block": {"KEN": "CA"}}}', "'block' must map ISO3 country codes"),
    ('{"a;b;c;d;e": {"permit": {"KEN": []}}}', "expected"),
])
def test_malformed_geofence_files(tmp_path, content, message):
    path = tmp_path / "fence.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GeofenceError, match=message) as err:
        Geofence.read(path)
    assert "fence.json" in str(err.value) and isinstance(err.value, UserError)


def test_missing_or_unreadable_geofence(tmp_path):
    with pytest.raises(GeofenceError, match="not found; check the path"):
        Geofence.read(tmp_path / "absent.json")
    with pytest.raises(GeofenceError, match="not a file"):
        Geofence.read(tmp_path)
    (tmp_path / "latin1.json").write_bytes(b'{"\xe9": 1}')
    with pytest.raises(GeofenceError, match="not UTF-8"):
        Geofence.read(tmp_path / "latin1.json")


@pytest.mark.parametrize("country,admin1", [(None, "US-NY"), ("USA", "US-NY"), ("usa", "us-ny"), (None, "USA-NY")])
def test_admin1_as_an_iso_3166_2_code_names_the_country_too(matrix, country, admin1):
    assert Region.parse(country, admin1) == Region("USA", "NY")
    assert kept(matrix, GEOFENCE, country, admin1) == kept(matrix, GEOFENCE, "USA", "NY")
    assert Region.parse(None, "GB-ENG") == Region("GBR", "ENG")
    assert Region.parse("USA", "CA") == Region("USA", "CA")  # a plain code is the geofence's own, as before


def test_an_iso_3166_2_region_of_another_country_is_an_error_naming_both():
    with pytest.raises(OptionError, match=r"--admin1 US-CA is in USA .* but --country is KEN"):
        Region.parse("KEN", "US-CA")


def test_labels_subset_with_an_iso_3166_2_region(tmp_path, matrix, capsys):
    from bioclip_edge.cli import main
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    labels, fence = matrix.save(tmp_path / "taxa.npz"), tmp_path / "geofence.json"
    fence.write_text(json.dumps(GEOFENCE), encoding="utf-8")
    out = tmp_path / "ny.npz"
    assert main(["labels", "subset", str(labels), "--geofence", str(fence), "--admin1", "US-NY", "--out", str(out)]) == 0
    assert set(LabelMatrix.load(out).names) == kept(matrix, GEOFENCE, "USA", "NY")
    assert LabelMatrix.load(out).meta["place"][0]["geofence"]["admin1"] == "NY"
    assert main(["labels", "subset", str(labels), "--geofence", str(fence), "--country", "GBR", "--admin1", "US-NY",
                 "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert "US-NY is in USA" in err and "--country is GBR" in err and not (tmp_path / "x.npz").exists()
