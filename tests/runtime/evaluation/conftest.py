"""The evaluation tests' classify outputs, made once per session (``tests.helpers.evaluation_runs``)."""

from __future__ import annotations

import pytest

from tests.helpers.evaluation_runs import EvalRuns, make_eval_runs


@pytest.fixture(scope="session")
def eval_runs(trained_fp32_bundle, tmp_path_factory) -> EvalRuns:
    return make_eval_runs(trained_fp32_bundle, tmp_path_factory.mktemp("evaluation"))
