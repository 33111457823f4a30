"""Folder and file names the sort makes: valid on every common file system, distinct where case does not count.

Each name is also created on this machine's file system, so a name the OS refuses fails here too."""

from __future__ import annotations

import unicodedata

import pytest

from bioclip_edge.runtime.sorting.names import MAX_BYTES, safe_file_name, safe_name
from bioclip_edge.runtime.sorting.plan import label_folders

WINDOWS_FORBIDDEN = set('<>:"/\\|?*')


@pytest.mark.parametrize("label, expected", [
    ("Panthera leo", "Panthera leo"),
    ("Canis lupus/familiaris", "Canis lupus_familiaris"),
    ("what?: <unknown>", "what__ _unknown_"),
    ("CON", "_CON"),
    ("nul.txt", "_nul.txt"),
    ("com1", "_com1"),
    ("Lpt9 ", "_Lpt9"),
    ("sp. ", "sp"),
    ("...", "_"),
    ("", "_"),
    ("tab\there", "tab_here"),
    ("console", "console"),  # only the exact device names are reserved
])
def test_safe_name(tmp_path, label, expected):
    name = safe_name(label)
    assert name == expected
    assert not WINDOWS_FORBIDDEN & set(name) and not name.endswith((".", " "))
    (tmp_path / name).mkdir()


def test_long_and_decomposed_names(tmp_path):
    long = safe_name("é" * 300)
    assert len(long.encode("utf-8")) <= MAX_BYTES
    decomposed = unicodedata.normalize("NFD", "Léopard")
    assert safe_name(decomposed) == unicodedata.normalize("NFC", "Léopard")
    (tmp_path / long).mkdir()
    assert safe_file_name("IMG:0001.JPG") == "IMG_0001.JPG"
    assert safe_file_name("aux.jpg") == "_aux.jpg"


def test_label_folders_are_distinct_ignoring_case_and_keep_the_sorts_own():
    folders = label_folders(["lion", "Lion", "a/b", "a_b", "unsure", "Failed", "blank", "Blank"])
    assert folders["blank"] == folders["Blank"] == "blank"
    assert folders["unsure"] == "unsure (label)" and folders["Failed"] == "Failed (label)"
    named = [folders[label] for label in ("lion", "Lion", "a/b", "a_b", "unsure", "Failed")]
    assert len({n.casefold() for n in named}) == len(named)
    assert {folders["Lion"], folders["lion"]} == {"Lion", "lion__2"}
