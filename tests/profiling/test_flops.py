"""FLOP and parameter counts: hand-derived formulas, the published BioCLIP figures, ONNX graphs.

Everything here is shapes-only (meta device or analytic) except the ONNX counts, which read the
graphs of the session's tiny bundle, so the file runs in seconds.
"""

from __future__ import annotations

import pytest

from bioclip_edge.profiling import flops as F
from bioclip_edge.profiling.flops_analytic import NotAnalytic, text_flops, vision_flops
from tests.helpers.models import TINY_VIT_CFG

torch = pytest.importorskip("torch")
open_clip = pytest.importorskip("open_clip")

TINY_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def vit_b16_by_hand():
    """ViT-B/16 at 224 px and its 77-token text tower, multiply-adds written out in full.

    Vision: 14x14 = 196 patches + 1 class token = 197 tokens, width 768, 12 layers, MLP 3072.
      patch conv:        196 * (3*16*16) * 768
      per layer weights: 197 * (768*768*3 [qkv] + 768*768 [out] + 768*3072 [fc1] + 3072*768 [fc2])
      per layer attn:    197*197*768 [Q K^T] + 197*197*768 [A V]
      projection:        768 * 512 (pooled class token only)
    Text: 77 tokens, width 512, 12 layers, MLP 2048, projection 512*512 on the end-of-text token.
    """
    v_weights = 196 * (3 * 16 * 16) * 768 + 12 * 197 * (768 * 768 * 3 + 768 * 768 + 768 * 3072 + 3072 * 768) + 768 * 512
    v_attn = 12 * (197 * 197 * 768 + 197 * 197 * 768)
    t_weights = 12 * 77 * (512 * 512 * 3 + 512 * 512 + 512 * 2048 + 2048 * 512) + 512 * 512
    t_attn = 12 * (77 * 77 * 512 * 2)
    return {"v_weights": 2 * v_weights, "v_attn": 2 * v_attn, "t_weights": 2 * t_weights, "t_attn": 2 * t_attn}


@pytest.fixture(scope="module")
def counted():
    return {name: F.count_model(name) for name in ("ViT-B-16", "ViT-L-14", "ViT-H-14")}


def test_vit_b16_traced_count_equals_hand_derived(counted):
    hand = vit_b16_by_hand()
    mf = counted["ViT-B-16"]
    assert mf.method == "torch-meta"
    assert mf.vision.matmul_only == hand["v_weights"]  # 33,696,481,280
    assert mf.vision.attention_flops == hand["v_attn"]
    assert mf.text.matmul_only == hand["t_weights"]
    assert mf.text.attention_flops == hand["t_attn"]
    assert mf.vision.tokens == 197 and mf.text.tokens == 77
    # and the numbers themselves, so a formula slip in both places cannot pass unnoticed
    assert round(mf.vision.matmul_only / 1e9, 2) == 33.70
    assert round(mf.vision.with_attention / 1e9, 2) == 35.13


def test_vit_b16_analytic_count_equals_hand_derived():
    hand = vit_b16_by_hand()
    cfg = open_clip.get_model_config("ViT-B-16")
    v, t = vision_flops(cfg), text_flops(cfg)
    assert (v.weight_flops, v.attention_flops) == (hand["v_weights"], hand["v_attn"])
    assert (t.weight_flops, t.attention_flops) == (hand["t_weights"], hand["t_attn"])


def test_parameter_counts_per_tower(counted):
    b16 = counted["ViT-B-16"]
    assert b16.vision.params == 86_192_640
    assert b16.text.params == 63_428_096
    # the spec page: 150M / 428M / 986M parameters in all
    for name, published in (("ViT-B-16", 150), ("ViT-L-14", 428), ("ViT-H-14", 986)):
        total = (counted[name].vision.params + counted[name].text.params) / 1e6
        assert abs(total / published - 1) < 0.01, (name, total)


@pytest.mark.parametrize("name,image,label", [("ViT-B-16", 34, 6), ("ViT-L-14", 155, 13), ("ViT-H-14", 325, 47)])
def test_seed_figures_reproduced_by_matmul_only_convention(counted, name, image, label):
    mf = counted[name]
    # The spec page's per-image figures are the weights-only convention, within 1%:
    assert abs(mf.vision.matmul_only / 1e9 / image - 1) < 0.01
    # per label, every figure is within 3% in at least one convention, and the
    # matmul-only count rounds to the page's whole number (B/16: 5.81 -> "6").
    label_diffs = [abs(mf.text.flops(c) / 1e9 / label - 1) for c in F.CONVENTIONS]
    assert min(label_diffs) <= F.PUBLISHED_TOLERANCE
    assert round(mf.text.matmul_only / 1e9) == label
    assert F.SEED_CONVENTION == "matmul_only"


def test_with_attention_convention_is_not_the_seed_one(counted):
    # Counting attention products makes B/16 and L/14 images 3.3% and 4.5% high: the page did not.
    for name, image in (("ViT-B-16", 34), ("ViT-L-14", 155)):
        assert counted[name].vision.with_attention / 1e9 / image - 1 > F.PUBLISHED_TOLERANCE


def test_compare_published_rows(counted):
    rows = F.compare_published(counted["ViT-L-14"])
    by_q = {r["quantity"]: r for r in rows}
    img = by_q["GFLOPs/image"]
    assert img["model"] == "bioclip-2" and img["published"] == 155
    assert img["matmul_only_within_tolerance"] and not img["with_attention_within_tolerance"]
    assert abs(by_q["params (M)"]["diff_pct"]) < 1
    assert F.compare_published(F.count_from_config("tiny", TINY_CFG)) == []


def test_trimmed_label_count(counted):
    mf = counted["ViT-B-16"]
    trimmed = mf.text_trimmed
    assert trimmed is not None and trimmed.tokens == F.DEFAULT_TRIMMED_LENGTH
    n = trimmed.tokens
    by_hand = 2 * (12 * n * (4 * 512 * 512 + 2 * 512 * 2048) + 512 * 512)
    assert trimmed.matmul_only == by_hand
    assert trimmed.attention_flops == 2 * 12 * 2 * n * n * 512
    assert mf.text.with_attention / trimmed.with_attention > 2.3  # 77 vs 32 tokens
    row = mf.row()
    assert row[f"label_{n}tok_gflops_matmul_only"] == round(by_hand / 1e9, 3)


def test_analytic_matches_traced_for_all_seed_models(counted):
    for name, mf in counted.items():
        a = F.count_from_config(name, open_clip.get_model_config(name))
        for got, want in ((a.vision, mf.vision), (a.text, mf.text), (a.text_trimmed, mf.text_trimmed)):
            assert (got.weight_flops, got.attention_flops) == (want.weight_flops, want.attention_flops), name


def test_analytic_refuses_non_vit_configs():
    with pytest.raises(NotAnalytic):
        vision_flops(open_clip.get_model_config("RN50"))
    with pytest.raises(F.FlopsError, match="torch and open_clip"):
        F.count_from_config("siglip", open_clip.get_model_config("ViT-SO400M-14-SigLIP"))


def test_registry_names_resolve_and_unknown_names_fail():
    assert F.count_model("bioclip", trimmed_length=None).architecture == "ViT-B-16"
    with pytest.raises(F.FlopsError, match="open_clip"):
        F.count_model("ViT-Nonexistent-99")


def test_fused_attention_trap_is_real_and_avoided():
    """On a real CPU model under inference mode, FlopCounterMode misses attention; our trace does not."""
    from torch.utils.flop_counter import FlopCounterMode

    from bioclip_edge.profiling import flops_torch as ft

    model = open_clip.model.CLIP(**TINY_CFG).eval()
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.encode_image(torch.zeros(1, 3, 64, 64))
    naive = counter.get_total_flops()
    assert torch.backends.mha.get_fastpath_enabled()
    ours = ft.trace_vision(model)  # a real CPU model: the fused paths are switched off while tracing ...
    assert torch.backends.mha.get_fastpath_enabled()  # ... and back on after
    assert ours.attention_flops == vision_flops(TINY_CFG).attention_flops > 0
    assert naive < ours.weight_flops + ours.attention_flops
    with pytest.raises(ft.FlopTraceError, match="fused"):
        ft._checked("vision tower", model.visual, {"aten.addmm": 10})


# --- ONNX graph counts -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_onnx(tiny_bundle):
    """The tiny bundle's fp32 graphs: both towers as the export writes them (dynamo, dynamic dims)."""
    from bioclip_edge.runtime.inference.bundle import Bundle

    bundle = Bundle.open(tiny_bundle)
    return {tower: bundle.path(bundle.variant(tower, "fp32").file) for tower in ("vision", "text")}


def test_onnx_count_agrees_with_torch(tiny_onnx):
    from bioclip_edge.profiling import flops_torch as ft
    from bioclip_edge.profiling.flops_onnx import count_onnx

    model = open_clip.model.CLIP(**TINY_VIT_CFG).to("meta").eval()  # the tiny bundle's model
    traced_v = ft.trace_vision(model)
    graph_v = count_onnx(tiny_onnx["vision"])
    assert graph_v.uncounted == ()
    assert graph_v.input_shapes == {"pixels": (1, 3, 224, 224)}
    assert (graph_v.weight_flops, graph_v.attention_flops) == (traced_v.weight_flops, traced_v.attention_flops)
    for length in (77, 20):
        traced_t = ft.trace_text(model, length)
        graph_t = count_onnx(tiny_onnx["text"], {"input_ids": (1, length)})
        assert graph_t.uncounted == ()
        assert (graph_t.weight_flops, graph_t.attention_flops) == (traced_t.weight_flops, traced_t.attention_flops)


def test_onnx_count_scales_with_batch(tiny_onnx):
    from bioclip_edge.profiling.flops_onnx import count_onnx

    one, four = count_onnx(tiny_onnx["vision"]), count_onnx(tiny_onnx["vision"], batch=4)
    assert four.with_attention == 4 * one.with_attention


def test_onnx_count_errors_name_the_problem(tiny_onnx, tmp_path):
    from bioclip_edge.profiling.flops_onnx import OnnxFlopsError, count_onnx

    with pytest.raises(OnnxFlopsError, match="token length"):
        count_onnx(tiny_onnx["text"])  # length is dynamic and was not given
    with pytest.raises(OnnxFlopsError, match="has 2 dims"):
        count_onnx(tiny_onnx["text"], {"input_ids": (1, 2, 3)})
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(OnnxFlopsError, match="not a readable ONNX"):
        count_onnx(bad)
