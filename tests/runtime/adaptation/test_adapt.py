"""``labels adapt``: the maths on synthetic embeddings, then end to end on the small trained model,
where a night-camera site makes zero-shot weak and a few labelled frames fix it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bioclip_edge.cli import main
from bioclip_edge.runtime.common.arrays import normalize_rows
from bioclip_edge.runtime.adaptation import methods as adapt_math
from bioclip_edge.runtime.adaptation.methods import ClapSettings, clap_objective, clap_rows, prototype_rows, zero_shot_weights
from bioclip_edge.runtime.adaptation.examples import ExamplesError, read_examples
from bioclip_edge.runtime.labels.matrix import LabelMatrix, LabelMatrixError
from bioclip_edge.runtime.adaptation.site import AdaptRequest, adapt
from bioclip_edge.runtime.adaptation.validate import cross_validate, fold_of_examples
from tests.helpers.site_photos import site_crops, write_train_folder
from tests.helpers.trained_tiny import zero_shot_labels


def synthetic(n_per_class: int, seed: int = 0, classes: int = 5, dim: int = 16):
    """Text rows, and features that sit between each class's text row and a shifted 'site' centre."""
    rng = np.random.default_rng(seed)
    text = normalize_rows(rng.normal(size=(classes, dim))).astype(np.float64)
    shift = normalize_rows(rng.normal(size=(classes, dim)))
    labels = np.repeat(np.arange(classes), n_per_class)
    feats = normalize_rows(0.5 * text[labels] + shift[labels] + 0.3 * rng.normal(size=(len(labels), dim)))
    return text, feats.astype(np.float64), labels


def test_prototype_rows_follow_the_formula_exactly():
    text, feats, labels = synthetic(3)
    shots = np.full(len(text), 3)
    rows = prototype_rows(text, feats, labels, shots, k=4.0)
    a = 3 / 7
    want = normalize_rows((1 - a) * text[2] + a * feats[labels == 2].mean(axis=0))
    np.testing.assert_allclose(rows[2], want, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)


def test_clap_gradient_matches_finite_differences():
    text, feats, labels = synthetic(2, classes=3, dim=6)
    w = text.ravel() + 0.05 * np.random.default_rng(1).normal(size=text.size)
    weights = np.array([0.2, 0.5, 0.9])
    competitors = normalize_rows(np.random.default_rng(2).normal(size=(2, 6))).astype(np.float64)
    _, grad = clap_objective(w, text, feats, labels, 10.0, weights, competitors)
    eps, numeric = 1e-6, np.zeros_like(w)
    for i in range(len(w)):
        step = np.zeros_like(w)
        step[i] = eps
        numeric[i] = (clap_objective(w + step, text, feats, labels, 10.0, weights, competitors)[0]
                      - clap_objective(w - step, text, feats, labels, 10.0, weights, competitors)[0]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


@pytest.mark.parametrize("optimizer", ["scipy", "numpy"])
def test_clap_lowers_the_loss_and_keeps_unit_rows(optimizer, monkeypatch):
    if optimizer == "numpy":  # the torch-free base install has no SciPy
        monkeypatch.setattr(adapt_math, "_minimise", adapt_math._gradient_descent)
    text, feats, labels = synthetic(4)
    fit = clap_rows(text, feats, labels, logit_scale=20.0)
    assert fit.loss_after < fit.loss_before
    np.testing.assert_allclose(np.linalg.norm(fit.rows, axis=1), 1.0, atol=1e-6)
    zero_shot = ((feats @ text.T).argmax(axis=1) == labels).mean()
    assert ((feats @ fit.rows.T).argmax(axis=1) == labels).mean() >= zero_shot
    again = clap_rows(text, feats, labels, logit_scale=20.0)
    np.testing.assert_array_equal(fit.rows, again.rows)  # deterministic


def test_clap_stays_near_zero_shot_under_a_high_penalty_and_weights_are_the_papers_class_mean():
    text, feats, labels = synthetic(16)
    def moved(rows):
        return float(np.mean(1 - np.sum(rows * text, axis=1)))

    strong = clap_rows(text, feats, labels, 20.0, ClapSettings(penalty=1e4))
    weak = clap_rows(text, feats, labels, 20.0, ClapSettings(penalty=1.0))
    assert moved(strong.rows) < 1e-3 < moved(weak.rows)
    # the penalty is the mean over classes of λ_c·||w_c - t_c||², as in the authors' code
    np.testing.assert_allclose(weak.weights, zero_shot_weights(text, feats, labels, 20.0) / len(text))
    np.testing.assert_allclose(strong.weights, 1e4 * weak.weights)


def test_clap_holds_a_class_zero_shot_already_knows_nearer_its_text_row():
    text, feats, labels = synthetic(8)
    feats[labels == 0] = normalize_rows(text[0] + 0.05 * np.random.default_rng(3).normal(size=(8, text.shape[1])))
    fit = clap_rows(text, feats, labels, 20.0)
    moved = 1 - np.sum(fit.rows * text, axis=1)
    assert fit.weights[0] > fit.weights[1:].max()
    assert moved[0] < moved[1:].min()


def test_class_weights_are_zero_shot_confidence():
    text, feats, labels = synthetic(4)
    weights = zero_shot_weights(text, feats, labels, 20.0)
    probs = np.exp(20 * feats @ text.T)
    probs /= probs.sum(axis=1, keepdims=True)
    assert weights[1] == pytest.approx(probs[labels == 1, 1].mean())


def test_folds_keep_groups_whole_and_say_when_adapting_does_not_help():
    groups = ["cam1", "cam1", "cam2", "cam3", "cam3", "cam4"]
    folds = fold_of_examples(groups, 2)
    assert folds[0] == folds[1] and folds[3] == folds[4] and set(folds) == {0, 1}
    with pytest.raises(LabelMatrixError, match="--cross-validate 5: needs 2 to 4 folds"):
        fold_of_examples(groups, 5)
    text, feats, labels = synthetic(4)
    from bioclip_edge.runtime.adaptation.examples import EmbeddedExamples

    embedded = EmbeddedExamples([str(c) for c in range(len(text))], feats, labels, np.arange(len(labels)),
                                np.full(len(text), 4), groups=[f"g{i}" for i in range(len(labels))])
    same = cross_validate(embedded, text, 4, lambda part: text)  # an "adaptation" that changes nothing
    assert not same.helps and same.adapted_accuracy == same.zero_shot_accuracy
    assert "NO better" in same.lines()[-1]


# ---- end to end on the trained tiny model -------------------------------------------------------
@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A night-camera site: 4 labelled training crops per class, and 6 held-out crops per class."""
    root = tmp_path_factory.mktemp("site")
    labels = zero_shot_labels()
    crops, truth = site_crops(4, "night", seed=1)
    write_train_folder(root / "train", crops, truth, labels)
    test, test_truth = site_crops(6, "night", seed=99)
    return root, test, np.array(test_truth)


def _accuracy(bundle_dir, matrix: LabelMatrix, crops, truth) -> float:
    from bioclip_edge.runtime.images.embedder import ImageEmbedder

    embedder = ImageEmbedder(str(bundle_dir), "fp32")
    emb = embedder.embed(np.stack([embedder.transform(c) for c in crops]))
    idx, _ = matrix.topk(emb, k=1)
    return float((idx[:, 0] == truth).mean())


def test_adapting_to_a_night_site_beats_zero_shot(trained_fp32_bundle, night, tmp_path):
    root, test, truth = night
    base = tmp_path / "base.npz"
    assert main(["labels", "build", str(trained_fp32_bundle), "--from", str(_label_list(tmp_path)),
                 "--out", str(base), "--dtype", "fp32", "--no-progress"]) == 0
    zero_shot = _accuracy(trained_fp32_bundle, LabelMatrix.load(base), test, truth)
    scores = {}
    for method in ("clap", "prototype"):
        out = tmp_path / f"{method}.npz"
        result = adapt(AdaptRequest(trained_fp32_bundle, root / "train", out, base=base, method=method))
        assert result.labels == 15 and set(result.shots.values()) == {4}
        scores[method] = _accuracy(trained_fp32_bundle, LabelMatrix.load(out), test, truth)
    # measured: zero-shot 0.27, clap 0.86, prototype 0.38 (4 shots of 15 classes, 90 night test crops)
    assert scores["clap"] >= zero_shot + 0.3
    assert scores["prototype"] >= zero_shot


def test_cli_writes_provenance_and_classify_runs_the_matrix(trained_fp32_bundle, night, tmp_path, capsys):
    root, test, _ = night
    out = tmp_path / "site.npz"
    assert main(["labels", "adapt", str(trained_fp32_bundle), "--examples", str(root / "train"), "--out", str(out),
                 "--views", "2", "--cross-validate", "4"]) == 0
    assert "adapted is better than zero-shot" in capsys.readouterr().out
    source = LabelMatrix.load(out).meta["source"]
    assert source["cross_validation"]["adapted_balanced"] > source["cross_validation"]["zero_shot_balanced"]
    assert source["kind"] == "adapt" and source["method"] == "clap" and len(source["examples"]["digest"]) == 64
    assert main(["labels", "info", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "adapted: clap" in shown and "a photo of an astronaut: 4" in shown
    assert main(["labels", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"]["shots"]["a photo of the moon"] == 4
    images = tmp_path / "images"
    images.mkdir()
    test[0].save(images / "a.jpg")
    assert main(["classify", str(trained_fp32_bundle), str(images), "--labels", str(out), "--out",
                 str(tmp_path / "out.csv"), "--format", "csv", "--no-progress"]) == 0
    assert (tmp_path / "out.csv").read_text().count("\n") >= 2
    assert main(["labels", "adapt", str(trained_fp32_bundle), "--examples", str(root / "train"), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err


def test_bad_examples_are_named(trained_fp32_bundle, night, tmp_path, capsys):
    root, _, _ = night
    train = tmp_path / "train"
    (train / "a photo of the moon").mkdir(parents=True)
    (train / "a photo of the moon" / "broken.jpg").write_bytes(b"not a jpeg")
    (train / "a photo of grass").mkdir()
    good = next((root / "train" / "a photo of grass").iterdir())
    (train / "a photo of grass" / "g.jpg").write_bytes(good.read_bytes())
    with pytest.raises(ExamplesError, match="'a photo of the moon' has no readable example.*broken.jpg"):
        adapt(AdaptRequest(trained_fp32_bundle, train, tmp_path / "x.npz"))
    (train / "a photo of the moon" / "ok.jpg").write_bytes(good.read_bytes())
    result = adapt(AdaptRequest(trained_fp32_bundle, train, tmp_path / "x.npz", method="prototype"))
    assert [name for name, _ in result.failures] == ["a photo of the moon/broken.jpg"]
    base = tmp_path / "base.npz"
    assert main(["labels", "build", str(trained_fp32_bundle), "--from", str(_label_list(tmp_path, 3)),
                 "--out", str(base), "--no-progress"]) == 0
    with pytest.raises(LabelMatrixError, match="'a photo of grass' is not in --base.*also 'a photo of the moon'"):
        adapt(AdaptRequest(trained_fp32_bundle, train, tmp_path / "y.npz", base=base))
    with pytest.raises(ExamplesError, match="no such file or folder"):
        read_examples(tmp_path / "missing")


def test_examples_from_a_csv_and_a_base_of_another_bundle(trained_fp32_bundle, night, tmp_path):
    root, _, _ = night
    grass = sorted((root / "train" / "a photo of grass").iterdir())[:2]
    csv = tmp_path / "examples.csv"
    csv.write_text("filepath,label\n" + "".join(f"{p},grass\n" for p in grass) + "missing.jpg,grass\n")
    examples = read_examples(csv)
    assert [e.label for e in examples] == ["grass"] * 3
    result = adapt(AdaptRequest(trained_fp32_bundle, csv, tmp_path / "g.npz", method="prototype", views=1))
    assert result.shots == {"grass": 2} and result.failures[0][0] == "missing.jpg"
    made = LabelMatrix.load(tmp_path / "g.npz")
    info = {**made.bundle_info, "model_id": "another-model", "architecture": "ViT-X", "text_tower_sha256s": []}
    other = LabelMatrix.from_embeddings(made.matrix, made.names, info, "plain").save(tmp_path / "other.npz")
    with pytest.raises(LabelMatrixError, match="other.npz"):
        adapt(AdaptRequest(trained_fp32_bundle, csv, tmp_path / "z.npz", base=other))


def test_base_rows_without_examples_stay_unchanged(trained_fp32_bundle, night, tmp_path):
    root, _, _ = night
    train = tmp_path / "train"
    for label in ("a photo of grass", "A Photo Of The Moon"):  # matched ignoring case
        (train / label).mkdir(parents=True)
        for src in sorted((root / "train" / label.lower()).iterdir())[:2]:
            (train / label / src.name).write_bytes(src.read_bytes())
    base = tmp_path / "base.npz"
    assert main(["labels", "build", str(trained_fp32_bundle), "--from", str(_label_list(tmp_path)), "--out", str(base),
                 "--no-progress"]) == 0
    result = adapt(AdaptRequest(trained_fp32_bundle, train, tmp_path / "site.npz", base=base))
    before, after = LabelMatrix.load(base), LabelMatrix.load(result.out)
    assert after.names == before.names and after.dtype == "fp16"  # the base's type by default
    changed = [i for i in range(before.n) if not np.array_equal(before.matrix[i], after.matrix[i])]
    assert sorted(before.names[i] for i in changed) == ["a photo of grass", "a photo of the moon"]


def test_suggest_lists_the_least_certain_pool_images_spread_over_folders(trained_fp32_bundle, night, tmp_path):
    root, test, _ = night
    for i, crop in enumerate(test[:8]):
        folder = tmp_path / "pool" / f"cam{i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        crop.save(folder / f"{i}.jpg")
    (tmp_path / "pool" / "cam0" / "broken.jpg").write_bytes(b"no")
    result = adapt(AdaptRequest(trained_fp32_bundle, root / "train", tmp_path / "site.npz", method="prototype",
                                views=1, suggest=4, pool=tmp_path / "pool"))
    rows = result.suggestions.read_text().splitlines()
    assert rows[0].startswith("filepath,group,sequence,captured,top1") and len(rows) == 5
    margins = [float(r.split(",")[-1]) for r in rows[1:]]
    assert margins == sorted(margins) and {r.split(",")[1] for r in rows[1:]} == {"cam0", "cam1"}
    assert any(name.endswith("broken.jpg") for name, _ in result.failures)
    with pytest.raises(LabelMatrixError, match="--suggest needs --pool"):
        adapt(AdaptRequest(trained_fp32_bundle, root / "train", tmp_path / "b.npz", suggest=2))


def _label_list(folder, n: int | None = None):
    path = folder / f"labels-{n}.txt"
    path.write_text("\n".join(zero_shot_labels()[:n]) + "\n")
    return path
