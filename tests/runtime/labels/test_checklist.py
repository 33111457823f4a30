"""Checklists on a label matrix: GBIF downloads and name lists, authorship, higher ranks, bad files."""

from __future__ import annotations

import pytest

from bioclip_edge.errors import UserError
from bioclip_edge.runtime.labels.checklist import Checklist, ChecklistError, canonical_name, listed_rows
from tests.helpers.place import place_matrix

GBIF_COLUMNS = ("taxonKey\tscientificName\tacceptedTaxonKey\tacceptedScientificName\tnumberOfOccurrences\ttaxonRank\t"
                "taxonomicStatus\tkingdom\tphylum\tclass\torder\tfamily\tgenus\tspecies\tiucnRedListCategory")
# a GBIF species-list download (tab-separated, whatever its suffix), authorship in scientificName
GBIF_TSV = "\n".join([
    GBIF_COLUMNS,
    "5219404\tPanthera leo (Linnaeus, 1758)\t5219404\tPanthera leo (Linnaeus, 1758)\t812\tSPECIES\tACCEPTED\t"
    "Animalia\tChordata\tMammalia\tCarnivora\tFelidae\tPanthera\tPanthera leo\tVU",
    "5219187\tCrocuta crocuta (Erxleben, 1777)\t5219187\tCrocuta crocuta (Erxleben, 1777)\t402\tSPECIES\tACCEPTED\t"
    "Animalia\tChordata\tMammalia\tCarnivora\tHyaenidae\tCrocuta\tCrocuta crocuta\tLC",
    "6164622\tCanis lupus dingo Meyer, 1793\t6164622\tCanis lupus dingo Meyer, 1793\t3\tSUBSPECIES\tACCEPTED\t"
    "Animalia\tChordata\tMammalia\tCarnivora\tCanidae\tCanis\tCanis lupus\t",
    "2435350\tLoxodonta africana (Blumenbach, 1797)\t2435350\tLoxodonta africana (Blumenbach, 1797)\t95\tSPECIES\t"
    "ACCEPTED\tAnimalia\tChordata\tMammalia\tProboscidea\tElephantidae\tLoxodonta\tLoxodonta africana\tEN",
    "2433406\tUrsidae Fischer de Waldheim, 1817\t2433406\tUrsidae Fischer de Waldheim, 1817\t1\tFAMILY\tACCEPTED\t"
    "Animalia\tChordata\tMammalia\tCarnivora\tUrsidae\t\t\t",
]) + "\n"


@pytest.fixture(scope="module")
def matrix():
    return place_matrix()


def kept(matrix, checklist) -> tuple[set[str], tuple[str, ...]]:
    match = listed_rows(matrix, checklist)
    return {name for name, keep in zip(matrix.names, match.keep) if keep}, match.unmatched


@pytest.mark.parametrize("name,canonical", [
    ("Panthera leo (Linnaeus, 1758)", "Panthera leo"),
    ("Canis lupus dingo Meyer, 1793", "Canis lupus dingo"),
    ("Ursus arctos subsp. horribilis Ord, 1815", "Ursus arctos horribilis"),
    ("Felidae Fischer de Waldheim, 1817", "Felidae"),
    ("Vulpes vulpes L.", "Vulpes vulpes"),
    ("  Crocuta crocuta  ", "Crocuta crocuta"),
    ("Canis x Vulpes", "Canis"),
])
def test_canonical_name(name, canonical):
    assert canonical_name(name) == canonical


def test_gbif_download_keeps_species_and_the_taxa_containing_them(tmp_path, matrix):
    path = tmp_path / "0012345-gbif.csv"  # GBIF names its tab-separated downloads .csv
    path.write_text(GBIF_TSV, encoding="utf-8")
    checklist = Checklist.read(path)
    assert checklist.source.name == path.name and len(checklist.source.sha256) == 64
    names, unmatched = kept(matrix, checklist)
    assert names == {
        "lion", "panthera genus", "cat family",  # Panthera leo and its genus and family
        "spotted hyena", "hyena family",
        "dog",  # Canis lupus familiaris: the subspecies' row lists Canis lupus
        "bear family",  # a listed family keeps its own row, not its species
        "carnivorous mammal", "mammal", "animal",  # ranks of listed species (GBIF's columns)
    }
    assert unmatched == ("Loxodonta africana",)


def test_text_list_with_authorship_comments_and_epithet_columns(tmp_path, matrix):
    path = tmp_path / "names.txt"
    path.write_text("# Kenya, camera grid A\nPanthera leo (Linnaeus, 1758)\n\nursus maritimus\nCorvus corax L.\n"
                    "Panthera leo\nGiraffa camelopardalis\n", encoding="utf-8")
    names, unmatched = kept(matrix, Checklist.read(path))
    # polar bear and raven are stored as epithets (TreeOfLife's layout): matched through their genus
    assert names == {"lion", "panthera genus", "cat family", "polar bear", "ursus species", "bear family",
                     "carnivorous mammal", "mammal", "animal", "common raven", "bird"}
    assert unmatched == ("Giraffa camelopardalis",)  # Panthera leo listed twice counts once


def test_csv_with_a_species_column_only(tmp_path, matrix):
    path = tmp_path / "list.csv"
    path.write_text("species,count\nPuma concolor,3\nFelis margarita,1\n", encoding="utf-8")
    names, unmatched = kept(matrix, Checklist.read(path))
    assert names == {"puma", "sand cat", "cat family", "carnivorous mammal", "mammal", "animal"}
    assert unmatched == ()


def test_from_names_and_a_listed_genus(matrix):
    names, unmatched = kept(matrix, Checklist.from_names(["Ursus", "Felis margarita Loche, 1858", "Aves"]))
    assert names == {"ursus species", "sand cat", "cat family", "carnivorous mammal", "mammal", "animal", "bird"}
    assert unmatched == ()


@pytest.mark.parametrize("name,content,message", [
    ("list.csv", "taxon,count\nPanthera leo,1\n", "no scientificName or species column"),
    ("list.tsv", "scientificName\ttaxonRank\nPanthera leo\tSPECIES\tx\ty\n", "line 2 has 4 fields"),
    ("list.txt", "# nothing yet\n\n", "lists no names"),
])
def test_malformed_checklists(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ChecklistError, match=message) as err:
        Checklist.read(path)
    assert name in str(err.value) and isinstance(err.value, UserError)
