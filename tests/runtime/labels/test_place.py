"""The Python entry point of place subsets: filters combined, provenance, option errors."""

from __future__ import annotations

import numpy as np
import pytest

from bioclip_edge.errors import OptionError
from bioclip_edge.runtime.labels.checklist import Checklist, ChecklistError
from bioclip_edge.runtime.labels.geofence import Geofence, GeofenceError, Region
from bioclip_edge.runtime.labels.matrix import LabelMatrix
from bioclip_edge.runtime.labels.place import describe, save_place, select_place
from tests.helpers.labels import INFO, unit
from tests.helpers.place import GEOFENCE, place_matrix


def test_every_filter_must_keep_a_row(tmp_path):
    matrix = place_matrix()
    fence, checklist = Geofence.from_dict(GEOFENCE), Checklist.from_names(["Panthera leo", "Ursus arctos", "Okapia johnstoni"])
    both = select_place(matrix, geofence=fence, region=Region.parse("GBR"), checklist=checklist)
    names = [matrix.names[i] for i in both.rows]
    # the checklist keeps the lion and the brown bear with their taxa; GBR drops the lion, Panthera,
    # the cat family and the bear family (blocked), and keeps the brown bear (no key of its own)
    assert names == ["carnivorous mammal", "mammal", "brown bear", "ursus species", "animal"]
    assert (both.kept, both.dropped, both.unmatched) == (5, 13, ("Okapia johnstoni",))
    assert both.provenance["geofence"] == {"file": None, "sha256": None, "country": "GBR", "admin1": None, "allowed": 14}
    birds = select_place(matrix, checklist=Checklist.from_names(["Corvus corax"]), where=["class=Aves"])
    assert [matrix.names[i] for i in birds.rows] == ["common raven", "bird"]
    out = save_place(matrix, birds, tmp_path / "birds.npz", dtype="int8")
    saved = LabelMatrix.load(out)
    assert saved.dtype == "int8" and describe(saved.meta["place"][0]).endswith(": 2 of 18 labels")


def test_option_errors():
    matrix, fence = place_matrix(), Geofence.from_dict(GEOFENCE)
    with pytest.raises(OptionError, match="nothing to select by"):
        select_place(matrix)
    with pytest.raises(OptionError, match="needs a region"):
        select_place(matrix, geofence=fence)
    with pytest.raises(OptionError, match="pass --geofence FILE too"):
        select_place(matrix, region=Region("KEN"), checklist=Checklist.from_names(["Panthera leo"]))


@pytest.mark.parametrize("filters,error", [
    ({"geofence": Geofence.from_dict(GEOFENCE), "region": Region("KEN")}, GeofenceError),
    ({"checklist": Checklist.from_names(["Panthera leo"])}, ChecklistError),
])
def test_matrix_without_taxonomy_is_refused(filters, error):
    plain = LabelMatrix.from_embeddings(unit(np.ones((2, INFO["embed_dim"]))), ["lion", "puma"], INFO, "plain")
    with pytest.raises(error, match="no taxonomy columns, .*; build it from a taxonomy CSV"):
        select_place(plain, **filters)
