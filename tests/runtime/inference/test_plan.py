"""The engine plan (runtime.inference.plan): made once, plain JSON, opened only by the session factory.

Machines are simulated by passing OpenVINO's capabilities to ``make_plan`` (no monkeypatching:
the plan maker must not read the machine when it is told what the machine is).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from bioclip_edge.runtime import Bundle
from bioclip_edge.runtime.inference import backends, selection
from bioclip_edge.runtime.inference.bundle import BundleError
from bioclip_edge.runtime.inference.plan import InferencePlan, SessionOptions
from bioclip_edge.runtime.inference.selection import make_plan, plan_file, select_vision
from bioclip_edge.runtime.inference.session import open_session

AMX = ("FP32", "BF16", "FP16", "INT8", "BIN", "EXPORT_IMPORT", "AMX")  # what OpenVINO reports on a Xeon with AMX, plus our AMX marker
VNNI_ONLY = ("FP32", "INT8", "BIN", "EXPORT_IMPORT")
BF16_NO_AMX = ("FP32", "BF16", "INT8", "BIN", "EXPORT_IMPORT")  # AVX-512 BF16 + VNNI without AMX (an AMD EPYC)
AUTO = SessionOptions(backend="auto")


def _edited(bundle: Bundle, name: str, preset: str) -> Bundle:
    variants = tuple(dataclasses.replace(v, quantization={**(v.quantization or {}), "preset": preset})
                     if v.name == name else v for v in bundle.manifest.variants)
    return dataclasses.replace(bundle, manifest=dataclasses.replace(bundle.manifest, variants=variants))


@pytest.fixture()
def bundle(tiny_bundle: Path) -> Bundle:
    return Bundle.open(tiny_bundle)


@pytest.fixture()
def no_machine_reads(monkeypatch):
    def refuse():
        raise AssertionError("the plan maker read the machine although it was given its capabilities")

    monkeypatch.setattr(backends, "openvino_capabilities", refuse)


@pytest.mark.parametrize("caps,preset,variant,backend,compute", [
    (AMX, "performance", "vision.int8-nncf", "openvino", "int8-ov"),
    (AMX, "transformer", "vision.fp32", "openvino", "bf16"),
    (VNNI_ONLY, "performance", "vision.int8-nncf", "openvino", "int8-ov"),
    (VNNI_ONLY, "transformer", "vision.int8-nncf", "openvino", "int8-ov"),
    (BF16_NO_AMX, "transformer", "vision.int8-nncf", "openvino", "int8-ov"),
    ((), "performance", "vision.int8", "onnxruntime", "int8"),
])
def test_machine_simulations_pick_as_selection_does(bundle, no_machine_reads, caps, preset, variant, backend, compute):
    if "vision.int8-nncf" not in {v.name for v in bundle.manifest.variants}:
        pytest.skip("the test bundle has no NNCF variant (nncf not installed)")
    edited = _edited(bundle, "vision.int8-nncf", preset)
    plan = make_plan(edited, "vision", "auto", AUTO, caps=caps)
    chosen = select_vision(edited, caps=caps)
    assert (plan.variant, plan.backend, plan.compute) == (variant, backend, compute)
    assert (chosen.variant.name, chosen.backend, chosen.reason) == (plan.variant, plan.backend, plan.reason)
    assert plan.sha256 == edited.variant("vision", name=variant).sha256


def test_plan_round_trips_through_json(bundle):
    plan = dataclasses.replace(make_plan(bundle, "vision", "fp32", SessionOptions(model_threads=2), caps=()),
                               static_shape=(4, 3, 224, 224))
    back = InferencePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert back == plan and isinstance(back.static_shape, tuple) and isinstance(back.providers, tuple)
    text = make_plan(bundle, "text", options=SessionOptions(), caps=())
    assert InferencePlan.from_dict(json.loads(json.dumps(text.to_dict()))) == text
    assert (text.variant, text.backend, text.compute) == ("text.fp32", "onnxruntime", "fp32")


def test_a_plan_sent_elsewhere_opens_the_same_session(bundle, tiny_bundle):
    """What a worker process does: plan JSON + the bundle folder -> the same graph, the same outputs."""
    plan = make_plan(bundle, "vision", "fp32", SessionOptions(backend="onnxruntime"), caps=())
    x = np.random.default_rng(0).standard_normal((2, 3, *bundle.manifest.preprocess.image_size)).astype(np.float32)
    here = open_session(plan, bundle).run(None, {plan.input_name: x})[0]
    shipped = InferencePlan.from_dict(json.loads(json.dumps(plan.to_dict())))
    there = open_session(shipped, Bundle.open(tiny_bundle, defer_hashing=True)).run(None, {shipped.input_name: x})[0]
    np.testing.assert_array_equal(here, there)


def test_the_factory_refuses_a_variant_whose_hash_is_wrong(bundle, tiny_bundle, tmp_path):
    plan = make_plan(bundle, "vision", "fp32", SessionOptions(backend="onnxruntime"), caps=())
    with pytest.raises(BundleError, match="make the plan from this bundle"):
        open_session(dataclasses.replace(plan, sha256="0" * 64), bundle)  # a plan for another export
    copy = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, copy)
    graph = copy / plan.file
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the hash can tell
    graph.write_bytes(bytes(data))
    with pytest.raises(BundleError, match="sha256"):
        open_session(plan, Bundle.open(copy, defer_hashing=True, reuse_verified=False))
    loose = plan_file(graph, SessionOptions(), sha256=plan.sha256)
    with pytest.raises(BundleError, match="sha256"):
        open_session(loose)


def test_the_embedder_plans_once(bundle, monkeypatch):
    from bioclip_edge.runtime.images.embedder import ImageEmbedder

    calls = []
    real = backends.choose_backend
    monkeypatch.setattr(backends, "choose_backend", lambda *a, **k: calls.append(a) or real(*a, **k))
    plans = []
    real_plan = selection.make_plan
    monkeypatch.setattr("bioclip_edge.runtime.images.embedder.make_plan",
                        lambda *a, **k: plans.append(a) or real_plan(*a, **k))
    embedder = ImageEmbedder(bundle, "fp32")
    assert len(plans) == 1 and len(calls) == 1  # the backend is resolved once, not again by the factory
    assert embedder.plan.variant == embedder.variant.name == "vision.fp32"
    assert embedder.plan.reason == embedder.plan.reason


def test_the_scoring_engine_is_chosen_once_per_matrix(monkeypatch):
    from bioclip_edge.runtime.labels import openvino_scoring
    from bioclip_edge.runtime.labels.matrix import LabelMatrix

    rng = np.random.default_rng(0)
    emb = rng.standard_normal((20, 16)).astype(np.float32)
    info = {"model_id": "t", "architecture": "t", "embed_dim": 16, "logit_scale": 100.0, "logit_bias": None,
            "random_weights": True, "seed": 0}
    m = LabelMatrix.from_embeddings(emb / np.linalg.norm(emb, axis=1, keepdims=True), [f"l{i}" for i in range(20)],
                                    info, "plain")
    calls = []
    real = openvino_scoring.choose_scorer
    monkeypatch.setattr(openvino_scoring, "choose_scorer", lambda *a, **k: calls.append(a) or real(*a, **k))
    for _ in range(3):  # three batches of one run
        m.topk(emb[:2], 3)
    assert len(calls) == 1 and m.summary()["scorer"].startswith(m.scorer.label)
    choice = m.scorer
    assert openvino_scoring.ScorerChoice.from_dict(json.loads(json.dumps(choice.to_dict()))) == choice


def test_profiling_labels_map_onto_plans(bundle, monkeypatch):
    from bioclip_edge.profiling.runners import profile_plan

    monkeypatch.setattr(backends, "openvino_capabilities", lambda: AMX)
    assert "through OpenVINO" in profile_plan(bundle, "ort", "vision", "bf16")
    bf16 = profile_plan(bundle, "openvino", "vision", "bf16")
    assert (bf16.variant, bf16.backend, bf16.compute) == ("vision.fp32", "openvino", "bf16")
    exact = profile_plan(bundle, "openvino", "vision", "fp32")
    assert (exact.backend, exact.compute) == ("openvino-f32", "fp32")
    ort = profile_plan(bundle, "ort", "vision", "int8", threads=2)
    assert (ort.variant, ort.backend, ort.compute, ort.model_threads) == ("vision.int8", "onnxruntime", "int8", 2)
