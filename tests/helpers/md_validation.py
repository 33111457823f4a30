"""MegaDetector's own validator as a test helper.

Every MegaDetector-format document the tool writes is checked with
``megadetector.postprocessing.validate_batch_results`` (the validator MegaDetector's docs point
to), not with a copy of its rules: when MegaDetector tightens the format, these tests notice.
The validator stops at its first error and reports it as a string; the helper turns errors and
warnings (non-standard top-level keys, a failure without ``detections: null``) into one
AssertionError that quotes them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from PIL import ImageFile


def _import_validator():
    """MegaDetector's validator, imported without its side effect on Pillow.

    Importing it pulls in ``megadetector.visualization.visualization_utils``, which sets
    ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True`` for the whole process; truncated JPEGs would
    then decode (grey at the bottom) in every later test instead of failing as they must.
    """
    before = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        from megadetector.postprocessing import validate_batch_results as module
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
    return module.ValidateBatchResultsOptions, module.validate_batch_results


ValidateBatchResultsOptions, validate_batch_results = _import_validator()


def md_problems(doc_or_path: dict[str, Any] | str | os.PathLike) -> list[str]:
    """The validator's errors and warnings for a document or a file (empty: valid)."""
    options = ValidateBatchResultsOptions()
    options.raise_errors = False  # report, so a test can name what failed
    options.return_data = False  # return_data would add a key to the caller's dict
    target = doc_or_path if isinstance(doc_or_path, dict) else str(doc_or_path)
    results = validate_batch_results(target, options)["validation_results"]
    return [f"error: {e}" for e in results["errors"]] + [f"warning: {w}" for w in results["warnings"]]


def assert_md_valid(doc_or_path: dict[str, Any] | str | os.PathLike) -> dict[str, Any]:
    """Raise AssertionError unless MegaDetector's validator finds nothing; returns the document."""
    problems = md_problems(doc_or_path)
    assert not problems, f"MegaDetector's validator rejects {_name(doc_or_path)}: {problems}"
    if isinstance(doc_or_path, dict):
        return doc_or_path
    return json.loads(Path(doc_or_path).read_text(encoding="utf-8"))


def _name(doc_or_path: Any) -> str:
    return "the document" if isinstance(doc_or_path, dict) else str(doc_or_path)
