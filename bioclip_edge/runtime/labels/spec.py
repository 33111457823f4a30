"""What ``--labels`` means: a label-matrix file, a text file of labels, or labels inline.

* ``kenya.npz``: a label matrix written by ``bioclip-edge labels build`` or ``labels import``
  (checked against the bundle before any image is read). A matrix is recognised by its content
  (the zip signature ``PK\x03\x04``), not its name, so ``--out tol-labels`` without a suffix
  works too; a ``.npz`` name that is not a matrix is reported as a broken matrix;
* ``labels.txt``: one label per line (blank lines and ``#`` comments skipped);
* ``"lion,leopard,spotted hyena"``: comma-separated labels.

Text labels are embedded with the bundle's text tower and cached on disk by content hash
(``LabelMatrix.from_texts``), so the second run over a card starts at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from bioclip_edge.errors import UserError

MATRIX_SUFFIXES = (".npz",)
TEXT_SUFFIXES = (".txt", ".csv", ".lst", ".list")


class LabelSpecError(UserError, ValueError):
    """A ``--labels`` value that cannot be turned into labels."""


def parse_label_text(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def resolve_labels(bundle: Any, spec: Any, recipe: str = "plain", cache_dir: str | os.PathLike | None = None) -> Any:
    """A LabelMatrix checked against ``bundle`` from a matrix, a path, a list of texts or a string."""
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    if isinstance(spec, LabelMatrix):
        matrix = spec
    elif isinstance(spec, (list, tuple)):
        matrix = _from_texts(bundle, [str(s).strip() for s in spec], recipe, cache_dir, "the label list")
    else:
        matrix = _from_string(bundle, spec, recipe, cache_dir)
    matrix.check_bundle(bundle)
    return matrix


def _from_string(bundle: Any, spec: str | os.PathLike, recipe: str, cache_dir: Any) -> Any:
    from bioclip_edge.runtime.labels.store import is_label_file
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    text = os.fspath(spec)
    path = Path(text)
    suffix = path.suffix.lower()
    if is_label_file(path):  # by content: whatever the file is called
        return LabelMatrix.load(path)
    if suffix in MATRIX_SUFFIXES:
        if not _is_file(path):
            raise LabelSpecError(f"{path}: no such label matrix file; build one with 'bioclip-edge labels build'")
        return LabelMatrix.load(path)  # not a zip: load says what is wrong with it
    if _is_file(path):
        return _from_texts(bundle, _read_label_list(path), recipe, cache_dir, str(path))
    if suffix in TEXT_SUFFIXES and "," not in text:
        raise LabelSpecError(f"{path}: no such label file; give a .npz matrix, a text file with one label per line, or \"a,b,c\"")
    return _from_texts(bundle, [part.strip() for part in text.split(",")], recipe, cache_dir, "--labels")


def _is_file(path: Path) -> bool:
    """Whether ``path`` names a file; an inline label list longer than a file name can be (255 bytes
    on most file systems) is not one, where ``Path.is_file`` would raise "File name too long"."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _read_label_list(path: Path) -> list[str]:
    try:
        return parse_label_text(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as exc:
        raise LabelSpecError(
            f"{path}: cannot read labels ({exc}); give a label matrix written by 'bioclip-edge labels build' "
            "or a UTF-8 text file, one label per line"
        ) from None


def _from_texts(bundle: Any, labels: Sequence[str], recipe: str, cache_dir: Any, where: str) -> Any:
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    labels = [label for label in labels if label]
    if len(labels) < 2:
        raise LabelSpecError(f"{where}: needs at least two labels to choose between (got {len(labels)}); e.g. --labels \"lion,leopard,empty savanna\"")
    dupes = sorted({label for label in labels if labels.count(label) > 1})
    if dupes:
        raise LabelSpecError(f"{where}: label(s) {dupes} appear more than once; each label must be unique")
    return LabelMatrix.from_texts(bundle, labels, recipe=recipe, cache_dir=cache_dir)
