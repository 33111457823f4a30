"""Images a person has labelled: a folder with one subfolder per label, or a ``filepath,label`` CSV.

One reader for every command that takes labels (``labels adapt --examples``, ``evaluate
--truth``), so the same tree means the same labels everywhere:

* A folder: each subfolder directly below it is a label, and every image or video anywhere below
  that subfolder is labelled with it. Deeper folders are groups (``train/lion/cam2/IMG_1.JPG``
  is a lion from group ``cam2``): a camera or a burst, which cross-validation never splits.
  Files directly in the folder have no label; they are returned apart.
* A CSV: a header with ``filepath`` and ``label`` (any letter case; an optional ``group``,
  ``sequence`` or ``camera`` column); relative paths start from the CSV's folder. A file listed
  twice with two labels is refused. When the caller reads boxes (``labels adapt``), an optional box
  makes the row a crop: four columns ``bbox_x,bbox_y,bbox_w,bbox_h`` or one ``bbox`` column
  ``"x,y,w,h"``, MegaDetector's normalised top-left ``[x, y, width, height]`` (0-1). One frame may
  then be listed once per box, each with its own label.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from bioclip_edge.runtime.images.discover import discover, is_image_name

GROUP_COLUMNS = ("group", "sequence", "camera")
BOX_COLUMNS = ("bbox_x", "bbox_y", "bbox_w", "bbox_h")
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class LabelledFile:
    path: Path
    label: str
    name: str  # how messages name it: relative to the folder, or as the CSV writes it
    group: str  # the folder below the label's (or the CSV's group column); else the file itself
    bbox: Box | None = None  # a CSV row's normalised [x, y, w, h] box (only when the caller reads boxes)


@dataclass(frozen=True)
class Labelled:
    files: list[LabelledFile]
    unlabelled: list[Path] = field(default_factory=list)  # files directly in the folder


def read_labelled(source: str | os.PathLike, option: str, error: type[Exception], boxes: bool = False) -> Labelled:
    """The labelled files of ``source``; ``error`` (a UserError) names ``option`` and the fix. With
    ``boxes``, a CSV's box columns are read (see the module docstring); else they are ignored."""
    source = Path(source)
    if source.is_dir():
        labelled = _read_folder(source)
    elif source.is_file():
        labelled = Labelled(_read_csv(source, option, error, boxes))
    else:
        raise error(f"{option} {source}: no such file or folder; {what_to_give(option)}")
    if not labelled.files:
        raise error(f"{option} {source}: holds no labelled image; {what_to_give(option)}")
    return labelled


def what_to_give(option: str) -> str:
    return (f"give {option} a folder with one subfolder of images per label (<folder>/<label>/<image>) "
            "or a CSV with filepath,label columns")


def _read_folder(root: Path) -> Labelled:
    files: list[LabelledFile] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for item in discover([folder]):
            rel = Path(item.path).relative_to(root)
            group = "/".join(rel.parts[1:-1]) or rel.as_posix()
            files.append(LabelledFile(Path(item.path), folder.name, rel.as_posix(), group))
    unlabelled = sorted(p for p in root.iterdir() if p.is_file() and is_image_name(p.name))
    return Labelled(files, unlabelled)


def _read_csv(path: Path, option: str, error: type[Exception], boxes: bool = False) -> list[LabelledFile]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise error(f"{option} {path}: cannot read it as a CSV ({exc}); {what_to_give(option)}") from None
    if "filepath" not in header or "label" not in header:
        raise error(f"{option} {path}: the header has no 'filepath' and 'label' columns (it has: "
                    f"{', '.join(header) or 'none'}); {what_to_give(option)}")
    fi, li = header.index("filepath"), header.index("label")
    gi = [header.index(c) for c in GROUP_COLUMNS if c in header]
    read_box = _box_reader(header, path, option, error) if boxes else (lambda row, number: None)
    files: dict[tuple[str, Box | None], LabelledFile] = {}
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(fi, li) or not row[fi].strip() or not row[li].strip():
            raise error(f"{option} {path}: line {number} has no filepath or no label; every row needs both")
        name, label = row[fi].strip(), row[li].strip()
        full = os.path.normpath(os.path.join(path.parent, name))
        key = (full, read_box(row, number))
        if key in files and files[key].label != label:
            raise error(f"{option} {path}: line {number}: {name} is labelled both {files[key].label!r} and "
                        f"{label!r}; keep one label per file{' and box' if key[1] else ''}")
        group = next((row[i].strip() for i in gi if i < len(row) and row[i].strip()), name)
        files[key] = LabelledFile(Path(full), label, name, group, key[1])
    return list(files.values())


def _box_reader(header: list[str], path: Path, option: str, error: type[Exception]):
    """A function (row, line number) -> the row's box or None, for the CSV's box columns (if any)."""
    if all(c in header for c in BOX_COLUMNS):
        columns = [header.index(c) for c in BOX_COLUMNS]
        cells = lambda row: [row[i] if i < len(row) else "" for i in columns]  # noqa: E731
    elif "bbox" in header:
        column = header.index("bbox")
        cells = lambda row: (row[column] if column < len(row) else "").split(",")  # noqa: E731
    else:
        return lambda row, number: None

    def read(row: list[str], number: int) -> Box | None:
        values = [v.strip().strip("[]").strip() for v in cells(row)]
        if not any(values):
            return None  # a row without a box: the whole frame
        try:
            box = tuple(float(v) for v in values)
        except ValueError:
            box = ()
        if len(box) != 4 or not all(0.0 <= v <= 1.0 for v in box) or box[2] <= 0 or box[3] <= 0:
            raise error(f"{option} {path}: line {number}: the box {','.join(values)!r} is not x,y,w,h with each "
                        "value a fraction 0-1 of the frame (MegaDetector's normalised top-left box) and w, h > 0")
        return box  # type: ignore[return-value]
    return read
