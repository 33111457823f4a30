"""The sort tests' classify outputs, made once per session (``tests.helpers.sort_runs``)."""

from __future__ import annotations

import pytest

from tests.helpers.sort_runs import SortRuns, make_sort_runs


@pytest.fixture(scope="session")
def sort_runs(trained_fp32_bundle, photo_dir, tmp_path_factory) -> SortRuns:
    return make_sort_runs(trained_fp32_bundle, photo_dir, tmp_path_factory.mktemp("sort-runs"))
